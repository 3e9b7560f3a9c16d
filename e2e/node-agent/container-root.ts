/**
 * Planning a container's root filesystem without an image: a tmpfs whose top-level entries are bind mounts of the
 * host's own (so the host's /bin tools stand in for the image), with every volume bind-mounted at its mountPath.
 *
 * A mountPath that does not exist on the host (`/data`, `/mnt/usb`) is made *inside the tmpfs*: each directory
 * on the way to a mountPath is "shadowed" — recreated as an empty directory in the tmpfs whose host entries are
 * bound one by one — so the mount point is created without touching the host and without hiding the siblings.
 * Pure: the host filesystem is read through {@link HostFs}; the result renders to a shell script run by
 * `unshare -m -u --propagation private`, so none of the mounts is visible outside the container's processes.
 */
import { posix } from 'node:path';

/** Type of a host filesystem entry, without following a final symlink. */
export type EntryKind = 'dir' | 'file' | 'symlink' | 'other' | 'missing';

/** Read-only view of the host filesystem used by {@link planContainerRoot}. */
export interface HostFs {
  kind(path: string): EntryKind;
  /** Names in a directory (no `.`/`..`). */
  list(path: string): string[];
  readlink(path: string): string;
}

/** A volume to mount: `source` on the host at `containerPath` (absolute) in the container. */
export interface VolumeMount {
  containerPath: string;
  source: string;
  readOnly: boolean;
  /** The source is a file (a subPath of a configMap key, a FileOrCreate hostPath), not a directory. */
  sourceIsFile?: boolean;
}

/** One step of building the root; paths are container paths (relative to the new root). */
export type RootStep =
  | { op: 'mkdir'; path: string }
  | { op: 'touch'; path: string }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'rbind'; source: string; path: string }
  | { op: 'bind'; source: string; path: string; readOnly: boolean };

/** Normalise an absolute container path (`/data/` → `/data`); throws on a relative path or `..`. */
export function normalizeContainerPath(path: string): string {
  if (!path.startsWith('/')) throw new Error(`mountPath ${JSON.stringify(path)} must be absolute`);
  if (path.split('/').includes('..')) throw new Error(`mountPath ${JSON.stringify(path)} must not contain '..'`);
  const n = posix.normalize(path);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function ancestors(path: string): string[] {
  const out: string[] = [];
  let p = posix.dirname(path);
  for (;;) {
    out.push(p);
    if (p === '/') return out;
    p = posix.dirname(p);
  }
}

/**
 * The steps that build a container root for `mounts`.
 *
 * @param mounts volume mounts; a later mount at the same path wins, nested mounts are made after their parent.
 * @param host the host filesystem, read to copy the entries next to each mountPath.
 * @returns steps in execution order: the root's entries, then each volume by increasing depth.
 * @throws Error for a relative mountPath or one with `..`, or a mount at `/`.
 */
export function planContainerRoot(mounts: readonly VolumeMount[], host: HostFs): RootStep[] {
  const byPath = new Map<string, VolumeMount>();
  for (const m of mounts) {
    const containerPath = normalizeContainerPath(m.containerPath);
    if (containerPath === '/') throw new Error('a volume cannot be mounted at /');
    byPath.set(containerPath, { ...m, containerPath });
  }
  const targets = [...byPath.keys()];
  const underTarget = (p: string) => targets.some((t) => p === t || p.startsWith(`${t}/`));
  const shadowed = new Set<string>();
  for (const t of targets) for (const a of ancestors(t)) if (!underTarget(a)) shadowed.add(a);

  const steps: RootStep[] = [];
  const populate = (dir: string): void => {
    if (host.kind(dir) !== 'dir') return;
    for (const name of host.list(dir).sort()) {
      const path = posix.join(dir, name);
      if (byPath.has(path)) continue;
      if (shadowed.has(path)) {
        steps.push({ op: 'mkdir', path });
        populate(path);
        continue;
      }
      switch (host.kind(path)) {
        case 'dir':
          steps.push({ op: 'mkdir', path }, { op: 'rbind', source: path, path });
          break;
        case 'symlink':
          steps.push({ op: 'symlink', target: host.readlink(path), path });
          break;
        case 'file':
        case 'other':
          steps.push({ op: 'touch', path }, { op: 'rbind', source: path, path });
          break;
        case 'missing':
          break;
      }
    }
  };
  populate('/');
  // Shadowed directories missing on the host (the /data in /data/x) were not met while listing.
  const made = new Set(steps.filter((s) => s.op === 'mkdir').map((s) => s.path));
  for (const dir of [...shadowed].sort()) {
    if (dir !== '/' && !made.has(dir)) steps.push({ op: 'mkdir', path: dir });
  }
  const depth = (p: string) => p.split('/').length;
  for (const m of [...byPath.values()].sort((a, b) => depth(a.containerPath) - depth(b.containerPath))) {
    steps.push(m.sourceIsFile ? { op: 'touch', path: m.containerPath } : { op: 'mkdir', path: m.containerPath }, {
      op: 'bind',
      source: m.source,
      path: m.containerPath,
      readOnly: m.readOnly,
    });
  }
  return steps;
}

/** Quote a string for POSIX sh. */
export function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** How the container's process is started inside the new root. */
export interface ExecSpec {
  /** argv after `$(VAR)` expansion; argv[0] looked up in `PATH` of `env`. */
  argv: string[];
  env: Record<string, string>;
  /** Absolute working directory in the container ('/' when the pod says nothing). */
  workingDir: string;
  /** Host name in the container's own UTS namespace (the pod's hostname); omitted for hostNetwork pods. */
  hostname?: string;
  /** Numeric identity to switch to (`setpriv`), or undefined to stay root. */
  user?: { uid: number; gid: number; supplementaryGroups: number[] };
  /** Extra `setpriv` arguments: the capability set and `--no-new-privs` (see capabilities.ts). */
  privileges?: string[];
}

/**
 * The `sh` script that, run as root by `unshare -m -u --propagation private -- sh -c <script>`, mounts a tmpfs at
 * `rootDir`, performs `steps` under it, and execs the container's command chrooted there (through `setpriv` when
 * a user, a capability set or no_new_privs is given, and `env -i` so the environment is exactly the container's).
 *
 * @param rootDir an empty host directory used as the mount point of the container root.
 */
export function renderRootScript(rootDir: string, steps: readonly RootStep[], exec: ExecSpec): string {
  const r = (p: string) => shQuote(posix.join(rootDir, p));
  const lines = ['set -e', `mount -t tmpfs -o mode=0755 hpp-container-root ${shQuote(rootDir)}`];
  for (const s of steps) {
    switch (s.op) {
      case 'mkdir':
        lines.push(`mkdir -p ${r(s.path)}`);
        break;
      case 'touch':
        lines.push(`mkdir -p ${r(posix.dirname(s.path))}`, `touch ${r(s.path)}`);
        break;
      case 'symlink':
        lines.push(`ln -s ${shQuote(s.target)} ${r(s.path)}`);
        break;
      case 'rbind':
        lines.push(`mount --rbind ${shQuote(s.source)} ${r(s.path)}`);
        break;
      case 'bind':
        lines.push(`mount --bind ${shQuote(s.source)} ${r(s.path)}`);
        if (s.readOnly) lines.push(`mount -o remount,bind,ro ${r(s.path)}`);
        break;
    }
  }
  // The root itself shows up again inside the bound host tree: hide that copy.
  lines.push(`umount -R -l ${r(rootDir)} 2>/dev/null || true`);
  lines.push(`mkdir -p ${r(exec.workingDir)}`);
  if (exec.hostname) lines.push(`hostname ${shQuote(exec.hostname)}`);
  const identity = exec.user
    ? [
        `--reuid=${exec.user.uid}`,
        `--regid=${exec.user.gid}`,
        exec.user.supplementaryGroups.length > 0
          ? `--groups=${exec.user.supplementaryGroups.join(',')}`
          : '--clear-groups',
      ]
    : [];
  const setpriv = [...identity, ...(exec.privileges ?? [])];
  const user = setpriv.length > 0 ? ['setpriv', ...setpriv, '--'] : [];
  const env = Object.entries(exec.env).map(([k, v]) => `${k}=${v}`);
  const argv = ['chroot', rootDir, ...user, 'env', '-i', '-C', exec.workingDir, '--', ...env, ...exec.argv];
  lines.push(`exec ${argv.map(shQuote).join(' ')}`);
  return `${lines.join('\n')}\n`;
}
