/**
 * The monitoring manifests agree with the code: every metric the Grafana dashboard queries is one that
 * src/runtime/metrics.ts registers, the dashboard covers what issue "Observability" asks for, and the
 * ServiceMonitor finds the metrics Service of the base and of the microk8s overlay, and the PrometheusRule's alerts
 * query registered metrics (their PromQL is checked by promtool and a real Prometheus in e2e/metrics.test.ts).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { parseAllDocuments } from 'yaml';
import { createMetrics } from '../src/runtime/metrics.js';
import { dashboardQueries } from './support/dashboard.js';

const ROOT = resolve(import.meta.dirname, '..');
const MONITORING = join(ROOT, 'manifests', 'monitoring');

/** PromQL words that look like identifiers but are not metric names. */
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * Metric names referenced by a PromQL expression: identifiers that remain after removing strings, label matchers
 * `{…}`, ranges `[…]`, grouping clauses `by (…)`, function calls `f(` and keywords.
 *
 * @param expr - a PromQL expression as written in a Grafana target (may contain `$variables`).
 * @returns the distinct metric names, in order of appearance.
 */
function promqlMetricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of stripped.matchAll(/(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (name === undefined || call !== undefined || KEYWORDS.has(name.toLowerCase())) continue;
    if (!names.includes(name)) names.push(name);
  }
  return names;
}

/** Series names the registry exposes: counters and gauges as named, histograms with _bucket, _sum and _count. */
async function exposedSeriesNames(): Promise<Set<string>> {
  const metrics = createMetrics(new Registry(), { version: 'test' });
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${m.name}${s}`);
    else names.add(m.name);
  }
  return names;
}

function yamlDocs(path: string): Record<string, unknown>[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
}

describe('promqlMetricNames', () => {
  it.each([
    ['up', ['up']],
    ['sum by (class) (rate(a_total{class=~"$class"}[$__rate_interval]))', ['a_total']],
    ['histogram_quantile(0.99, sum by (le, class) (rate(x_bucket{a="b{c}"}[5m])))', ['x_bucket']],
    ['max by (pod) (leader) or on (pod) vector(0)', ['leader']],
    ['a / ignoring (x) b offset 5m', ['a', 'b']],
  ])('%s → %j', (expr, names) => {
    expect(promqlMetricNames(expr)).toEqual(names);
  });
});

describe('grafana-dashboard.json', () => {
  const dashboard = JSON.parse(readFileSync(join(MONITORING, 'grafana-dashboard.json'), 'utf8')) as unknown;
  const queries = dashboardQueries(dashboard);
  const used = [...new Set(queries.flatMap(promqlMetricNames))];

  it('queries only metrics that src/runtime/metrics.ts registers', async () => {
    const exposed = await exposedSeriesNames();
    expect(queries.length).toBeGreaterThan(10);
    expect(used.filter((n) => !exposed.has(n))).toEqual([]);
  });

  it('shows the latency histograms, outcomes, helper pods, work queue depth and the leader', () => {
    expect(used).toEqual(
      expect.arrayContaining([
        'hostpath_provisioner_provision_latency_seconds_bucket',
        'controller_persistentvolumeclaim_provision_duration_seconds_bucket',
        'controller_persistentvolumeclaim_provision_total',
        'controller_persistentvolumeclaim_provision_failed_total',
        'controller_persistentvolume_delete_total',
        'controller_persistentvolume_delete_failed_total',
        'hostpath_provisioner_helper_pods_total',
        'hostpath_provisioner_workqueue_depth',
        'hostpath_provisioner_leader',
      ]),
    );
    const latency = queries.filter((q) => q.includes('hostpath_provisioner_provision_latency_seconds_bucket'));
    expect(latency.some((q) => q.startsWith('histogram_quantile(') && /by \(le\b/.test(q))).toBe(true);
    expect(
      queries.some((q) => /by \(operation, outcome\) \(increase\(hostpath_provisioner_helper_pods_total/.test(q)),
    ).toBe(true);
  });

  it('uses a data source variable, so it imports into any Grafana', () => {
    const sources: unknown[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) for (const n of node) walk(n);
      else if (node !== null && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if (k === 'datasource') sources.push(v);
          else walk(v);
        }
      }
    };
    walk((dashboard as { panels: unknown }).panels);
    expect(sources.length).toBeGreaterThan(0);
    expect(new Set(sources.map((s) => JSON.stringify(s)))).toEqual(
      new Set([JSON.stringify({ type: 'prometheus', uid: '${datasource}' })]),
    );
  });
});

describe('ServiceMonitor', () => {
  const [monitor] = yamlDocs(join(MONITORING, 'servicemonitor.yaml')) as [
    {
      apiVersion: string;
      kind: string;
      spec: {
        namespaceSelector: { matchNames: string[] };
        selector: { matchLabels: Record<string, string> };
        endpoints: { port: string; path: string }[];
      };
    },
  ];
  const [service] = yamlDocs(join(ROOT, 'manifests', 'base', 'service.yaml')) as [
    { metadata: { labels: Record<string, string> }; spec: { ports: { name: string }[] } },
  ];

  it('is a monitoring.coreos.com/v1 ServiceMonitor selecting the metrics Service by label and port name', () => {
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.kind).toBe('ServiceMonitor');
    expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(service.spec.ports.map((p) => p.name)).toContain(monitor.spec.endpoints[0]?.port);
    expect(monitor.spec.endpoints[0]?.path).toBe('/metrics');
  });

  it('looks in the namespaces of the base and of the microk8s overlay', () => {
    const namespaceOf = (path: string) =>
      (yamlDocs(join(ROOT, 'manifests', path, 'kustomization.yaml'))[0] as { namespace: string }).namespace;
    expect(monitor.spec.namespaceSelector.matchNames).toEqual(
      expect.arrayContaining([namespaceOf('base'), namespaceOf('overlays/microk8s')]),
    );
  });
});

describe('PrometheusRule', () => {
  const [rule] = yamlDocs(join(MONITORING, 'prometheusrule.yaml')) as [
    {
      apiVersion: string;
      kind: string;
      spec: { groups: { name: string; rules: { alert: string; expr: string; for: string; labels: object }[] }[] };
    },
  ];
  const rules = rule.spec.groups.flatMap((g) => g.rules);

  it('is a monitoring.coreos.com/v1 PrometheusRule with the alerts users ask for', () => {
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(rule.kind).toBe('PrometheusRule');
    expect(rules.map((r) => r.alert)).toEqual([
      'HostpathProvisionerNoLeader',
      'HostpathProvisionerProvisioningFailures',
      'HostpathProvisionerDeletionFailures',
      'HostpathProvisionerSlowProvisioning',
      'HostpathProvisionerVolumeFillingUp',
      'HostpathProvisionerVolumeFillingUp',
    ]);
    expect(rules.filter((r) => r.alert === 'HostpathProvisionerVolumeFillingUp').map((r) => r.labels)).toEqual([
      { severity: 'critical' },
      { severity: 'warning' },
    ]);
    for (const r of rules) {
      expect(r.for).toMatch(/^\d+[mh]$/);
      expect(r.labels).toHaveProperty('severity');
    }
  });

  it('queries only metrics that src/runtime/metrics.ts registers', async () => {
    const exposed = await exposedSeriesNames();
    const used = [...new Set(rules.flatMap((r) => promqlMetricNames(r.expr)))];
    expect(used.length).toBeGreaterThanOrEqual(4);
    expect(used.filter((n) => !exposed.has(n))).toEqual([]);
  });
});
