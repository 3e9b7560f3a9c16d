import type { V1Node, V1Pod, V1Toleration } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  ANN_HELPER_PATH,
  ANN_HELPER_VOLUME_UID,
  HELPER_CONTAINER,
  LABEL_MANAGED_BY,
  MANAGED_BY_VALUE,
} from '../src/domain/constants.js';
import { buildHelperPod } from '../src/domain/helper-pod.js';
import {
  classifyHelper,
  deletedFailure,
  helperNeverStarted,
  timeoutFailure,
  type HelperFailureReason,
  type HelperState,
} from '../src/domain/helper-status.js';
import { helperPodName, type HelperOperation } from '../src/domain/names.js';
import type { DirectoryOwnership } from '../src/domain/ownership.js';
import { apiErrorMessage, apiStatusCode } from '../src/kube/client.js';
import { backoffSeconds } from '../src/runtime/backoff.js';
import { Expectations } from './expectations.js';
import type { ClusterCache, Clock, ControllerMetrics, KubeWriter } from './ports.js';

/** Settings of helper pods, from the configuration. */
export interface HelperSettings {
  /** Namespace helpers run in (the provisioner's). */
  readonly namespace: string;
  readonly image: string;
  /** '' for none. */
  readonly priorityClassName: string;
  /** Capabilities the root helper keeps (`--helper-capabilities`); default DAC_OVERRIDE and FOWNER. */
  readonly capabilities?: readonly string[] | undefined;
  /** Bound on Pending/Unschedulable/running, in seconds. */
  readonly timeoutSeconds: number;
  /** Helpers in progress on one node at most (create, delete and list together). */
  readonly maxPerNode: number;
  /** Backoff between failed helpers of one volume: first delay and upper bound, seconds (default 1 and 300). */
  readonly retryBaseSeconds?: number;
  readonly retryMaxSeconds?: number;
}

/** One helper run: which operation, for which volume, on which node, on which directory. */
export interface HelperRequest {
  readonly operation: HelperOperation;
  readonly volumeName: string;
  readonly node: V1Node;
  readonly baseDirectory: string;
  readonly directoryName: string;
  readonly tolerations: readonly V1Toleration[];
  readonly claim?: { readonly key: string; readonly uid: string };
  /** For create helpers: the class's `uid`, `gid` and `mode` (default: mode 0777, no chown). */
  readonly ownership?: DirectoryOwnership;
  /** For delete helpers: the uid of the PV (read live just before); an existing helper is adopted only if it matches. */
  readonly volumeUid?: string;
  /** The base directory is a shared file system's mount: it must exist on the node (see HelperPodInput). */
  readonly sharedBase?: boolean;
}

/** Outcome of a helper run. On failure `message` says what happened (scheduler message, exit code and stderr). */
export type HelperResult =
  /** `output`: the helper's log, for `list` runs (the directory names). */
  | { readonly ok: true; readonly podName: string; readonly output?: string }
  | {
      readonly ok: false;
      readonly podName: string;
      readonly reason: HelperFailureReason;
      readonly message: string;
      /** Timed out on its node without its container ever starting (e.g. a hostPath of type Directory is absent). */
      readonly neverStarted?: boolean;
    };

/**
 * Why the API server refused to create a helper pod — admission (a ResourceQuota, a webhook, a LimitRange, pod
 * security), an invalid spec (a bad BUSYBOX_IMAGE) — or undefined for errors worth retrying silently (conflicts,
 * timeouts, server errors). These refusals will not fix themselves, so they are reported like a failed helper.
 */
export function refusedByApiServer(err: unknown): string | undefined {
  const code = apiStatusCode(err);
  return code === 400 || code === 403 || code === 422 ? apiErrorMessage(err) : undefined;
}

/** Lines of a failed helper's log quoted in events. */
const LOG_TAIL_LINES = 20;
/** Lines of a `list` helper's log read back (directory names). */
const LIST_MAX_LINES = 100_000;
const LIST_MAX_BYTES = 8 * 1024 * 1024;
/** How ProvisionerApi.readPodLog says the log could not be read. */
const LOG_UNAVAILABLE = '(log unavailable:';

/** One step of a helper run: finished with a result, or still in progress (come back later or on its next event). */
export type HelperStep =
  | { readonly done: true; readonly result: HelperResult }
  | {
      readonly done: false;
      readonly podName: string;
      /** When to look again at the latest (the helper's status changes also requeue its owner), seconds. */
      readonly requeueAfterSeconds: number;
      /** Where it stands, for the log. */
      readonly message: string;
    };

/** What this process knows of a helper it created or adopted and has not finished with. */
interface Tracked {
  readonly operation: HelperOperation;
  readonly node: string;
  /** Pod uid, once known. */
  uid: string | undefined;
  /** When this process first created or saw it (clock ms): the timeout counts from here. */
  readonly since: number;
  /** When it was first seen bound to its node (clock ms). */
  scheduledAt?: number;
  /** Last step (clock ms), to drop tracking of helpers no reconcile asks for any more. */
  lastStep: number;
}

/** Called with the current pod, or with undefined once it is gone. */
type Listener = (pod: V1Pod | undefined) => void;

/** A step that is not done: look again after `seconds` (rounded up, at least 1) or on the helper's next event. */
function waiting(podName: string, seconds: number, message: string): HelperStep {
  return { done: false, podName, requeueAfterSeconds: Math.max(1, Math.ceil(seconds)), message };
}

/** Seconds to wait for the helper informer to show a pod this process just created. */
const CACHE_LAG_SECONDS = 10;

/**
 * Runs helper pods without holding a worker while they wait: {@link step} creates the pod (or adopts the one a
 * previous run or process left under the same deterministic name), and on each later call looks at its status in the
 * helper informer's cache — succeeded, failed, timed out — then reads the log tail of a failed helper and deletes the
 * pod (by uid). In between the reconcile returns a requeue delay; the helper's status changes requeue its owner too
 * (controllers/manager.ts), like controller-runtime's "requeue on owned object change". At most `maxPerNode` helpers
 * run on one node at once, so a node where helpers hang cannot take every slot.
 */
export class HelperRunner {
  private readonly tracked = new Map<string, Tracked>();
  /** Last object of tracked helpers someone else deleted before they finished (eviction, preemption, an admin). */
  private readonly gone = new Map<string, V1Pod>();
  /** Uids of helpers whose result was reported and that this process deleted (the cache may still show them). */
  private readonly reported: Expectations;
  private readonly listeners = new Map<string, Set<Listener>>();
  /**
   * Failed attempts per helper name and when the next one may be made (clock ms): a failed helper is retried with
   * exponential backoff whatever brings its owner back (a pod update, a resync), as the work queue's own backoff
   * alone cannot ensure — any event re-runs a key at once.
   */
  private readonly retries = new Map<string, { failures: number; notBefore: number }>();

  constructor(
    private readonly deps: {
      readonly cache: ClusterCache;
      readonly kube: KubeWriter;
      readonly metrics: ControllerMetrics;
      readonly settings: HelperSettings;
      readonly clock: Clock;
      /** Uniform random source for the backoff jitter (tests). */
      readonly random?: () => number;
    },
  ) {
    this.reported = new Expectations(deps.clock);
  }

  /** Feed from the helper informer: call on every add/update (`deleted` false) and delete (`deleted` true). */
  onHelperEvent(pod: V1Pod, deleted: boolean): void {
    const name = pod.metadata?.name;
    if (!name) return;
    const tracked = this.tracked.get(name);
    if (deleted && tracked && (tracked.uid === undefined || tracked.uid === pod.metadata?.uid))
      this.gone.set(name, pod);
    for (const listener of [...(this.listeners.get(name) ?? [])]) listener(deleted ? undefined : pod);
  }

  /** Whether this process is working with the helper of that name now (the leftover sweep must not touch it). */
  isRunning(name: string): boolean {
    return this.tracked.has(name);
  }

  /** Whether a helper of `operation` for `volumeName` is in progress in this process. */
  isTracking(operation: HelperOperation, volumeName: string): boolean {
    return this.tracked.has(helperPodName(operation, volumeName));
  }

  /** Helpers in progress in this process (created or adopted, not finished). */
  get inProgress(): number {
    return this.tracked.size;
  }

  /** Helpers in progress on a node (counted against `maxPerNode`). */
  activeOnNode(node: string): number {
    let n = 0;
    for (const t of this.tracked.values()) if (t.node === node) n++;
    return n;
  }

  /**
   * Stops tracking helpers no reconcile has stepped for `seconds` (their claim or volume stopped asking: refused,
   * ignored), so they free their node's slot and the leftover sweep may judge them. Call from housekeeping.
   *
   * @returns the names dropped.
   */
  dropStale(seconds: number): string[] {
    const now = this.deps.clock();
    const dropped: string[] = [];
    for (const [name, t] of this.tracked) {
      if (now - t.lastStep <= seconds * 1000) continue;
      this.untrack(name);
      dropped.push(name);
    }
    for (const [name, r] of this.retries) if (now - r.notBefore > seconds * 1000) this.retries.delete(name);
    return dropped;
  }

  /**
   * The pod for a request as it would be created now (name, labels, annotations, spec).
   *
   * @param request - what to do where.
   */
  desiredPod(request: HelperRequest): V1Pod {
    const { settings } = this.deps;
    return buildHelperPod({
      operation: request.operation,
      volumeName: request.volumeName,
      namespace: settings.namespace,
      nodeName: request.node.metadata?.name ?? '',
      baseDirectory: request.baseDirectory,
      directoryName: request.directoryName,
      image: settings.image,
      tolerations: request.tolerations,
      // Only deletes free disk under pressure; creates and listings must not preempt anyone's pods.
      priorityClassName: request.operation === 'delete' ? settings.priorityClassName : '',
      capabilities: settings.capabilities,
      activeDeadlineSeconds: settings.timeoutSeconds,
      ...(request.claim ? { claim: request.claim } : {}),
      ...(request.ownership ? { ownership: request.ownership } : {}),
      ...(request.volumeUid !== undefined ? { volumeUid: request.volumeUid } : {}),
      ...(request.sharedBase ? { sharedBase: true } : {}),
    });
  }

  /**
   * Advances one helper run by one step, never waiting for the pod: creates or adopts it, or reports its outcome and
   * deletes it. Call again after `requeueAfterSeconds` or when the helper's status changes, with the same request.
   *
   * @param request - what to do where.
   * @param logger - the reconcile's logger.
   * @returns done with a result (success, or a named failure with a message for events), or not done yet; API
   *   errors other than the helper's own outcome are thrown (the work queue retries with backoff).
   */
  async step(request: HelperRequest, logger: Logger): Promise<HelperStep> {
    const { cache, kube, metrics, settings, clock } = this.deps;
    const desired = this.desiredPod(request);
    const name = desired.metadata?.name ?? '';
    const nodeName = request.node.metadata?.name ?? '';
    const now = clock();
    const pending = (seconds: number, message: string): HelperStep => waiting(name, seconds, message);
    const fail = (reason: HelperFailureReason, message: string): HelperStep => {
      this.untrack(name);
      this.recordOutcome(name, false, now);
      metrics.helperOutcome(request.operation, reason);
      logger.warn({ helper: name, reason }, `helper pod failed: ${message}`);
      return { done: true, result: { ok: false, podName: name, reason, message } };
    };
    let tracked = this.tracked.get(name);
    if (tracked) tracked.lastStep = now;
    const existing = cache.helper(name);

    if (!existing) {
      const lost = this.gone.get(name);
      if (tracked && lost) {
        const gone = deletedFailure(lost);
        return fail(gone.reason, gone.message);
      }
      if (tracked && now - tracked.since < CACHE_LAG_SECONDS * 1000) {
        return pending(1, 'created; waiting for the informer to show it');
      }
      this.untrack(name);
      const wait = this.mustWait(name, nodeName, now);
      if (wait) return wait;
      // The slot is taken before the request, so concurrent reconciles cannot both pass the limit.
      const slot: Tracked = { operation: request.operation, node: nodeName, uid: undefined, since: now, lastStep: now };
      this.tracked.set(name, slot);
      let created: Awaited<ReturnType<KubeWriter['createPod']>>;
      try {
        created = await kube.createPod(desired);
      } catch (err) {
        this.untrack(name);
        const refused = refusedByApiServer(err);
        if (refused === undefined) throw err;
        return fail('admission', `the API server refused the helper pod: ${refused}`);
      }
      if (!created.created) {
        this.untrack(name);
        const squatter = created.object;
        if (squatter && squatter.metadata?.labels?.[LABEL_MANAGED_BY] !== MANAGED_BY_VALUE) {
          return fail(
            'admission',
            `a pod named ${name} that is not a helper of ours exists in namespace ${settings.namespace}; delete it`,
          );
        }
        return pending(1, 'it exists already; waiting for the informer to show it');
      }
      slot.uid = created.object.metadata?.uid;
      logger.info({ helper: name, tolerations: desired.spec?.tolerations }, 'created helper pod');
      return pending(settings.timeoutSeconds, 'created');
    }

    if (existing.metadata?.deletionTimestamp || this.reported.isFinished(existing.metadata?.uid ?? '')) {
      return pending(1, 'the previous helper pod is being deleted');
    }
    // A helper that failed before this process knew it is not reported but made again (a fresh attempt).
    const staleFailure = !tracked && existing.status?.phase === 'Failed';
    if (!adoptable(existing, desired) || staleFailure) {
      logger.info({ helper: name }, 'replacing a stale helper pod');
      this.untrack(name);
      await kube.deletePod(settings.namespace, name, existing.metadata?.uid);
      return pending(1, 'replacing a stale helper pod');
    }
    if (!tracked) {
      logger.info({ helper: name }, 'adopting existing helper pod');
      tracked = {
        operation: request.operation,
        node: nodeName,
        uid: existing.metadata?.uid,
        since: now,
        lastStep: now,
      };
      this.tracked.set(name, tracked);
    }
    tracked.uid = existing.metadata?.uid;
    if (tracked.scheduledAt === undefined && existing.spec?.nodeName) {
      tracked.scheduledAt = now;
      metrics.phase(request.operation, 'helper_scheduling', (now - tracked.since) / 1000);
    }
    const state = classifyHelper(existing);
    const elapsed = (now - tracked.since) / 1000;
    if (state.state !== 'succeeded' && state.state !== 'failed' && elapsed < settings.timeoutSeconds) {
      return pending(settings.timeoutSeconds - elapsed, state.message);
    }
    if (tracked.scheduledAt !== undefined) {
      metrics.phase(request.operation, 'helper_run', (now - tracked.scheduledAt) / 1000);
    }
    const outcome =
      state.state === 'succeeded' || state.state === 'failed' ? state : timeoutFailure(state, settings.timeoutSeconds);
    const timedOut = state.state !== 'succeeded' && state.state !== 'failed';
    const result = await this.result(existing, request.operation, outcome, timedOut);
    // Delete by uid: never a pod another replica (after a lost Lease) or a later run made under the same name.
    // Untracked first: the pod's own delete events must not bring its owner back before the retry backoff.
    this.reported.finished(existing.metadata?.uid ?? '');
    this.untrack(name);
    this.recordOutcome(name, result.ok, now);
    await kube.deletePod(settings.namespace, name, existing.metadata?.uid).catch((err: unknown) => {
      logger.warn({ err, helper: name }, 'could not delete helper pod; the leftover sweep will retry');
    });
    metrics.helperOutcome(request.operation, result.ok ? 'succeeded' : result.reason);
    if (!result.ok) {
      // A list helper that never started is how an absent base directory looks; the orphan report skips it quietly.
      const quiet = result.neverStarted === true && request.operation === 'list';
      logger[quiet ? 'info' : 'warn']({ helper: name, reason: result.reason }, `helper pod failed: ${result.message}`);
    }
    return { done: true, result };
  }

  /**
   * What a {@link step} for this helper would answer without any API request: a helper of that name neither in
   * progress here nor in the cache, and either its node already runs `maxPerNode` helpers of this process or a failed
   * attempt's backoff is not over. The reconcilers ask before their live reads (the node, the PV), so a claim or
   * volume waiting for a slot costs no request per re-check.
   *
   * @param operation - the helper's operation.
   * @param volumeName - the PV name the helper is for.
   * @param nodeName - the node it would run on.
   * @returns the waiting step (requeue delay in seconds and why), or undefined when a step would create, adopt or
   *   look at a helper.
   */
  waitsBeforeCreate(operation: HelperOperation, volumeName: string, nodeName: string): HelperStep | undefined {
    const name = helperPodName(operation, volumeName);
    if (this.tracked.has(name) || this.deps.cache.helper(name)) return undefined;
    return this.mustWait(name, nodeName, this.deps.clock());
  }

  /** The wait before creating helper `name` on `nodeName` (backoff after a failure, or a full node), else undefined. */
  private mustWait(name: string, nodeName: string, now: number): HelperStep | undefined {
    const pending = (seconds: number, message: string): HelperStep => waiting(name, seconds, message);
    const retry = this.retries.get(name);
    if (retry && retry.notBefore > now) {
      return pending(
        (retry.notBefore - now) / 1000,
        `retrying after ${retry.failures} failed helper pod(s), with backoff`,
      );
    }
    const { maxPerNode } = this.deps.settings;
    if (this.activeOnNode(nodeName) >= maxPerNode) {
      return pending(
        5,
        `node ${nodeName} already has ${maxPerNode} helper pods in progress (--max-helpers-per-node); waiting for one to finish`,
      );
    }
    return undefined;
  }

  /**
   * Runs one helper to completion, waiting on its informer events between steps (for the orphan report, which
   * runs outside the work queues).
   *
   * @returns as {@link step}'s result.
   */
  async run(request: HelperRequest, logger: Logger): Promise<HelperResult> {
    const name = helperPodName(request.operation, request.volumeName);
    for (;;) {
      const step = await this.step(request, logger);
      if (step.done) return step.result;
      await this.nextChange(name, step.requeueAfterSeconds);
    }
  }

  /**
   * Deletes the helper of `operation` for `volumeName` if one exists (by uid), whether or not a run is in progress:
   * used when the object no longer asks for the helper's work (a PV switched to Retain or re-bound while its delete
   * helper was Pending; a claim deleted while its create helper waits).
   *
   * @returns true when a helper was deleted.
   */
  async removeHelper(operation: HelperOperation, volumeName: string, logger: Logger): Promise<boolean> {
    const name = helperPodName(operation, volumeName);
    this.untrack(name);
    this.retries.delete(name);
    const existing = this.deps.cache.helper(name);
    if (!existing || existing.metadata?.deletionTimestamp) return false;
    logger.info({ helper: name }, 'deleting a helper pod whose work is no longer wanted');
    await this.deps.kube.deletePod(this.deps.settings.namespace, name, existing.metadata?.uid);
    return true;
  }

  /** The result for a finished (or timed-out) helper: the listing of a `list`, the log tail of a failure. */
  private async result(
    pod: V1Pod,
    operation: HelperOperation,
    outcome: Extract<HelperState, { state: 'succeeded' | 'failed' }>,
    timedOut: boolean,
  ): Promise<HelperResult> {
    const { settings, kube } = this.deps;
    const name = pod.metadata?.name ?? '';
    if (outcome.state === 'succeeded') {
      if (operation !== 'list') return { ok: true, podName: name };
      const output = await kube.readPodLog(settings.namespace, name, HELPER_CONTAINER, LIST_MAX_LINES, LIST_MAX_BYTES);
      if (output.startsWith(LOG_UNAVAILABLE) || Buffer.byteLength(output) >= LIST_MAX_BYTES) {
        const why = output.startsWith(LOG_UNAVAILABLE) ? output : `more than ${LIST_MAX_BYTES} bytes`;
        return { ok: false, podName: name, reason: 'failed', message: `cannot read the listing: ${why}` };
      }
      return { ok: true, podName: name, output };
    }
    let message = outcome.message;
    if (outcome.reason === 'failed') {
      const log = (await kube.readPodLog(settings.namespace, name, HELPER_CONTAINER, LOG_TAIL_LINES)).trim();
      if (log) message += `: ${log}`;
    }
    const neverStarted = timedOut && helperNeverStarted(pod);
    return { ok: false, podName: name, reason: outcome.reason, message, ...(neverStarted ? { neverStarted } : {}) };
  }

  /** Helpers waiting out a retry backoff after a failure. */
  get backingOff(): number {
    const now = this.deps.clock();
    let n = 0;
    for (const r of this.retries.values()) if (r.notBefore > now) n++;
    return n;
  }

  /** Counts a failure (and sets when the next attempt may start) or forgets the failures after a success. */
  private recordOutcome(name: string, ok: boolean, now: number): void {
    if (ok) {
      this.retries.delete(name);
      return;
    }
    const failures = (this.retries.get(name)?.failures ?? 0) + 1;
    const { retryBaseSeconds = 1, retryMaxSeconds = 300 } = this.deps.settings;
    const delay = backoffSeconds(failures, retryBaseSeconds, retryMaxSeconds, this.deps.random);
    this.retries.set(name, { failures, notBefore: now + delay * 1000 });
  }

  private untrack(name: string): void {
    this.tracked.delete(name);
    this.gone.delete(name);
  }

  /** Resolves on the helper's next informer event, or after `seconds`. */
  private nextChange(name: string, seconds: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.listeners.get(name);
      if (!set) this.listeners.set(name, (set = new Set()));
      const listener: Listener = () => done();
      const timer = setTimeout(() => done(), seconds * 1000);
      timer.unref?.();
      const done = (): void => {
        clearTimeout(timer);
        set.delete(listener);
        if (set.size === 0) this.listeners.delete(name);
        resolve();
      };
      set.add(listener);
    });
  }
}

/**
 * Whether an existing helper pod may be adopted for `desired`: same path, node and (for delete helpers) PV uid.
 * Tolerations may differ: the node's taints may have changed since it was made.
 */
function adoptable(existing: V1Pod, desired: V1Pod): boolean {
  const ann = (pod: V1Pod, key: string) => pod.metadata?.annotations?.[key];
  return (
    ann(existing, ANN_HELPER_PATH) === ann(desired, ANN_HELPER_PATH) &&
    ann(existing, ANN_HELPER_VOLUME_UID) === ann(desired, ANN_HELPER_VOLUME_UID) &&
    JSON.stringify(existing.spec?.affinity?.nodeAffinity) === JSON.stringify(desired.spec?.affinity?.nodeAffinity)
  );
}
