import { randomBytes } from 'node:crypto';
import PQueue from 'p-queue';
import { backoffSeconds } from './backoff.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

/** What a reconcile returns: nothing (done), or a request to run the key again after some seconds. */
export type ReconcileResult = void | { requeueAfterSeconds: number };

/** Per-run context handed to the reconcile function. */
export interface ReconcileContext {
  /** Child logger with `queue`, `key` and `reconcileID`. */
  readonly logger: Logger;
  /** Short random id of this run (12 hex characters), also in every log line of the run. */
  readonly reconcileID: string;
  /** Consecutive failed runs of this key before this one (0 after a success or for a new key). */
  readonly attempt: number;
}

/** The reconcile function: level-based, reads the current state for `key` itself; a throw means "retry later". */
export type Reconcile = (key: string, ctx: ReconcileContext) => Promise<ReconcileResult>;

/** Options of {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** Queue name: the `queue` metric label and log field (bounded, e.g. `claims`, `volumes`). */
  readonly name: string;
  /** Reconciles running at once (≥ 1). */
  readonly concurrency: number;
  /** Delay before the first retry after an error, seconds. */
  readonly baseDelaySeconds: number;
  /** Upper bound of the retry delay, seconds. */
  readonly maxDelaySeconds: number;
  /** `operation` label of the queue_wait phase histogram; defaults to `name`. */
  readonly operation?: string;
  readonly metrics?: Metrics;
  readonly logger: Logger;
  /** Uniform random source for the backoff jitter (tests). */
  readonly random?: () => number;
  /**
   * The least delay, seconds, before retrying after `err` (e.g. a 429's Retry-After), or undefined for the plain
   * backoff. Injected so this module stays free of API client details.
   */
  readonly minRetrySeconds?: (err: unknown) => number | undefined;
}

/** Monotonic clock, seconds. */
function nowSeconds(): number {
  return performance.now() / 1000;
}

/**
 * A rate-limited, de-duplicating work queue of string keys with the semantics of client-go's workqueue and
 * controller-runtime's controller:
 * - `add(key)` de-duplicates: a key waiting to run is queued once, however often it is added.
 * - A key is never processed by two runs at once; adds while it runs collapse into exactly one more run after it.
 * - A thrown error requeues the key after a per-key exponential backoff with jitter (`baseDelaySeconds` doubling up to
 *   `maxDelaySeconds`, see {@link backoffSeconds}); a success forgets the key's failures and honours
 *   `requeueAfterSeconds`.
 * - `addAfter(key, s)` adds the key once the delay has passed; of several pending delays for a key the earliest wins
 *   (client-go's delaying queue).
 * - Concurrency through p-queue. Nothing runs before `start()`; `shutdown()` stops taking work and waits for the
 *   running reconciles up to a deadline.
 * Metrics: workqueue depth / in-flight / retries (label `queue`), and the queue_wait phase (time from add to start).
 */
export class WorkQueue {
  readonly name: string;
  private readonly opts: WorkQueueOptions;
  private readonly reconcile: Reconcile;
  private readonly logger: Logger;
  private readonly pq: PQueue;
  /** Keys that need a run and have not started it yet (waiting in p-queue, or running and re-added). */
  private readonly dirty = new Set<string>();
  /** Keys handed to p-queue, not started yet. */
  private readonly waiting = new Set<string>();
  /** Keys being reconciled now. */
  private readonly processing = new Set<string>();
  /** When each dirty key was added (monotonic seconds), for queue_wait. */
  private readonly addedAt = new Map<string, number>();
  /** Consecutive failures per key. */
  private readonly failures = new Map<string, number>();
  /** Pending delayed adds: key → timer and when it fires (monotonic seconds). */
  private readonly delayed = new Map<string, { timer: NodeJS.Timeout; readyAt: number }>();
  private started = false;
  private shuttingDown = false;

  /**
   * @param options - see {@link WorkQueueOptions}.
   * @param reconcile - called with a key and a {@link ReconcileContext}; may throw to retry with backoff.
   * @throws RangeError when concurrency is not a positive integer or the delays are invalid.
   */
  constructor(options: WorkQueueOptions, reconcile: Reconcile) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new RangeError(`work queue ${options.name}: concurrency must be a positive integer`);
    }
    backoffSeconds(1, options.baseDelaySeconds, options.maxDelaySeconds); // validates the delays
    this.name = options.name;
    this.opts = options;
    this.reconcile = reconcile;
    this.logger = options.logger.child({ queue: options.name });
    this.pq = new PQueue({ concurrency: options.concurrency, autoStart: false });
    this.updateGauges();
  }

  /** Keys waiting to run (not counting delayed adds or running keys). */
  get length(): number {
    return this.waiting.size;
  }

  /** Reconciles running now. */
  get inFlight(): number {
    return this.processing.size;
  }

  /** Keys with a delayed add pending (retries and requeueAfter). */
  get delayedCount(): number {
    return this.delayed.size;
  }

  /** Whether `shutdown()` was called. */
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Marks a key as needing a reconcile. De-duplicated with a waiting run; collapsed into one more run when the key
   * is running. Ignored after shutdown.
   * @param key - e.g. a claim UID or `namespace/name`.
   */
  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) return;
    this.dirty.add(key);
    this.addedAt.set(key, nowSeconds());
    if (this.processing.has(key)) return; // one more run after the current one
    this.schedule(key);
  }

  /**
   * Adds a key after a delay. A delay ≤ 0 adds now. When the key already has a pending delayed add, the earlier of the
   * two is kept. Ignored after shutdown.
   * @param key - the key.
   * @param seconds - delay in seconds.
   */
  addAfter(key: string, seconds: number): void {
    if (this.shuttingDown) return;
    if (!(seconds > 0)) {
      this.add(key);
      return;
    }
    const readyAt = nowSeconds() + seconds;
    const pending = this.delayed.get(key);
    if (pending !== undefined) {
      if (pending.readyAt <= readyAt) return;
      clearTimeout(pending.timer);
    }
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, seconds * 1000);
    timer.unref();
    this.delayed.set(key, { timer, readyAt });
  }

  /**
   * Requeues a key after its backoff delay and counts a failure, as client-go's `AddRateLimited` — for a reconcile
   * that wants a retry with backoff without throwing. With `minSeconds` the delay is at least that long: pass the
   * server's Retry-After of a 429 (see `retryAfterSeconds` in src/kube/client.ts), as client-go's request retry waits
   * at least Retry-After. Ignored after shutdown.
   * @param key - the key.
   * @param minSeconds - lower bound of the delay, seconds (e.g. Retry-After); ignored when undefined, not finite or ≤ 0.
   * @returns the delay chosen, seconds: max(per-key backoff, minSeconds).
   */
  addRateLimited(key: string, minSeconds?: number): number {
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    const backoff = backoffSeconds(failures, this.opts.baseDelaySeconds, this.opts.maxDelaySeconds, this.opts.random);
    const floor = minSeconds !== undefined && Number.isFinite(minSeconds) && minSeconds > 0 ? minSeconds : 0;
    const delay = Math.max(backoff, floor);
    this.opts.metrics?.workqueueRetries.inc({ queue: this.name });
    this.addAfter(key, delay);
    return delay;
  }

  /**
   * Forgets a key's failure count (its next error starts again at the base delay) and cancels its delayed add.
   * Does not remove a waiting run. For keys whose object is gone.
   */
  forget(key: string): void {
    this.failures.delete(key);
    const pending = this.delayed.get(key);
    if (pending !== undefined) {
      clearTimeout(pending.timer);
      this.delayed.delete(key);
    }
  }

  /** Consecutive failures recorded for a key (0 when none). */
  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Starts processing (keys added before are processed now). Idempotent. */
  start(): void {
    if (this.started || this.shuttingDown) return;
    this.started = true;
    this.pq.start();
  }

  /**
   * Stops taking work: later adds are ignored, delayed adds and waiting keys are dropped, running reconciles go on.
   * Resolves when they have finished or the deadline has passed (then it logs the keys still running).
   * @param deadlineSeconds - how long to wait for running reconciles, seconds.
   */
  async shutdown(deadlineSeconds: number): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.pq.clear();
    for (const key of this.waiting) {
      this.dirty.delete(key);
      this.addedAt.delete(key);
    }
    this.waiting.clear();
    this.updateGauges();
    if (this.processing.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.pq.onIdle().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), Math.max(0, deadlineSeconds) * 1000);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.logger.warn(
        { inFlight: [...this.processing], deadlineSeconds },
        'shutdown deadline passed with reconciles still running',
      );
    }
  }

  private schedule(key: string): void {
    this.waiting.add(key);
    this.updateGauges();
    // run() never rejects: errors are handled inside.
    void this.pq.add(() => this.run(key));
  }

  private async run(key: string): Promise<void> {
    this.waiting.delete(key);
    this.dirty.delete(key);
    this.processing.add(key);
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (added !== undefined) {
      this.opts.metrics?.phaseDuration.observe(
        { operation: this.opts.operation ?? this.name, phase: 'queue_wait' },
        Math.max(0, nowSeconds() - added),
      );
    }
    this.updateGauges();

    const attempt = this.failures.get(key) ?? 0;
    const reconcileID = randomBytes(6).toString('hex');
    const logger = this.logger.child({ key, reconcileID });
    try {
      const result = await this.reconcile(key, { logger, reconcileID, attempt });
      // Success forgets the failures, unless the run asked for a rate-limited requeue itself.
      if ((this.failures.get(key) ?? 0) <= attempt) this.failures.delete(key);
      const after = result?.requeueAfterSeconds;
      if (after !== undefined && Number.isFinite(after)) this.addAfter(key, after);
    } catch (err) {
      this.failures.set(key, attempt); // a requeue inside the run must not count twice
      const delay = this.addRateLimited(key, this.opts.minRetrySeconds?.(err));
      logger.error({ err, attempt: attempt + 1, retryInSeconds: Math.round(delay * 1000) / 1000 }, 'reconcile failed');
    } finally {
      this.processing.delete(key);
      // Added while running: exactly one more run (unless shut down, then the key is dropped).
      if (this.dirty.has(key)) {
        if (this.shuttingDown) {
          this.dirty.delete(key);
          this.addedAt.delete(key);
        } else this.schedule(key);
      }
      this.updateGauges();
    }
  }

  private updateGauges(): void {
    this.opts.metrics?.workqueueDepth.set({ queue: this.name }, this.waiting.size);
    this.opts.metrics?.workqueueInFlight.set({ queue: this.name }, this.processing.size);
  }
}
