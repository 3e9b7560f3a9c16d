/** Reading the Grafana dashboard of manifests/monitoring: for the manifests' unit test and the e2e test with Prometheus. */

/**
 * Every PromQL expression in a Grafana dashboard: panel targets (nested rows too) and the metric of each
 * `label_values()` variable.
 *
 * @param dashboard - the parsed dashboard JSON.
 * @returns the expressions as written (Grafana variables such as `$class` left in).
 */
export function dashboardQueries(dashboard: unknown): string[] {
  const out: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) for (const n of node) walk(n);
    else if (node !== null && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'expr' && typeof v === 'string') out.push(v);
        else if (k === 'definition' && typeof v === 'string') {
          const m = /^label_values\(\s*([^,)]+)/.exec(v);
          if (m?.[1]) out.push(m[1]);
        } else walk(v);
      }
    }
  };
  walk(dashboard);
  return out;
}
