/** Kubernetes timestamp formats. */

/**
 * A `metav1.Time`: RFC 3339 with second precision, as the kubelet writes it (`2026-01-02T03:04:05Z`).
 *
 * @param date any instant; milliseconds are truncated.
 */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * A `metav1.MicroTime` (Lease `renewTime`, events.k8s.io `eventTime`): RFC 3339 with exactly six fractional
 * digits. `Date#toISOString()` gives three, which the API server rejects with 400.
 *
 * @param date any instant; the three sub-millisecond digits are zero.
 */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
