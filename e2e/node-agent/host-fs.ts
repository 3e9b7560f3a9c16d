/** The real host filesystem as a {@link HostFs} (synchronous: the planner reads a few directories). */
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import type { EntryKind, HostFs } from './container-root.js';

export const realHostFs: HostFs = {
  kind(path: string): EntryKind {
    try {
      const s = lstatSync(path);
      if (s.isSymbolicLink()) return 'symlink';
      if (s.isDirectory()) return 'dir';
      if (s.isFile()) return 'file';
      return 'other';
    } catch {
      return 'missing';
    }
  },
  list: (path) => readdirSync(path),
  readlink: (path) => readlinkSync(path),
};
