import { createHash } from 'node:crypto';

/** Maximum length of a label value, a DNS label and therefore of a helper pod's name (Kubernetes validation). */
export const MAX_LABEL_LENGTH = 63;
/** Maximum length in bytes of one path component on Linux file systems (NAME_MAX). */
export const MAX_DIRECTORY_NAME_BYTES = 255;

/** Helper pod operations: make or remove a volume directory, or list a base directory (orphan report). */
export type HelperOperation = 'create' | 'delete' | 'list';

/**
 * Short, stable hash of a string: the first `length` hex characters of its SHA-256.
 *
 * @param text - any string (UTF-8).
 * @param length - hex characters to keep (1..64).
 */
export function shortHash(text: string, length = 8): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, length);
}

/**
 * Name of the PV provisioned for a claim: `pvc-<claim uid>`, as the PV controller and
 * sig-storage-lib-external-provisioner name it, so a retry finds the PV an earlier attempt created.
 *
 * @param claimUid - `metadata.uid` of the claim.
 */
export function volumeNameForClaim(claimUid: string): string {
  return `pvc-${claimUid}`;
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what this replaces
const NOT_IN_A_PATH_COMPONENT = /[/\u0000-\u001f\u007f]/g;

/** Cuts `text` to at most `maxBytes` UTF-8 bytes without splitting a character. */
function truncateBytes(text: string, maxBytes: number): string {
  let out = '';
  let used = 0;
  for (const ch of text) {
    const size = Buffer.byteLength(ch, 'utf8');
    if (used + size > maxBytes) break;
    out += ch;
    used += size;
  }
  return out;
}

/**
 * Directory name of a volume under its base directory: `<namespace>-<claim>-<pv>` (the addon's layout).
 * When that exceeds 255 bytes, the `<namespace>-<claim>` part is cut and followed by a hash of the whole,
 * so the name stays unique and still ends with the PV name (deletion checks that suffix).
 *
 * @param namespace - claim namespace.
 * @param claimName - claim name.
 * @param volumeName - PV name, e.g. `pvc-<uid>`.
 * @returns a single path component of at most 255 bytes: `/`, NUL and other control characters (impossible in
 *   valid object names) are replaced by `_`, so no input can make it a path.
 */
export function volumeDirectoryName(namespace: string, claimName: string, volumeName: string): string {
  // Valid object names never hold these; a hand-made object must still not turn the name into a path.
  const safe = (text: string) => text.replace(NOT_IN_A_PATH_COMPONENT, '_');
  const raw = `${namespace}-${claimName}-${volumeName}`;
  const full = safe(raw);
  if (Buffer.byteLength(full, 'utf8') <= MAX_DIRECTORY_NAME_BYTES) return full;
  const suffix = `-${shortHash(raw)}-${safe(volumeName)}`;
  const room = MAX_DIRECTORY_NAME_BYTES - Buffer.byteLength(suffix, 'utf8');
  return `${truncateBytes(safe(`${namespace}-${claimName}`), Math.max(room, 0))}${suffix}`;
}

/**
 * A name of at most 63 characters that is a valid DNS label and label value: lower-cased, characters outside
 * `[a-z0-9-]` replaced by `-`, and — when it had to be cut or changed — a hash of the original appended,
 * so two different inputs never collide.
 *
 * @param text - any string.
 * @returns `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, length 1..63.
 */
export function dnsLabel(text: string): string {
  const cleaned = text.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  const trimmed = cleaned.replace(/^-+/, '').replace(/-+$/, '');
  if (trimmed === text && trimmed.length > 0 && trimmed.length <= MAX_LABEL_LENGTH) return trimmed;
  const hash = shortHash(text);
  const head = trimmed.slice(0, MAX_LABEL_LENGTH - hash.length - 1).replace(/-+$/, '');
  return head.length > 0 ? `${head}-${hash}` : hash;
}

/**
 * Deterministic name of the helper pod for one operation on one volume:
 * `hostpath-<operation>-<pv name>`, cut to 63 characters with a hash when longer. The same (volume, operation)
 * always gives the same name, so a restarted provisioner adopts its helper instead of starting a second one.
 *
 * @param operation - `create` or `delete`.
 * @param volumeName - PV name.
 */
export function helperPodName(operation: HelperOperation, volumeName: string): string {
  return dnsLabel(`hostpath-${operation}-${volumeName}`);
}
