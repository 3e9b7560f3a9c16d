import type { V1Node, V1Pod, V1Toleration } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ANN_HELPER_PATH, HELPER_CONTAINER } from '../src/domain/constants.js';
import { buildHelperPod } from '../src/domain/helper-pod.js';
import {
  classifyHelper,
  deletedFailure,
  helperNeverStarted,
  timeoutFailure,
  type HelperFailureReason,
  type HelperState,
} from '../src/domain/helper-status.js';
import type { HelperOperation } from '../src/domain/names.js';
import { apiErrorMessage, apiStatusCode } from '../src/kube/client.js';
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

/** Called with the current pod, or with undefined and the deleted object once it is gone. */
type Listener = (pod: V1Pod | undefined, deleted?: V1Pod) => void;

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

/**
 * Runs helper pods and waits for them through the helper informer (no polling): creates the pod (or adopts the one a
 * previous run or process left under the same deterministic name), waits until it succeeds, fails or times out,
 * reads the log tail of a failed helper, and always deletes the pod afterwards.
 */
export class HelperRunner {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly running = new Set<string>();

  constructor(
    private readonly deps: {
      readonly cache: ClusterCache;
      readonly kube: KubeWriter;
      readonly metrics: ControllerMetrics;
      readonly settings: HelperSettings;
      readonly clock: Clock;
    },
  ) {}

  /** Feed from the helper informer: call on every add/update (`deleted` false) and delete (`deleted` true). */
  onHelperEvent(pod: V1Pod, deleted: boolean): void {
    const name = pod.metadata?.name;
    if (!name) return;
    for (const listener of [...(this.listeners.get(name) ?? [])]) {
      if (deleted) listener(undefined, pod);
      else listener(pod);
    }
  }

  /** Names of helpers a run is working with right now (the leftover sweep must not touch them). */
  isRunning(name: string): boolean {
    return this.running.has(name);
  }

  /**
   * Runs one helper to completion.
   *
   * @param request - what to do where.
   * @param logger - the reconcile's logger.
   * @returns success, or a named failure with a message for events; never throws for helper failures
   *   (API errors other than the pod's own outcome are thrown and retried by the work queue).
   */
  async run(request: HelperRequest, logger: Logger): Promise<HelperResult> {
    const { settings, kube, metrics } = this.deps;
    const desired = buildHelperPod({
      operation: request.operation,
      volumeName: request.volumeName,
      namespace: settings.namespace,
      nodeName: request.node.metadata?.name ?? '',
      baseDirectory: request.baseDirectory,
      directoryName: request.directoryName,
      image: settings.image,
      tolerations: request.tolerations,
      priorityClassName: settings.priorityClassName,
      capabilities: settings.capabilities,
      activeDeadlineSeconds: settings.timeoutSeconds,
      ...(request.claim ? { claim: request.claim } : {}),
    });
    const name = desired.metadata?.name ?? '';
    if (this.running.has(name)) throw new Error(`helper ${name} is already being run`);
    this.running.add(name);
    const started = this.deps.clock();
    try {
      let pod: V1Pod;
      try {
        pod = await this.obtain(desired, logger);
      } catch (err) {
        const refused = refusedByApiServer(err);
        if (refused === undefined) throw err;
        metrics.helperOutcome(request.operation, 'admission');
        logger.warn({ helper: name, err }, `the API server refused the helper pod: ${refused}`);
        return {
          ok: false,
          podName: name,
          reason: 'admission',
          message: `the API server refused the helper pod: ${refused}`,
        };
      }
      const result = await this.waitForOutcome(pod, request.operation, started, logger);
      metrics.helperOutcome(request.operation, result.ok ? 'succeeded' : result.reason);
      return result;
    } finally {
      await kube.deletePod(settings.namespace, name).catch((err: unknown) => {
        logger.warn({ err, helper: name }, 'could not delete helper pod; the leftover sweep will retry');
      });
      this.running.delete(name);
    }
  }

  /** Creates the helper, or adopts an existing one with the same name and spec; replaces a stale one. */
  private async obtain(desired: V1Pod, logger: Logger): Promise<V1Pod> {
    const { cache, kube, settings } = this.deps;
    const name = desired.metadata?.name ?? '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = cache.helper(name);
      if (existing) {
        const samePath =
          existing.metadata?.annotations?.[ANN_HELPER_PATH] === desired.metadata?.annotations?.[ANN_HELPER_PATH];
        const sameNode =
          JSON.stringify(existing.spec?.affinity?.nodeAffinity) ===
          JSON.stringify(desired.spec?.affinity?.nodeAffinity);
        const terminal = existing.status?.phase === 'Failed';
        if (!existing.metadata?.deletionTimestamp && samePath && sameNode && !terminal) {
          logger.info({ helper: name }, 'adopting existing helper pod');
          return existing;
        }
        logger.info({ helper: name }, 'replacing a stale helper pod');
        await kube.deletePod(settings.namespace, name, existing.metadata?.uid);
        await this.waitUntil(name, (pod) => pod === undefined, settings.timeoutSeconds);
        continue;
      }
      const created = await kube.createPod(desired);
      if (created.created) {
        logger.info({ helper: name, tolerations: desired.spec?.tolerations }, 'created helper pod');
        return created.object;
      }
      // AlreadyExists: the cache has not seen it yet; wait for it to show up, then decide again.
      await this.waitUntil(name, (pod) => pod !== undefined, 10);
    }
    throw new Error(`could not create helper pod ${name}: it keeps existing with another spec`);
  }

  /** Waits until the helper finishes or times out; enriches failures with the log tail. */
  private async waitForOutcome(
    pod: V1Pod,
    operation: HelperOperation,
    started: number,
    logger: Logger,
  ): Promise<HelperResult> {
    const { settings, metrics, kube, clock } = this.deps;
    const name = pod.metadata?.name ?? '';
    let last: HelperState = classifyHelper(pod);
    let lastPod: V1Pod = pod;
    let scheduledAt: number | undefined;
    const final = await new Promise<HelperState | 'deleted' | 'timeout'>((resolve) => {
      let done = false;
      let stop = (): void => undefined;
      const finish = (value: HelperState | 'deleted' | 'timeout'): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        stop();
        resolve(value);
      };
      const observe = (current: V1Pod | undefined, deletedPod?: V1Pod): void => {
        if (current === undefined) {
          if (deletedPod) lastPod = deletedPod;
          return finish('deleted');
        }
        lastPod = current;
        last = classifyHelper(current);
        if (scheduledAt === undefined && current.spec?.nodeName) {
          scheduledAt = clock();
          metrics.phase(operation, 'helper_scheduling', (scheduledAt - started) / 1000);
        }
        if (last.state === 'succeeded' || last.state === 'failed') finish(last);
      };
      const timer = setTimeout(() => finish('timeout'), settings.timeoutSeconds * 1000);
      stop = this.subscribe(name, observe);
      observe(this.deps.cache.helper(name) ?? pod);
    });
    if (scheduledAt !== undefined) metrics.phase(operation, 'helper_run', (clock() - scheduledAt) / 1000);

    if (final === 'deleted') {
      const gone = deletedFailure(lastPod);
      logger.warn({ helper: name, reason: gone.reason }, `helper pod failed: ${gone.message}`);
      return { ok: false, podName: name, reason: gone.reason, message: gone.message };
    }
    const outcome = final === 'timeout' ? timeoutFailure(last, settings.timeoutSeconds) : final;
    if (outcome.state === 'succeeded') {
      if (operation !== 'list') return { ok: true, podName: name };
      const output = await kube.readPodLog(settings.namespace, name, HELPER_CONTAINER, LIST_MAX_LINES, LIST_MAX_BYTES);
      if (output.startsWith(LOG_UNAVAILABLE) || Buffer.byteLength(output) >= LIST_MAX_BYTES) {
        const why = output.startsWith(LOG_UNAVAILABLE) ? output : `more than ${LIST_MAX_BYTES} bytes`;
        return { ok: false, podName: name, reason: 'failed', message: `cannot read the listing: ${why}` };
      }
      return { ok: true, podName: name, output };
    }
    if (outcome.state !== 'failed') throw new Error('unreachable');
    let message = outcome.message;
    if (outcome.reason === 'failed') {
      const log = (await kube.readPodLog(settings.namespace, name, HELPER_CONTAINER, LOG_TAIL_LINES)).trim();
      if (log) message += `: ${log}`;
    }
    const neverStarted = final === 'timeout' && helperNeverStarted(lastPod);
    // A list helper that never started is how an absent base directory looks; the orphan report skips it quietly.
    const quiet = neverStarted && operation === 'list';
    logger[quiet ? 'info' : 'warn']({ helper: name, reason: outcome.reason }, `helper pod failed: ${message}`);
    return { ok: false, podName: name, reason: outcome.reason, message, ...(neverStarted ? { neverStarted } : {}) };
  }

  /** Resolves when `predicate` holds for the cached helper (checked now and on each event), or after `seconds`. */
  private waitUntil(name: string, predicate: (pod: V1Pod | undefined) => boolean, seconds: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let stop = (): void => undefined;
      const timer = setTimeout(() => {
        stop();
        resolve();
      }, seconds * 1000);
      timer.unref?.();
      const check = (pod: V1Pod | undefined): void => {
        if (predicate(pod)) {
          clearTimeout(timer);
          stop();
          resolve();
        }
      };
      stop = this.subscribe(name, check);
      check(this.deps.cache.helper(name));
    });
  }

  private subscribe(name: string, listener: Listener): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(name);
    };
  }
}
