/**
 * The benchmark's arithmetic: quantiles of claim latencies, the median and spread of repeated runs, and API requests
 * counted from the API server's audit log. Pure: no I/O, no clock.
 */

/**
 * The q-quantile of `values` by the nearest-rank method (the smallest value with at least q of all values at or
 * below it), as the latency percentiles of kube-burner and clusterloader2 are read.
 *
 * @param values - samples, any order (not changed).
 * @param q - between 0 and 1.
 * @returns the quantile, NaN when there are no values.
 * @throws RangeError when q is outside [0, 1].
 */
export function quantile(values: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q} is not between 0 and 1`);
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

/** Median and range of one figure over repeated runs. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/**
 * The median (mean of the middle two for an even count), minimum and maximum of `values`.
 *
 * @returns NaN in every field when there are no values.
 */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** API requests of one user: the total and the count by `<verb> <resource>[/<subresource>]`. */
export interface RequestCount {
  readonly total: number;
  readonly byVerbResource: Readonly<Record<string, number>>;
}

/**
 * Counts the requests of `username` in audit log lines (JSON, one `audit.k8s.io/v1` Event per line, as
 * `--audit-log-format json` writes them). Only the `ResponseComplete` and `Panic` stages are counted, so a request
 * logged at several stages counts once; lines that are not JSON events are skipped.
 *
 * @param lines - the audit log's lines.
 * @param username - e.g. `system:serviceaccount:<namespace>:<name>`.
 */
export function countRequests(lines: Iterable<string>, username: string): RequestCount {
  const byVerbResource: Record<string, number> = {};
  let total = 0;
  for (const line of lines) {
    let event: AuditEvent;
    try {
      event = JSON.parse(line) as AuditEvent;
    } catch {
      continue;
    }
    if (event?.kind !== 'Event' || event.user?.username !== username) continue;
    if (event.stage !== 'ResponseComplete' && event.stage !== 'Panic') continue;
    const ref = event.objectRef;
    const resource = ref?.resource
      ? `${ref.resource}${ref.subresource ? `/${ref.subresource}` : ''}`
      : (event.requestURI ?? '?');
    const key = `${event.verb ?? '?'} ${resource}`;
    byVerbResource[key] = (byVerbResource[key] ?? 0) + 1;
    total += 1;
  }
  return { total, byVerbResource: sortedRecord(byVerbResource) };
}

/** The fields of an audit Event this module reads. */
interface AuditEvent {
  readonly kind?: string;
  readonly stage?: string;
  readonly verb?: string;
  readonly requestURI?: string;
  readonly user?: { readonly username?: string };
  readonly objectRef?: { readonly resource?: string; readonly subresource?: string };
}

function sortedRecord(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}
