import { V1MicroTime, type ConfigurationOptions, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';
import type { Logger } from '../runtime/logger.js';
import type { Metrics } from '../runtime/metrics.js';
import { abortable, apiErrorMessage, isAlreadyExists, isConflict, isNotFound } from './client.js';
import { Sleeper } from '../runtime/sleeper.js';

/**
 * The part of CoordinationV1Api the elector uses (the real CoordinationV1Api satisfies it; tests pass a fake). The
 * second argument carries the attempt's abort signal (see {@link abortable}); give the elector a client of its own
 * (`KubeClients.coordination`), so its requests never wait behind other work.
 */
export interface LeaseApi {
  readNamespacedLease(param: { name: string; namespace: string }, options?: ConfigurationOptions): Promise<V1Lease>;
  createNamespacedLease(param: { namespace: string; body: V1Lease }, options?: ConfigurationOptions): Promise<V1Lease>;
  replaceNamespacedLease(
    param: { name: string; namespace: string; body: V1Lease },
    options?: ConfigurationOptions,
  ): Promise<V1Lease>;
}

/** Options of {@link LeaderElector}; durations in seconds. */
export interface LeaderElectorOptions {
  readonly coordination: LeaseApi;
  readonly namespace: string;
  /** Lease name, e.g. `microk8s.io-hostpath` (shared with the original addon on purpose). */
  readonly name: string;
  /** Unique per replica, e.g. `<pod name>_<random>`. */
  readonly identity: string;
  /** How long standbys wait after they last saw the record change before taking over (written rounded, ≥ 1). */
  readonly leaseDurationSeconds: number;
  /**
   * How long one renewal, with its retries every retry period, may take before the leader gives up leadership; the
   * request in flight at that moment is aborted.
   */
  readonly renewDeadlineSeconds: number;
  /** Interval between attempts. */
  readonly retryPeriodSeconds: number;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Wall clock in ms, for the renewTime/acquireTime written (tests). */
  readonly now?: () => number;
  /** Monotonic clock in ms, for every expiry and deadline judgement (tests). */
  readonly monotonic?: () => number;
  /** Uniform random source for the retry jitter (tests). */
  readonly random?: () => number;
}

/** Why leadership ended. */
export type StoppedReason = 'lost' | 'released';

/** Callbacks of {@link LeaderElector.run}. */
export interface LeaderCallbacks {
  /** Called once when this replica becomes leader (errors are logged). */
  readonly onStartedLeading: () => void;
  /**
   * Called once when leadership ends after it started: `lost` (renewal failed for the renew deadline, or another
   * holder took the Lease — the caller should exit the process) or `released` (after {@link LeaderElector.release}).
   */
  readonly onStoppedLeading: (reason: StoppedReason) => void;
  /** Called when the observed holder changes (including to this replica). */
  readonly onNewLeader?: (identity: string) => void;
}

/**
 * Serialises a time as a Kubernetes MicroTime: RFC 3339 with exactly 6 fractional digits. client-node 2.x sends a
 * `V1MicroTime` through `toISOString()`, which V1MicroTime overrides to pad milliseconds with `000`; a plain `Date`
 * would send 3 digits, which the API server rejects with 400 for Lease times.
 *
 * @param ms - Unix time in milliseconds.
 * @returns a V1MicroTime (a Date subclass) whose JSON form is `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
 */
export function microTime(ms: number): V1MicroTime {
  return new V1MicroTime(ms);
}

/** A time field as read back: client-node leaves MicroTime fields as strings; Dates are printed with 6 digits. */
function timeString(v: unknown): string {
  if (v instanceof Date) return new V1MicroTime(v.getTime()).toISOString();
  return typeof v === 'string' ? v : '';
}

/** The record fields whose change proves the holder is alive (client-go compares the raw record). */
function recordKey(spec: V1LeaseSpec | undefined): string {
  return JSON.stringify([
    spec?.holderIdentity ?? '',
    spec?.leaseDurationSeconds ?? 0,
    timeString(spec?.acquireTime),
    timeString(spec?.renewTime),
    spec?.leaseTransitions ?? 0,
  ]);
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease with the semantics of client-go's `leaderelection` package:
 * - A replica takes the Lease when it is absent, already held by this identity, released (empty holder), or expired.
 *   Expiry is judged on the local monotonic clock from when this replica last saw the record change, plus the
 *   record's `leaseDurationSeconds` — never from the remote `renewTime` (clocks of replicas may differ).
 * - Writes use the resourceVersion that was read (optimistic concurrency): a 409 means another replica won the race.
 * - The leader renews as client-go's `renew` loop does: one retry period after a success it starts a renewal that
 *   tries at once and then every retry period, all bounded by the renew deadline
 *   (`PollImmediateUntil(retryPeriod, tryAcquireOrRenew, timeout(renewDeadline))`); when the deadline passes, the
 *   request in flight is aborted and it stops leading (`onStoppedLeading('lost')`; the caller exits). Leadership
 *   ends at most retryPeriod + renewDeadline after the start of the last successful attempt (while the event loop
 *   runs); a standby takes over no earlier than leaseDuration after it, so with leaseDuration > retryPeriod +
 *   renewDeadline (15 > 2 + 10 by default) the two never overlap.
 *   Standbys retry every retry period with jitter (× 1 … 2.2).
 * - Taking over increments `leaseTransitions` and sets `acquireTime`; renewals keep both.
 * - `renewTime`/`acquireTime` are written with microsecond precision (see {@link microTime}).
 * - `release()` (on SIGTERM) writes holderIdentity '', leaseDurationSeconds 1, renewTime = acquireTime = now, as
 *   client-go's ReleaseOnCancel does, so a standby takes over at once.
 * The leader gauge `hostpath_provisioner_leader` follows `isLeader()`.
 */
export class LeaderElector {
  private readonly opts: LeaderElectorOptions;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly mono: () => number;
  private observed: V1Lease | undefined;
  private observedKey = '';
  private observedAt = 0;
  private leader = false;
  private stopped = false;
  private running = false;
  private attempt: Promise<boolean> | undefined;
  /** Monotonic ms when the last successful attempt started: its write reached the server after this moment. */
  private lastSuccessStartedAt = 0;
  private readonly sleeper = new Sleeper();
  private lastHolder: string | undefined;
  private onNewLeader: ((identity: string) => void) | undefined;

  /**
   * @param options - see {@link LeaderElectorOptions}.
   * @throws RangeError unless leaseDuration > renewDeadline > 0 and retryPeriod > 0 (client-go's checks).
   */
  constructor(options: LeaderElectorOptions) {
    if (!(options.retryPeriodSeconds > 0)) throw new RangeError('retry period must be > 0');
    if (!(options.renewDeadlineSeconds > 0)) throw new RangeError('renew deadline must be > 0');
    if (!(options.leaseDurationSeconds > options.renewDeadlineSeconds)) {
      throw new RangeError('lease duration must be greater than the renew deadline');
    }
    if (options.identity === '') throw new RangeError('identity must not be empty');
    this.opts = options;
    this.logger = options.logger.child({ component: 'leader-election', lease: `${options.namespace}/${options.name}` });
    this.now = options.now ?? Date.now;
    this.mono = options.monotonic ?? (() => performance.now());
  }

  /** True while this replica holds the Lease (from acquisition until loss or release). */
  isLeader(): boolean {
    return this.leader;
  }

  /** Holder identity last observed on the Lease ('' when released, undefined before the first read). */
  currentLeader(): string | undefined {
    return this.lastHolder;
  }

  /**
   * Campaigns for the Lease, then renews it.
   *
   * @param callbacks - see {@link LeaderCallbacks}.
   * @returns a promise that resolves when leadership has ended (lost or released), or when `release()` is called
   *   before this replica ever led. Never rejects on API errors (they are retried and logged).
   * @throws Error when already running.
   */
  async run(callbacks: LeaderCallbacks): Promise<void> {
    if (this.running) throw new Error('leader election already running');
    this.running = true;
    this.onNewLeader = callbacks.onNewLeader;
    try {
      this.logger.info({ identity: this.opts.identity }, 'campaigning for the Lease');
      while (!this.stopped) {
        // A campaign attempt is bounded too: a hung connection must not stall the campaign.
        if (await this.tryOnce(AbortSignal.timeout(this.opts.renewDeadlineSeconds * 1000))) break;
        const jitter = 1 + 1.2 * (this.opts.random ?? Math.random)();
        await this.sleeper.sleep(this.opts.retryPeriodSeconds * jitter);
      }
      if (this.stopped) return;

      this.setLeader(true);
      this.logger.info({ identity: this.opts.identity }, 'became leader');
      this.safely(() => callbacks.onStartedLeading(), 'onStartedLeading');

      while (!this.stopped) {
        await this.sleeper.sleep(this.opts.retryPeriodSeconds);
        if (this.stopped) break;
        const renewed = await this.renew();
        if (this.stopped) break;
        if (!renewed) {
          this.setLeader(false);
          this.logger.error(
            { renewDeadlineSeconds: this.opts.renewDeadlineSeconds, holder: this.lastHolder },
            'failed to renew the Lease within the renew deadline: leadership lost',
          );
          this.safely(() => callbacks.onStoppedLeading('lost'), 'onStoppedLeading');
          return;
        }
      }
      // Stopped by release().
      this.safely(() => callbacks.onStoppedLeading('released'), 'onStoppedLeading');
    } finally {
      this.running = false;
    }
  }

  /**
   * Stops campaigning/renewing and, if this replica leads, releases the Lease (holder '', duration 1 s) so a
   * standby takes over at once. Waits for an attempt in progress first. API errors are logged, not thrown.
   */
  async release(): Promise<void> {
    this.stopped = true;
    this.sleeper.wake();
    await this.attempt?.catch(() => false);
    const lease = this.observed;
    // Also when an attempt in flight just won the Lease but run() has not yet marked this replica leader.
    const holding = this.leader || lease?.spec?.holderIdentity === this.opts.identity;
    this.setLeader(false);
    if (!holding || lease === undefined) return;
    const now = microTime(this.now());
    const body: V1Lease = {
      ...lease,
      spec: {
        ...lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: lease.spec?.leaseTransitions ?? 0,
      },
    };
    try {
      const updated = await this.opts.coordination.replaceNamespacedLease(
        { name: this.opts.name, namespace: this.opts.namespace, body },
        abortable(AbortSignal.timeout(this.opts.renewDeadlineSeconds * 1000)),
      );
      this.observe(updated);
      this.logger.info('released the Lease');
    } catch (err) {
      this.logger.warn({ err, detail: apiErrorMessage(err) }, 'could not release the Lease');
    }
  }

  /**
   * One renewal: attempts at once and then every retry period until one succeeds or the deadline has passed; at the
   * deadline the request in flight is aborted. The deadline is the renew deadline from the start of the renewal, as
   * in client-go, but never later than retryPeriod + renewDeadline after the *start* of the last successful attempt
   * (a slow answer to that attempt does not extend leadership): a standby cannot take over before leaseDuration after
   * that start, since the write it observes reached the server after it.
   * Resolves true when renewed, false when the deadline passed, the Lease has another holder, or `release()` began.
   */
  private async renew(): Promise<boolean> {
    const { renewDeadlineSeconds, retryPeriodSeconds } = this.opts;
    const deadline = Math.min(
      this.mono() + renewDeadlineSeconds * 1000,
      this.lastSuccessStartedAt + (retryPeriodSeconds + renewDeadlineSeconds) * 1000,
    );
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException('renew deadline passed', 'TimeoutError')),
      Math.max(0, deadline - this.mono()),
    );
    const expired = new Promise<false>((resolve) => {
      controller.signal.addEventListener('abort', () => resolve(false), { once: true });
    });
    try {
      while (!this.stopped) {
        // A request that ignores the signal must not hold the loop past the deadline either.
        if (await Promise.race([this.tryOnce(controller.signal), expired])) return true;
        if (this.stopped || controller.signal.aborted || this.mono() >= deadline) return false;
        await Promise.race([this.sleeper.sleep(this.opts.retryPeriodSeconds), expired]);
        if (controller.signal.aborted || this.mono() >= deadline) return false;
      }
      return false;
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }

  // ---- one attempt ------------------------------------------------------------------------------------------------

  private tryOnce(signal?: AbortSignal): Promise<boolean> {
    const startedAt = this.mono();
    const p = this.tryAcquireOrRenew(signal).then(
      (ok) => {
        if (ok) this.lastSuccessStartedAt = startedAt;
        return ok;
      },
      (err: unknown) => {
        if (signal?.aborted) {
          this.logger.warn(
            { renewDeadlineSeconds: this.opts.renewDeadlineSeconds },
            'Lease request aborted: it took longer than the renew deadline',
          );
          return false;
        }
        this.logger.warn({ err, detail: apiErrorMessage(err) }, 'Lease attempt failed');
        return false;
      },
    );
    this.attempt = p;
    return p;
  }

  /** client-go's tryAcquireOrRenew: true when this replica holds the Lease after the call. */
  private async tryAcquireOrRenew(signal?: AbortSignal): Promise<boolean> {
    const { coordination: api, namespace, name, identity } = this.opts;
    const nowTime = microTime(this.now());
    const options = signal !== undefined ? abortable(signal) : undefined;
    let lease: V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace }, options);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        const created = await api.createNamespacedLease(
          {
            namespace,
            body: {
              apiVersion: 'coordination.k8s.io/v1',
              kind: 'Lease',
              metadata: { name, namespace },
              spec: {
                holderIdentity: identity,
                leaseDurationSeconds: this.leaseDurationField(),
                acquireTime: nowTime,
                renewTime: nowTime,
                leaseTransitions: 0,
              },
            },
          },
          options,
        );
        this.observe(created);
        return true;
      } catch (createErr) {
        if (isAlreadyExists(createErr)) return false; // another replica created it first
        throw createErr;
      }
    }
    if (this.stopped) return false;

    const key = recordKey(lease.spec);
    if (key !== this.observedKey) this.observe(lease);
    else this.observed = lease; // same record, newer object (resourceVersion) for the update
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const duration = (spec.leaseDurationSeconds ?? this.opts.leaseDurationSeconds) * 1000;
    if (holder !== '' && holder !== identity && this.observedAt + duration > this.mono()) {
      return false; // held by another replica, not expired by our clock
    }

    const ours = holder === identity;
    const body: V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: this.leaseDurationField(),
        renewTime: nowTime,
        acquireTime: ours && spec.acquireTime !== undefined ? new V1MicroTime(timeString(spec.acquireTime)) : nowTime,
        leaseTransitions: ours ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      const updated = await api.replaceNamespacedLease({ name, namespace, body }, options);
      this.observe(updated);
      if (!ours) this.logger.info({ previousHolder: holder || undefined }, 'took over the Lease');
      return true;
    } catch (err) {
      if (isConflict(err)) {
        this.logger.debug('Lease changed between read and update (lost the race)');
        return false;
      }
      throw err;
    }
  }

  private observe(lease: V1Lease): void {
    this.observed = lease;
    this.observedKey = recordKey(lease.spec);
    this.observedAt = this.mono();
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== this.lastHolder) {
      this.lastHolder = holder;
      if (holder !== '') {
        this.logger.info({ holder }, 'new leader observed');
        const cb = this.onNewLeader;
        if (cb) this.safely(() => cb(holder), 'onNewLeader');
      }
    }
  }

  private leaseDurationField(): number {
    return Math.max(1, Math.round(this.opts.leaseDurationSeconds));
  }

  private setLeader(v: boolean): void {
    this.leader = v;
    this.opts.metrics?.leader.set(v ? 1 : 0);
  }

  private safely(fn: () => void, what: string): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err }, `${what} threw`);
    }
  }
}
