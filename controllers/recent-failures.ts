import type { Clock } from './ports.js';

/** Seconds a node where a helper failed for a class is skipped by the Immediate-binding node choice. */
export const RECENT_FAILURE_SECONDS = 600;

/**
 * Remembers, per (StorageClass, node), when a create helper last failed there, so Immediate binding tries other
 * nodes for {@link RECENT_FAILURE_SECONDS} instead of the same broken node forever (review M4); the delete
 * reconciler keys it by PV name for volumes on a shared file system. Entries expire on
 * read; the map holds at most one entry per class and node.
 */
export class RecentFailures {
  private readonly failedAt = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlSeconds = RECENT_FAILURE_SECONDS,
  ) {}

  /** Records a failed helper of `className` on `node` now. */
  failed(className: string, node: string): void {
    this.failedAt.set(JSON.stringify([className, node]), this.clock());
  }

  /** Names of the nodes where a helper of `className` failed within the last {@link RECENT_FAILURE_SECONDS}. */
  nodes(className: string): Set<string> {
    const now = this.clock();
    const out = new Set<string>();
    for (const [key, at] of this.failedAt) {
      if (now - at >= this.ttlSeconds * 1000) {
        this.failedAt.delete(key);
        continue;
      }
      const [cls, node] = JSON.parse(key) as [string, string];
      if (cls === className) out.add(node);
    }
    return out;
  }
}
