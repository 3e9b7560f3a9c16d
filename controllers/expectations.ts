import type { Clock } from './ports.js';

/**
 * Remembers work this process has just finished, until the informer cache has caught up with its own writes
 * (client-go controllers call these "expectations"). A reconcile that runs on a stale cache — the PV we just created
 * not yet seen, the PV we just deleted still listed — would otherwise repeat the helper run and count the outcome
 * twice. Entries expire after `ttlSeconds`, so a cache that never catches up cannot block work forever.
 */
export class Expectations {
  private readonly done = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlSeconds = 120,
  ) {}

  /** Records that the work for `key` (e.g. a claim or PV uid) is finished. */
  finished(key: string): void {
    this.prune();
    this.done.set(key, this.clock());
  }

  /** Whether the work for `key` was finished within the TTL. */
  isFinished(key: string): boolean {
    const at = this.done.get(key);
    return at !== undefined && this.clock() - at <= this.ttlSeconds * 1000;
  }

  /** Forgets `key` (the cache now reflects the outcome). */
  observed(key: string): void {
    this.done.delete(key);
  }

  private prune(): void {
    const now = this.clock();
    for (const [key, at] of this.done) if (now - at > this.ttlSeconds * 1000) this.done.delete(key);
  }
}
