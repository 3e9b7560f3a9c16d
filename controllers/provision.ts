import type { V1Node, V1PersistentVolumeClaim, V1Toleration } from '@kubernetes/client-node';
import { ANN_SELECTED_NODE, LABEL_HOSTNAME } from '../src/domain/constants.js';
import { decideClaim } from '../src/domain/claim.js';
import { claimClassName } from '../src/domain/class-name.js';
import { helperPodName, volumeDirectoryName, volumeNameForClaim } from '../src/domain/names.js';
import { chooseNodeForImmediate, describeSkippedNodes } from '../src/domain/node-choice.js';
import { effectiveReclaimPolicy, type ReclaimPolicy } from '../src/domain/storage-class.js';
import { helperTolerations, untoleratedTaints, type TolerationPolicy } from '../src/domain/tolerations.js';
import { buildVolume, nodeHostname, volumeHostname } from '../src/domain/volume.js';
import { Expectations } from './expectations.js';
import type { HelperRunner } from './helper-runner.js';
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
    if (decision.action === 'ignore') {
      logger.debug({ why: decision.why }, 'nothing to do');
      return;
    }
    const source = claim.spec?.dataSourceRef?.kind ?? claim.spec?.dataSource?.kind ?? '';
    if (decision.action === 'refuse') {
      logger.warn({ reason: decision.reason }, decision.message);
      events.event(claim, 'Warning', 'ProvisioningFailed', decision.message);
      this.deps.metrics.provisionFinished(className, source, false, 0);
      return; // nothing changes until the claim or its class does; their updates requeue it
    }

    const uid = claim.metadata?.uid ?? '';
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

    const node = await this.targetNode(
      claim,
      volumeName,
      decision.selectedNode,
      storageClass?.allowedTopologies,
      logger,
      className,
    );
    if (!node) return { requeueAfterSeconds: 30 };
    const nodeName = node.metadata?.name ?? '';
    const log = logger.child({ node: nodeName, pv: volumeName, operation: 'provision' });

    events.event(claim, 'Normal', 'Provisioning', `External provisioner is provisioning volume for claim "${key}"`);
    const directoryName = volumeDirectoryName(claim.metadata?.namespace ?? '', claim.metadata?.name ?? '', volumeName);
    const consumerTolerations: V1Toleration[] = cache
      .consumers(claim.metadata?.namespace ?? '', claim.metadata?.name ?? '')
      .flatMap((pod) => pod.spec?.tolerations ?? []);
    const tolerations = helperTolerations(settings.tolerationPolicy, node.spec?.taints ?? [], consumerTolerations);
    const result = await this.deps.helpers.run(
      {
        operation: 'create',
        volumeName,
        node,
        baseDirectory: decision.parameters.baseDirectory,
        directoryName,
        tolerations,
        claim: { key, uid },
      },
      log,
    );
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
      path: `${decision.parameters.baseDirectory}/${directoryName}`,
      nodeHostname: hostname,
      reclaimPolicy,
      volumeType: decision.parameters.volumeType,
      provisionerName: decision.provisionerName,
      identity: settings.identity,
    });
    const pvStarted = this.deps.clock();
    const created = await this.deps.kube.createVolume(pv);
    if (!created.created && created.object?.spec?.claimRef?.uid !== uid) {
      const message = `volume ${volumeName} already exists and is not for this claim`;
      events.event(claim, 'Warning', 'ProvisioningFailed', message);
      throw new ProvisioningError(message);
    }
    const now = this.deps.clock();
    this.deps.metrics.phase('create', 'pv_create', (now - pvStarted) / 1000);
    this.deps.metrics.provisionFinished(className, source, true, (now - started) / 1000);
    this.deps.metrics.provisionLatency(className, (now - started) / 1000);
    this.firstSeen.delete(uid);
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
  ): Promise<V1Node | undefined> {
    const { cache, kube, events, settings } = this.deps;
    if (selectedNode !== undefined) {
      const node = await kube.getNode(selectedNode);
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
      const node = await kube.getNode(pinned);
      if (node) return node;
    }
    const counts = new Map<string, number>();
    for (const pv of cache.volumes()) {
      const hostname = volumeHostname(pv);
      const node = hostname ? cache.nodeByHostname(hostname) : undefined;
      const name = node?.metadata?.name;
      if (name) counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    const choice = chooseNodeForImmediate({
      nodes: cache.nodes(),
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
      ? `; no untainted node fits, so only pods tolerating ${taints.map((t) => `${t.key}=${t.value ?? ''}:${t.effect}`).join(', ')} can use the volume`
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
