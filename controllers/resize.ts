import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { claimClassName } from '../src/domain/class-name.js';
import { compareQuantities } from '../src/domain/quantity.js';
import { decideResize, failResize, rfc3339, type ResizeDecision } from '../src/domain/resize.js';
import { apiErrorMessage, isConflict } from '../src/kube/client.js';
import { Expectations } from './expectations.js';
import { refusedByApiServer } from './helper-runner.js';
import type { ClusterCache, Clock, EventSink, KubeWriter, ReconcileContext, ReconcileResult } from './ports.js';

/** Settings the resize reconciler needs, from the configuration. */
export interface ResizeSettings {
  readonly provisionerNames: readonly string[];
}

/**
 * Seconds before an expansion that was infeasible at the same size is tried again (external-resizer's slow set).
 * A lowered or raised request is tried at once.
 */
export const INFEASIBLE_RETRY_SECONDS = 300;
/**
 * Steps one reconcile may take: start, expand, finish — twice when the request grew again during a resize (the
 * resize in progress finishes first) — and a re-read after a conflict.
 */
const MAX_STEPS = 8;

/** Error thrown to make the work queue retry a claim with backoff; the event has already been recorded. */
export class ResizeError extends Error {
  override readonly name = 'ResizeError';
}

/**
 * Resize reconciler: for a claim key `namespace/name`, brings a bound claim of ours whose request grew to its new
 * size, as kubernetes-csi/external-resizer does for a driver that needs no node expansion
 * (`pkg/controller/controller.go` `syncPVC`, `expand_and_recover.go`, `resize_status.go`): claim status
 * `allocatedResources` and ControllerResizeInProgress with condition Resizing, then the PV's `spec.capacity`, then the
 * claim's `status.capacity` with the resize conditions and status removed. Events Resizing, VolumeResizeSuccessful,
 * VolumeResizeFailed. Each step is decided by {@link decideResize} from the objects alone, so a restart anywhere
 * resumes; claim patches carry the resourceVersion they were decided on.
 *
 * kube-controller-manager's expand controller leaves these claims alone (no in-tree plugin expands hostPath or
 * `local` volumes: it only records ExternalExpanding "waiting for an external controller to expand this PVC").
 * The size is bookkeeping: nothing on the node changes.
 */
export class ResizeController {
  /** Claim uids whose last expansion failed with a final error in this process (external-resizer's finalErrorPVCs). */
  private readonly finalErrors = new Set<string>();
  /** When each claim (by uid) was first seen waiting after an infeasible expansion. */
  private readonly infeasibleSince = new Map<string, number>();
  /** `uid size` of resizes this process finished; the claim cache may not show them yet. */
  private readonly finished: Expectations;

  constructor(
    private readonly deps: {
      readonly cache: ClusterCache;
      readonly kube: KubeWriter;
      readonly events: EventSink;
      readonly settings: ResizeSettings;
      readonly clock: Clock;
    },
  ) {
    this.finished = new Expectations(deps.clock);
  }

  /**
   * Reconciles one claim: takes every step that is due (normally start, expand and finish in one run).
   *
   * @param key - `namespace/name`.
   * @param ctx - logger of this run.
   * @returns nothing, or a requeue delay; throws {@link ResizeError} (or an API error) to retry with backoff.
   */
  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    const { cache, kube, events, settings } = this.deps;
    let claim = cache.claim(key);
    if (!claim) return;
    const uid = claim.metadata?.uid ?? '';
    const logger = ctx.logger.child({ pvc: key, operation: 'resize' });
    const done = this.finishedSize(claim);
    if (done !== undefined) {
      // Our own finish is not in the cache yet: its update event brings the claim back.
      logger.debug({ size: done }, 'resize finished; waiting for the claim cache');
      return;
    }
    let volume: V1PersistentVolume | undefined = claim.spec?.volumeName
      ? cache.volume(claim.spec.volumeName)
      : undefined;
    const namespace = claim.metadata?.namespace ?? '';
    const name = claim.metadata?.name ?? '';

    for (let step = 0; step < MAX_STEPS; step++) {
      const since = this.infeasibleSince.get(uid);
      const now = this.deps.clock();
      const decision: ResizeDecision = decideResize({
        claim,
        volume,
        storageClass: cache.storageClass(claimClassName(claim)),
        provisionerNames: settings.provisionerNames,
        finalError: this.finalErrors.has(uid),
        retryInfeasible: since !== undefined && now - since >= INFEASIBLE_RETRY_SECONDS * 1000,
        now: rfc3339(new Date(now)),
      });
      if (decision.action === 'none') {
        logger.debug({ why: decision.why }, 'nothing to resize');
        if (step === 0) this.infeasibleSince.delete(uid);
        return;
      }
      if (decision.action === 'wait') {
        const first = since ?? now;
        this.infeasibleSince.set(uid, first);
        logger.debug({ size: decision.size }, decision.why);
        return { requeueAfterSeconds: Math.max(1, INFEASIBLE_RETRY_SECONDS - (now - first) / 1000) };
      }
      this.infeasibleSince.delete(uid);

      try {
        if (decision.action === 'start') {
          const updated = await kube.patchClaimStatus(namespace, name, decision.patch);
          if (!updated) return;
          claim = updated;
          logger.info({ size: decision.size }, 'resize started');
        } else if (decision.action === 'expand') {
          events.event(
            claim,
            'Normal',
            'Resizing',
            `External resizer is resizing volume ${decision.volume} to ${decision.size}`,
          );
          const updated = await this.expand(claim, decision.volume, decision.patch, decision.size, logger);
          if (!updated) return;
          volume = updated;
        } else {
          const updated = await kube.patchClaimStatus(namespace, name, decision.patch);
          if (!updated) return;
          claim = updated;
          this.finalErrors.delete(uid);
          this.finished.finished(`${uid} ${decision.size}`);
          events.event(
            updated,
            'Normal',
            'VolumeResizeSuccessful',
            `Resize volume succeeded: ${claim.spec?.volumeName ?? ''} is ${decision.size} ` +
              '(bookkeeping only: nothing limits how much a hostPath directory holds)',
          );
          logger.info({ size: decision.size }, 'resize finished');
        }
      } catch (err) {
        if (!isConflict(err)) throw err;
        // The claim changed since it was read (a stale cache, a user's edit): decide again on the live object.
        logger.debug('claim changed since it was read; reading it again');
        const live = await kube.readClaim(namespace, name);
        if (!live || live.metadata?.uid !== uid) return;
        claim = live;
      }
    }
    return { requeueAfterSeconds: 1 };
  }

  /** Drops what this controller remembers of a claim (call when the claim is deleted). */
  forget(uid: string): void {
    this.finalErrors.delete(uid);
    this.infeasibleSince.delete(uid);
  }

  /** Number of claims with per-claim state (for tests of bounded memory). */
  remembered(): number {
    return new Set([...this.finalErrors, ...this.infeasibleSince.keys()]).size;
  }

  /**
   * The size this process finished resizing the claim to while the cached claim still shows a smaller capacity;
   * undefined otherwise (and the expectation is dropped once the cache has caught up).
   */
  private finishedSize(claim: V1PersistentVolumeClaim): string | undefined {
    const uid = claim.metadata?.uid ?? '';
    const size = claim.status?.allocatedResources?.['storage'];
    if (size === undefined) return undefined;
    const key = `${uid} ${size}`;
    if (!this.finished.isFinished(key)) return undefined;
    if (compareQuantities(claim.status?.capacity?.['storage'], size) >= 0) {
      this.finished.observed(key);
      return undefined;
    }
    return size;
  }

  /**
   * Patches the PV's capacity. A refusal by the API server (a policy webhook, validation) is a final error: the claim
   * is marked ControllerResizeInfeasible with a ControllerResizeError condition, and VolumeResizeFailed says why.
   * Other errors (timeouts, server errors) leave the claim's status as it is and retry with backoff, also said.
   */
  private async expand(
    claim: V1PersistentVolumeClaim,
    volumeName: string,
    patch: object,
    size: string,
    logger: ReconcileContext['logger'],
  ): Promise<V1PersistentVolume | undefined> {
    const { kube, events } = this.deps;
    const uid = claim.metadata?.uid ?? '';
    try {
      return await kube.patchVolume(volumeName, patch);
    } catch (err) {
      const refused = refusedByApiServer(err);
      if (refused === undefined) {
        const message = `resize volume ${volumeName} to ${size} failed: ${apiErrorMessage(err)}; retrying`;
        events.event(claim, 'Warning', 'VolumeResizeFailed', message);
        throw err;
      }
      const failure = failResize(
        claim,
        'volume_refused',
        `the API server refused capacity ${size} for volume ${volumeName}: ${refused}`,
        rfc3339(new Date(this.deps.clock())),
      );
      this.finalErrors.add(uid);
      events.event(claim, 'Warning', 'VolumeResizeFailed', failure.message);
      logger.warn({ reason: failure.reason, size }, failure.message);
      await kube.patchClaimStatus(claim.metadata?.namespace ?? '', claim.metadata?.name ?? '', failure.patch);
      throw new ResizeError(failure.message);
    }
  }
}
