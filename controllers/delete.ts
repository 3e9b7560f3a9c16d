import type { V1PersistentVolume } from '@kubernetes/client-node';
import { volumeClassName } from '../src/domain/class-name.js';
import { VOLUME_FINALIZER } from '../src/domain/constants.js';
import { checkBaseDirectory, checkRemovablePath } from '../src/domain/paths.js';
import { helperTolerations, type TolerationPolicy } from '../src/domain/tolerations.js';
import { decideVolume, volumeNode, volumePath } from '../src/domain/volume.js';
import { Expectations } from './expectations.js';
import type { HelperRunner } from './helper-runner.js';
import type {
  ClusterCache,
  Clock,
  ControllerMetrics,
  EventSink,
  KubeWriter,
  ReconcileContext,
  ReconcileResult,
} from './ports.js';

/** What to do with a PV whose node no longer exists. */
export type NodeGonePolicy = 'keep' | 'delete';

/** Settings the delete reconciler needs, from the configuration. */
export interface DeleteSettings {
  readonly provisionerNames: readonly string[];
  /** PV_DIR: always a known base directory. */
  readonly defaultBaseDirectory: string;
  readonly tolerationPolicy: TolerationPolicy;
  /** keep (default): the PV stays Released and is re-checked slowly; delete: the PV object is deleted, data left. */
  readonly nodeGonePolicy: NodeGonePolicy;
}

/** Seconds between re-checks of a PV whose node is gone or whose path was refused. */
export const SLOW_RECHECK_SECONDS = 300;

/** Error thrown to make the work queue retry a volume with backoff; the event has already been recorded. */
export class DeletionError extends Error {
  override readonly name = 'DeletionError';
}

/**
 * Delete reconciler: for a PV name, removes the volume directory with a helper on the PV's node — tolerating that
 * node's taints as they are now (cordon, disk pressure) — and only then deletes the PV object and removes our
 * finalizer. Refuses, with a Warning and the data untouched, any path that is not a direct child of a known base
 * directory ending with the PV name. Accepts the addon's PVs (`hostPathProvisionerIdentity` with any node name).
 */
export class DeleteController {
  /** PV uids whose cleanup this process finished; the cache may still show them for a moment. */
  private readonly cleaned: Expectations;

  constructor(
    private readonly deps: {
      readonly cache: ClusterCache;
      readonly kube: KubeWriter;
      readonly events: EventSink;
      readonly metrics: ControllerMetrics;
      readonly helpers: HelperRunner;
      readonly settings: DeleteSettings;
      readonly clock: Clock;
    },
  ) {
    this.cleaned = new Expectations(deps.clock);
  }

  /**
   * Base directories a PV may live in: PV_DIR and the valid `pvDir` of every StorageClass of ours that exists now.
   */
  knownBaseDirectories(): string[] {
    const { cache, settings } = this.deps;
    const bases = new Set([settings.defaultBaseDirectory]);
    for (const sc of cache.storageClasses()) {
      if (!settings.provisionerNames.includes(sc.provisioner)) continue;
      const dir = sc.parameters?.pvDir;
      if (dir !== undefined && checkBaseDirectory(dir).ok) bases.add(dir);
    }
    return [...bases];
  }

  /**
   * Reconciles one PV.
   *
   * @param name - PV name.
   * @param ctx - logger of this run.
   * @returns nothing or a slow re-check; throws {@link DeletionError} (or an API error) to retry with backoff.
   */
  async reconcile(name: string, ctx: ReconcileContext): Promise<ReconcileResult> {
    const { cache, kube, events, settings, metrics } = this.deps;
    const pv = cache.volume(name);
    if (!pv) return;
    const uid = pv.metadata?.uid ?? '';
    if (this.cleaned.isFinished(uid)) return; // our own delete is not in the cache yet
    const decision = decideVolume(pv, settings.provisionerNames);
    const logger = ctx.logger.child({ pv: name });
    switch (decision.action) {
      case 'ignore':
        logger.debug({ why: decision.why }, 'nothing to do');
        return;
      case 'ensure-finalizer':
        await kube.addVolumeFinalizer(name, VOLUME_FINALIZER);
        return;
      case 'release-finalizer':
        await kube.removeVolumeFinalizer(name, VOLUME_FINALIZER);
        return;
      case 'delete':
        break;
    }
    const className = volumeClassName(pv);
    const started = this.deps.clock();
    const fail = (message: string): void => {
      events.event(pv, 'Warning', 'VolumeFailedDelete', message);
      metrics.deleteFinished(className, false, (this.deps.clock() - started) / 1000);
      logger.warn(message);
    };

    const path = volumePath(pv) ?? '';
    const safe = checkRemovablePath(path, name, this.knownBaseDirectories());
    if (!safe.ok) {
      fail(`refusing to remove the volume's directory: ${safe.reason}; the data is left in place`);
      return { requeueAfterSeconds: SLOW_RECHECK_SECONDS };
    }
    const pinned = volumeNode(pv); // node affinity, else (old addon PVs) the identity annotation's node name
    const hostname = pinned && 'hostname' in pinned ? pinned.hostname : pinned?.nodeName;
    const cached = pinned && 'hostname' in pinned ? cache.nodeByHostname(pinned.hostname) : undefined;
    const targetName = pinned && 'nodeName' in pinned ? pinned.nodeName : cached?.metadata?.name;
    const node = targetName ? await kube.getNode(targetName) : undefined;
    if (!node) {
      const where = hostname ? `node ${hostname} no longer exists` : 'the volume is pinned to no node';
      if (settings.nodeGonePolicy === 'delete') {
        fail(`${where}: the data in ${path} cannot be removed; deleting the PV object (node-gone-policy=delete)`);
        await this.removeVolumeObject(pv);
        return;
      }
      fail(`${where}: the data in ${path} cannot be removed; the PV is kept and re-checked (node-gone-policy=keep)`);
      return { requeueAfterSeconds: SLOW_RECHECK_SECONDS };
    }
    const nodeName = node.metadata?.name ?? '';
    const log = logger.child({ node: nodeName, operation: 'delete' });
    const result = await this.deps.helpers.run(
      {
        operation: 'delete',
        volumeName: name,
        node,
        baseDirectory: safe.base,
        directoryName: safe.leaf,
        tolerations: helperTolerations(settings.tolerationPolicy, node.spec?.taints ?? []),
      },
      log,
    );
    if (!result.ok) {
      const message = `helper pod ${result.podName} on node ${nodeName} could not remove ${path} (${result.reason}): ${result.message}`;
      fail(message);
      throw new DeletionError(message);
    }
    await this.removeVolumeObject(pv);
    this.cleaned.finished(uid);
    metrics.deleteFinished(className, true, (this.deps.clock() - started) / 1000);
    log.info({ path }, 'removed volume directory and deleted the PV');
    return;
  }

  /** Deletes the PV object (uid precondition) and then removes our finalizer so the API server lets it go. */
  private async removeVolumeObject(pv: V1PersistentVolume): Promise<void> {
    const { kube } = this.deps;
    if (!pv.metadata?.deletionTimestamp) await kube.deleteVolume(pv.metadata?.name ?? '', pv.metadata?.uid ?? '');
    if ((pv.metadata?.finalizers ?? []).includes(VOLUME_FINALIZER)) {
      await kube.removeVolumeFinalizer(pv.metadata?.name ?? '', VOLUME_FINALIZER);
    }
  }
}
