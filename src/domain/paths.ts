import { posix } from 'node:path';
import type { V1Node } from '@kubernetes/client-node';
import { ANN_NODE_PV_DIR } from './constants.js';

/** Longest path component Linux file systems accept (NAME_MAX), bytes. */
const MAX_COMPONENT_BYTES = 255;
/** Longest base directory: PATH_MAX (4096) less a slash and a volume directory name of up to 255 bytes. */
const MAX_BASE_BYTES = 4096 - 1 - 255;

/** Outcome of a path check: the accepted path, or why it was refused (a sentence for an Event). */
export type PathCheck = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

// eslint-disable-next-line no-control-regex -- control characters are exactly what this rejects
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Validates a base directory (`PV_DIR` or a StorageClass's `pvDir`): it must be absolute, already clean
 * (`path.posix.normalize` leaves it unchanged, no trailing slash, no `//`), contain no `.` or `..` component and no
 * control characters, and not be `/`; no component may exceed 255 bytes and the whole must leave room under
 * PATH_MAX (4096 bytes) for a volume directory.
 *
 * @param dir - the configured directory.
 * @returns `{ ok: true, path }` or `{ ok: false, reason }`; never throws.
 */
export function checkBaseDirectory(dir: string): PathCheck {
  if (dir === '') return { ok: false, reason: 'is empty' };
  if (CONTROL.test(dir)) return { ok: false, reason: 'contains control characters' };
  if (!dir.startsWith('/')) return { ok: false, reason: 'is not an absolute path' };
  if (dir === '/' || /^\/+$/.test(dir)) return { ok: false, reason: 'is the root directory /' };
  const parts = dir.split('/').slice(1);
  if (parts.some((p) => p === '..')) return { ok: false, reason: 'contains ".."' };
  if (parts.some((p) => p === '.')) return { ok: false, reason: 'contains "."' };
  if (parts.some((p) => p === '')) return { ok: false, reason: 'is not clean (empty component or trailing slash)' };
  if (parts.some((p) => Buffer.byteLength(p, 'utf8') > MAX_COMPONENT_BYTES)) {
    return { ok: false, reason: `has a component longer than ${MAX_COMPONENT_BYTES} bytes` };
  }
  if (Buffer.byteLength(dir, 'utf8') > MAX_BASE_BYTES) {
    return { ok: false, reason: `is longer than ${MAX_BASE_BYTES} bytes (no room for volume directories)` };
  }
  if (posix.normalize(dir) !== dir) return { ok: false, reason: 'is not clean' };
  return { ok: true, path: dir };
}

/**
 * The base directory a node gives itself with the annotation {@link ANN_NODE_PV_DIR}, checked like `pvDir`
 * ({@link checkBaseDirectory}).
 *
 * @param node - the node.
 * @returns undefined when the node has no such annotation; else the directory, or why it is refused (a sentence
 *   naming the node and the annotation, for an Event).
 */
export function nodeBaseDirectory(node: V1Node): PathCheck | undefined {
  const dir = node.metadata?.annotations?.[ANN_NODE_PV_DIR];
  if (dir === undefined) return undefined;
  const check = checkBaseDirectory(dir);
  if (check.ok) return check;
  return {
    ok: false,
    reason: `node ${node.metadata?.name ?? ''} has annotation ${ANN_NODE_PV_DIR} ${JSON.stringify(dir)}, which ${check.reason}`,
  };
}

/**
 * Whether a volume directory may be removed: it must be a direct child of one of the known base directories,
 * not a base directory itself, and its last component must end with `-<PV name>` (the layout
 * `<namespace>-<claim>-<pv>` that we and the addon write; a hand-made PV `keep` at `<base>/keep` is not ours to remove). Anything else — `/`, a path
 * through `..`, a hand-made PV pointing at `/srv/important` — is refused, and the data is left alone.
 * Symbolic links cannot be seen from here; the helper refuses to follow one (see the helper pod's script).
 *
 * @param path - the PV's hostPath or local path.
 * @param volumeName - the PV's name.
 * @param knownBases - base directories (already validated): PV_DIR, the `pvDir` of our StorageClasses and the
 *   {@link ANN_NODE_PV_DIR} of the volume's node.
 * @returns the path and the base directory it lives in, or why it is refused.
 */
export function checkRemovablePath(
  path: string,
  volumeName: string,
  knownBases: readonly string[],
): { ok: true; path: string; base: string; leaf: string } | { ok: false; reason: string } {
  const asBase = checkBaseDirectory(path);
  if (!asBase.ok) return { ok: false, reason: `path ${JSON.stringify(path)} ${asBase.reason}` };
  const base = posix.dirname(path);
  const leaf = posix.basename(path);
  if (knownBases.includes(path)) return { ok: false, reason: `path ${path} is a base directory itself` };
  if (!knownBases.includes(base)) {
    return {
      ok: false,
      reason: `path ${path} is not directly under a known base directory (${knownBases.join(', ') || 'none'})`,
    };
  }
  if (volumeName === '' || !leaf.endsWith(`-${volumeName}`)) {
    return { ok: false, reason: `directory name ${leaf} does not end with "-" and the volume name ${volumeName}` };
  }
  return { ok: true, path, base, leaf };
}
