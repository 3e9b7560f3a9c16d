import type { V1Node, V1PersistentVolumeClaim, V1Pod, V1Taint, V1Toleration } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ANN_SELECTED_NODE, LABEL_HOSTNAME } from '../src/domain/constants.js';
import { decideClaim } from '../src/domain/claim.js';
import { claimClassName } from '../src/domain/class-name.js';
import { helperPodName, volumeDirectoryName, volumeNameForClaim } from '../src/domain/names.js';
import { chooseNodeForImmediate, describeSkippedNodes } from '../src/domain/node-choice.js';
import { baseDirectoryOnNode, effectiveReclaimPolicy, type ReclaimPolicy } from '../src/domain/storage-class.js';
import {
  formatTaint,
  helperTolerations,
  toleratesTaint,
  untoleratedTaints,
  type TolerationPolicy,
} from '../src/domain/tolerations.js';
import { nodeSelectionMismatch } from '../src/domain/node-affinity.js';
import { buildVolume, nodeHostname, volumeHostname } from '../src/domain/volume.js';
import { Expectations } from './expectations.js';
import { refusedByApiServer, type HelperRunner } from './helper-runner.js';
import { RecentFailures } from './recent-failures.js';
import type {
  ClusterCache,
  Clock,
  ControllerMetrics,
  EventSink,
  KubeWriter,
  ReconcileContext,
  ReconcileResult,
} from './ports.js';

/** Settings the provision reconciler needs, from the configuration. */
export interface ProvisionSettings {
  readonly provisionerNames: readonly string[];
  /** PV_DIR. */
  readonly defaultBaseDirectory: string;
  /** Written to `hostPathProvisionerIdentity`; also the preferred node for Immediate claims (NODE_NAME). */
  readonly identity: string;
  readonly tolerationPolicy: TolerationPolicy;
  /** PV_RECLAIM_POLICY, when set. */
  readonly reclaimPolicyOverride: ReclaimPolicy | undefined;
}

/** Seconds to wait for the pod informer to show a claim's consumer before saying there is none. */
export const CONSUMER_GRACE_SECONDS = 10;
/** Seconds before a refused claim is checked again without any change (its updates and its pods' requeue it). */
export const REFUSAL_RECHECK_SECONDS = 300;
/** Seconds after which an unchanged refusal is said again. */
export const REFUSAL_REPEAT_SECONDS = 3600;
/** Seconds after which a refusal whose Event was dropped (Event budget or queue full) is said again. */
export const REFUSAL_EVENT_RETRY_SECONDS = 30;

/** The refusal of a claim whose selected node no waiting pod asks for. */
export function noConsumerMessage(selectedNode: string): string {
  return (
    `no Pending pod mounts this claim: its selected node ${selectedNode} is used only for a pod waiting for the ` +
    `claim (the annotation ${ANN_SELECTED_NODE} alone is not trusted); create the pod, or remove the annotation`
  );
}

/**
 * Which of the node's taints a create helper may tolerate for a claim with a selected node: those tolerated by a
 * pod that mounts the claim and waits to be scheduled, choosing the first such pod that the scheduler could place
 * there — its nodeSelector and required node affinity match the node, and it tolerates every NoSchedule/NoExecute
 * taint of the node. Pure.
 *
 * @param node - the selected node, read live.
 * @param consumers - Pending pods that mount the claim and are not bound to another node.
 * @returns the taints to tolerate, or a message for a ProvisioningFailed event (no pod, or none may run there).
 */
export function consumerTaints(
  node: V1Node,
  consumers: readonly V1Pod[],
): { readonly ok: true; readonly taints: V1Taint[] } | { readonly ok: false; readonly message: string } {
  const name = node.metadata?.name ?? '';
  const taints = node.spec?.taints ?? [];
  if (consumers.length === 0) return { ok: false, message: noConsumerMessage(name) };
  const placeable = consumers.filter((pod) => nodeSelectionMismatch(pod, node) === undefined);
  if (placeable.length === 0) {
    const pod = consumers[0];
    return {
      ok: false,
      message:
        `no pod that mounts this claim may run on its selected node ${name}: pod ${pod?.metadata?.name ?? ''} has ` +
        `${nodeSelectionMismatch(pod ?? {}, node) ?? ''} that the node does not match; no helper pod is started there — ` +
        "fix the pod's node selection, or let the scheduler choose the node",
    };
  }
  for (const pod of placeable) {
    const tolerations = pod.spec?.tolerations ?? [];
    if (untoleratedTaints(taints, tolerations).length === 0) {
      return { ok: true, taints: taints.filter((t) => tolerations.some((tol) => toleratesTaint(tol, t))) };
    }
  }
  const missing = untoleratedTaints(taints, placeable[0]?.spec?.tolerations ?? []);
  return {
    ok: false,
    message:
      `no pod that mounts this claim tolerates the taints of its selected node ${name} (${missing.map(formatTaint).join(', ')}); ` +
      'no helper pod is started there — add the tolerations to the pod, or let the scheduler choose the node',
  };
}

/** Error thrown to make the work queue retry a claim with backoff; the event has already been recorded. */
export class ProvisioningError extends Error {
  override readonly name = 'ProvisioningError';
}

/**
 * Provision reconciler: for a claim key `namespace/name`, reads the claim and its class from the caches, decides
 * (refuse, wait, provision), runs a create helper on the claim's node with tolerations for that node's taints as they
 * are now, and creates the PV. Level-based and idempotent: the PV name is `pvc-<claim uid>`, the helper name is
 * deterministic, an existing PV of ours for the claim counts as success.
 * Follows sig-storage-lib-external-provisioner's `provisionClaimOperation` (events Provisioning,
 * ProvisioningSucceeded, ProvisioningFailed; selected-node removal when the node is gone).
 */
export class ProvisionController {
  /** When each claim (by uid) was first seen ready to provision: start of the end-to-end latency. */
  private readonly firstSeen = new Map<string, number>();
  /** The last refusal said for each claim (by uid), so a resync does not repeat or re-count it. */
  private readonly said = new Map<string, { readonly message: string; readonly at: number; delivered: boolean }>();
  /** Claim uids whose PV this process created; the cache may not show the PV yet. */
  private readonly provisioned: Expectations;
  /** Nodes where a create helper failed recently, per class: Immediate binding tries other nodes first (M4). */
  private readonly recentFailures: RecentFailures;

  constructor(
    private readonly deps: {
      readonly cache: ClusterCache;
      readonly kube: KubeWriter;
      readonly events: EventSink;
      readonly metrics: ControllerMetrics;
      readonly helpers: HelperRunner;
      readonly settings: ProvisionSettings;
      readonly clock: Clock;
    },
  ) {
    this.provisioned = new Expectations(deps.clock);
    this.recentFailures = new RecentFailures(deps.clock);
  }

  /**
   * Reconciles one claim.
   *
   * @param key - `namespace/name`.
   * @param ctx - logger of this run.
   * @returns nothing, or a requeue delay; throws {@link ProvisioningError} (or an API error) to retry with backoff.
   */
  async reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    const { cache, events, settings } = this.deps;
    const claim = cache.claim(key);
    if (!claim) return;
    const className = claimClassName(claim);
    const storageClass = className ? cache.storageClass(className) : undefined;
    const decision = decideClaim(claim, storageClass, settings.provisionerNames, settings.defaultBaseDirectory);
    const logger = ctx.logger.child({ pvc: key });
    const uid = claim.metadata?.uid ?? '';
    if (decision.action === 'ignore') {
      this.forget(uid);
      logger.debug({ why: decision.why }, 'nothing to do');
      return;
    }
    const source = claim.spec?.dataSourceRef?.kind ?? claim.spec?.dataSource?.kind ?? '';
    if (decision.action === 'refuse') {
      this.firstSeen.delete(uid);
      // Said (and counted) once per refusal, not on every resync: nothing changes until the claim or its class does.
      return this.sayRefusal(claim, className, source, decision.message, logger.child({ reason: decision.reason }));
    }

    const volumeName = volumeNameForClaim(uid);
    const existing = cache.volume(volumeName);
    if (!existing && this.provisioned.isFinished(uid)) return; // our PV is not in the cache yet
    if (existing) {
      if (existing.spec?.claimRef?.uid === uid) {
        logger.debug({ pv: volumeName }, 'volume already exists; the PV controller binds it');
        return;
      }
      throw new ProvisioningError(`volume ${volumeName} exists but is not for this claim`);
    }
    const started = this.firstSeen.get(uid) ?? this.deps.clock();
    this.firstSeen.set(uid, started);
    const refuse = (message: string): ReconcileResult => {
      this.firstSeen.delete(uid);
      // Re-checked (and an Event the recorder dropped said again) after REFUSAL_RECHECK_SECONDS, not sooner: this
      // check reads the node live, and a flood of refusals must not become a flood of reads.
      this.sayRefusal(claim, className, source, message, logger);
      return { requeueAfterSeconds: REFUSAL_RECHECK_SECONDS }; // and on any change of the claim or its pods
    };

    // The selected node is whatever the claim's author (or the scheduler) wrote: it is trusted only for a pod that
    // mounts the claim and waits to be scheduled (checked from the cache first: no API request for a claim alone).
    const inProgress = this.deps.helpers.isTracking('create', volumeName);
    const consumers =
      decision.selectedNode === undefined || inProgress
        ? []
        : cache
            .consumers(claim.metadata?.namespace ?? '', claim.metadata?.name ?? '')
            .filter((pod) => !pod.spec?.nodeName || pod.spec.nodeName === decision.selectedNode);
    if (decision.selectedNode !== undefined && !inProgress && consumers.length === 0) {
      // The pod informer may lag behind the claim's: wait a little before saying there is no pod.
      if (this.deps.clock() - started < CONSUMER_GRACE_SECONDS * 1000) return { requeueAfterSeconds: 2 };
      return refuse(noConsumerMessage(decision.selectedNode));
    }

    // A node without a free helper slot: wait for one before reading the node live (a claim queued behind others on
    // its node re-checks without an API request).
    const queued =
      decision.selectedNode === undefined || inProgress
        ? undefined
        : this.deps.helpers.waitsBeforeCreate('create', volumeName, decision.selectedNode);
    if (queued && !queued.done) {
      logger.debug({ helper: queued.podName, status: queued.message }, 'waiting before the create helper');
      return { requeueAfterSeconds: queued.requeueAfterSeconds };
    }

    const node = await this.targetNode(
      claim,
      volumeName,
      decision.selectedNode,
      storageClass?.allowedTopologies,
      logger,
      className,
      (n) => baseDirectoryOnNode(decision.parameters, n).ok,
    );
    if (!node) return { requeueAfterSeconds: 30 };
    const nodeName = node.metadata?.name ?? '';
    const log = logger.child({ node: nodeName, pv: volumeName, operation: 'provision' });

    let tolerations: V1Toleration[];
    if (inProgress) {
      tolerations = []; // decided when the helper was made; an adopted helper is not compared on tolerations
    } else if (decision.selectedNode !== undefined) {
      // The helper tolerates exactly those taints of the node that a waiting consumer tolerates.
      const allowed = consumerTaints(node, consumers);
      if (!allowed.ok) return refuse(allowed.message);
      tolerations = helperTolerations(settings.tolerationPolicy, allowed.taints);
    } else {
      // Immediate binding: this provisioner chose the node (untainted ones first), no claim author did.
      tolerations = helperTolerations(settings.tolerationPolicy, node.spec?.taints ?? []);
    }

    // The node's own directory (a class with pvDirFromNode), refused before any helper when the annotation is bad.
    const base = baseDirectoryOnNode(decision.parameters, node);
    if (!base.ok) return refuse(base.reason);
    const helpers = this.deps.helpers;
    if (!helpers.isTracking('create', volumeName)) {
      events.event(claim, 'Normal', 'Provisioning', `External provisioner is provisioning volume for claim "${key}"`);
    }
    const directoryName = volumeDirectoryName(claim.metadata?.namespace ?? '', claim.metadata?.name ?? '', volumeName);
    const step = await helpers.step(
      {
        operation: 'create',
        volumeName,
        node,
        baseDirectory: base.path,
        directoryName,
        tolerations,
        claim: { key, uid },
        ownership: decision.parameters.ownership,
        ...(decision.parameters.sharedFileSystem ? { sharedBase: true } : {}),
      },
      log,
    );
    if (!step.done) {
      // The worker is free again: the helper's status changes (or this delay) bring the claim back.
      log.debug({ helper: step.podName, status: step.message }, 'waiting for the create helper');
      return { requeueAfterSeconds: step.requeueAfterSeconds };
    }
    const result = step.result;
    if (!result.ok) {
      const message = `helper pod ${result.podName} on node ${nodeName} failed (${result.reason}): ${result.message}`;
      events.event(claim, 'Warning', 'ProvisioningFailed', message);
      this.deps.metrics.provisionFinished(className, source, false, (this.deps.clock() - started) / 1000);
      if (decision.selectedNode === undefined) this.recentFailures.failed(className, nodeName);
      throw new ProvisioningError(message);
    }

    const hostname = nodeHostname(node);
    const reclaimPolicy = effectiveReclaimPolicy(storageClass?.reclaimPolicy, settings.reclaimPolicyOverride);
    const pv = buildVolume({
      claim,
      volumeName,
      path: `${base.path}/${directoryName}`,
      nodeHostname: hostname,
      ...(decision.parameters.sharedFileSystem
        ? { shared: { allowedTopologies: storageClass?.allowedTopologies } }
        : {}),
      reclaimPolicy,
      volumeType: decision.parameters.volumeType,
      provisionerName: decision.provisionerName,
      identity: settings.identity,
    });
    // The claim may have been deleted, or deleted and re-created, while the helper ran: read it once more.
    const current = await this.deps.kube.readClaim(claim.metadata?.namespace ?? '', claim.metadata?.name ?? '');
    if (!current || current.metadata?.uid !== uid || current.metadata?.deletionTimestamp) {
      this.forget(uid);
      log.warn(
        { path: pv.spec?.hostPath?.path },
        'the claim was deleted while its directory was made; no PV is created (the empty directory is left)',
      );
      return;
    }
    const pvStarted = this.deps.clock();
    let created: Awaited<ReturnType<KubeWriter['createVolume']>>;
    try {
      created = await this.deps.kube.createVolume(pv);
    } catch (err) {
      const refused = refusedByApiServer(err);
      if (refused === undefined) throw err;
      // A policy webhook, quota or validation: it will not fix itself, so the claim says why (and retries slowly).
      const message = `the API server refused the PersistentVolume ${volumeName}: ${refused}`;
      events.event(claim, 'Warning', 'ProvisioningFailed', message);
      this.deps.metrics.provisionFinished(className, source, false, (this.deps.clock() - started) / 1000);
      throw new ProvisioningError(message);
    }
    if (!created.created && created.object?.spec?.claimRef?.uid !== uid) {
      const message = `volume ${volumeName} already exists and is not for this claim`;
      events.event(claim, 'Warning', 'ProvisioningFailed', message);
      throw new ProvisioningError(message);
    }
    const now = this.deps.clock();
    this.deps.metrics.phase('create', 'pv_create', (now - pvStarted) / 1000);
    this.deps.metrics.provisionFinished(className, source, true, (now - started) / 1000);
    this.deps.metrics.provisionLatency(className, (now - started) / 1000);
    this.forget(uid);
    this.provisioned.finished(uid);
    events.event(
      claim,
      'Normal',
      'ProvisioningSucceeded',
      `Successfully provisioned volume ${volumeName} on node ${nodeName}`,
    );
    log.info({ path: pv.spec?.hostPath?.path ?? pv.spec?.local?.path, hostname }, 'provisioned volume');
    return;
  }

  /** Drops what this controller remembers of a claim (call when the claim is deleted). */
  forget(uid: string): void {
    this.firstSeen.delete(uid);
    this.said.delete(uid);
  }

  /** Number of claims with per-claim state (for tests of bounded memory). */
  remembered(): number {
    return new Set([...this.firstSeen.keys(), ...this.said.keys()]).size;
  }

  /**
   * Says a refusal as a Warning `ProvisioningFailed` Event on the claim: the first time, when its message changed, or
   * after {@link REFUSAL_REPEAT_SECONDS} (a reminder in `kubectl describe`) — then it is logged and counted once in
   * the outcome metric. When the recorder dropped the Event (its per-object budget or its queue was full, e.g. while
   * another tenant's refusals flood it), the same refusal is said again, not counted again, on the next reconcile:
   * the caller requeues it (after {@link REFUSAL_EVENT_RETRY_SECONDS} for a refusal made from the cache, at the
   * {@link REFUSAL_RECHECK_SECONDS} re-check for one that reads the node live).
   *
   * @returns a requeue after {@link REFUSAL_EVENT_RETRY_SECONDS} when the Event was dropped, else undefined.
   */
  private sayRefusal(
    claim: V1PersistentVolumeClaim,
    className: string,
    source: string,
    message: string,
    logger: Logger,
  ): ReconcileResult {
    const uid = claim.metadata?.uid ?? '';
    const now = this.deps.clock();
    let last = this.said.get(uid);
    const same = last !== undefined && last.message === message;
    if (same && last?.delivered === true && now - last.at < REFUSAL_REPEAT_SECONDS * 1000) return undefined;
    if (!same || last?.delivered === true) {
      last = { message, at: now, delivered: false };
      this.said.set(uid, last);
      logger.warn(message);
      this.deps.metrics.provisionFinished(className, source, false, 0);
    }
    if (last === undefined) return undefined;
    last.delivered = this.deps.events.event(claim, 'Warning', 'ProvisioningFailed', message);
    return last.delivered ? undefined : { requeueAfterSeconds: REFUSAL_EVENT_RETRY_SECONDS };
  }

  /**
   * The node to provision on, read live (taints change): the selected node, or for Immediate binding the node an
   * earlier attempt's helper is pinned to, else a chosen one. Records events and returns undefined when there is none.
   */
  private async targetNode(
    claim: V1PersistentVolumeClaim,
    volumeName: string,
    selectedNode: string | undefined,
    allowedTopologies: Parameters<typeof chooseNodeForImmediate>[0]['allowedTopologies'],
    logger: ReconcileContext['logger'],
    className = '',
    usable: (node: V1Node) => boolean = () => true,
  ): Promise<V1Node | undefined> {
    const { cache, kube, events, settings } = this.deps;
    // While its helper is in progress the node was read live when the helper was made: the cache is enough.
    const inProgress = this.deps.helpers.isTracking('create', volumeName);
    const known = (name: string) => (inProgress ? cache.node(name) : undefined);
    if (selectedNode !== undefined) {
      const node = known(selectedNode) ?? (await kube.getNode(selectedNode));
      if (node) return node;
      const message = `selected node ${selectedNode} does not exist; handing the claim back to the scheduler`;
      logger.warn(message);
      events.event(claim, 'Warning', 'ProvisioningFailed', message);
      await kube.removeClaimAnnotation(claim, ANN_SELECTED_NODE);
      return undefined;
    }
    const pinned = cache.helper(helperPodName('create', volumeName))?.spec?.affinity?.nodeAffinity
      ?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.[0]?.matchFields?.[0]?.values?.[0];
    if (pinned !== undefined) {
      const node = known(pinned) ?? (await kube.getNode(pinned));
      if (node) return node;
    }
    const counts = new Map<string, number>();
    for (const pv of cache.volumes()) {
      const hostname = volumeHostname(pv);
      const node = hostname ? cache.nodeByHostname(hostname) : undefined;
      const name = node?.metadata?.name;
      if (name) counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    // Nodes whose own base directory is invalid (pvDirFromNode) are passed over while any other is left; if none is,
    // the claim is refused with the annotation named.
    const usableNodes = cache.nodes().filter(usable);
    const choice = chooseNodeForImmediate({
      nodes: usableNodes.length > 0 ? usableNodes : cache.nodes(),
      allowedTopologies,
      preferredNode: settings.identity,
      volumeCounts: counts,
      excluded: this.recentFailures.nodes(className),
    });
    const skipped = describeSkippedNodes(choice.skipped);
    if (!choice.ok) {
      const message = skipped ? `${choice.reason}; ${skipped}` : choice.reason;
      events.event(claim, 'Warning', 'ProvisioningFailed', message);
      throw new ProvisioningError(message);
    }
    const name = choice.node.metadata?.name ?? '';
    const node = await kube.getNode(name);
    if (!node) throw new ProvisioningError(`node ${name} disappeared`);
    const taints = untoleratedTaints(node.spec?.taints ?? [], []);
    const tainted = taints.length
      ? `; no untainted node fits, so only pods tolerating ${taints.map(formatTaint).join(', ')} can use the volume`
      : '';
    events.event(
      claim,
      'Normal',
      'NodeChosen',
      `Immediate binding: provisioning on node ${name} (${LABEL_HOSTNAME}=${nodeHostname(node)})${tainted}${skipped ? `; ${skipped}` : ''}`,
    );
    return node;
  }
}
