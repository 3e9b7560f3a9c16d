import type { V1Node, V1PersistentVolume } from '@kubernetes/client-node';
import { volumeClassName } from '../src/domain/class-name.js';
import { VOLUME_FINALIZER } from '../src/domain/constants.js';
import { checkBaseDirectory, checkRemovablePath, nodeBaseDirectory } from '../src/domain/paths.js';
import { helperTolerations, type TolerationPolicy } from '../src/domain/tolerations.js';
import { helperPodName } from '../src/domain/names.js';
import { chooseNodeForSharedDelete } from '../src/domain/node-choice.js';
import {
  decideVolume,
  isSharedVolume,
  sharedVolumeReachableFrom,
  volumeNode,
  volumePath,
  type VolumeDecision,
} from '../src/domain/volume.js';
import { Expectations } from './expectations.js';
import type { HelperRunner, HelperStep } from './helper-runner.js';
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

/** The reason a non-delete decision gives, for the log. */
function decisionWhy(decision: VolumeDecision): string {
  return 'why' in decision ? decision.why : decision.action;
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
  /** When this process started cleaning up each PV (by uid, clock ms), for the delete duration. */
  private readonly started = new Map<string, number>();
  /** PV uids whose cleanup this process finished; the cache may still show them for a moment. */
  private readonly cleaned: Expectations;
  /** Nodes where the delete helper of a shared volume failed recently, by PV name: the next try goes elsewhere. */
  private readonly sharedFailures: RecentFailures;

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
    this.sharedFailures = new RecentFailures(deps.clock);
  }

  /**
   * Base directories a PV may live in: PV_DIR, the valid `pvDir` of every StorageClass of ours that exists now, and —
   * for a PV on `node` — that node's valid annotation `hostpath-provisioner.io/pv-dir`.
   *
   * @param node - the PV's node, when known.
   */
  knownBaseDirectories(node?: V1Node): string[] {
    const { cache, settings } = this.deps;
    const bases = new Set([settings.defaultBaseDirectory]);
    const own = node ? nodeBaseDirectory(node) : undefined;
    if (own?.ok) bases.add(own.path);
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
    const { cache, kube, events, settings, metrics, helpers } = this.deps;
    const cached = cache.volume(name);
    if (!cached) return;
    const uid = cached.metadata?.uid ?? '';
    if (this.cleaned.isFinished(uid)) return; // our own delete is not in the cache yet
    const logger = ctx.logger.child({ pv: name });
    let pv = cached;
    let decision = decideVolume(pv, settings.provisionerNames);
    // The only destructive step is creating (or adopting) the delete helper: decide again on the object as the API
    // server has it now, never on the cache (it may be stale while the admin switches the PV to Retain or re-binds
    // it), as sig-storage-lib does. While a helper of ours exists, the cache will do: any change of the PV that stops
    // asking for deletion removes the helper at once (onVolumeChanged), and a re-created PV fails the uid
    // precondition of the delete.
    const helperExists =
      helpers.isTracking('delete', name) && cache.helper(helperPodName('delete', name)) !== undefined;
    if (decision.action === 'delete' && !helperExists) {
      // Waiting for a helper slot on the volume's node (or a retry's backoff) needs no live read yet.
      const queued = this.waitsBeforeHelper(pv);
      if (queued && !queued.done) {
        logger.debug({ helper: queued.podName, status: queued.message }, 'waiting before the delete helper');
        return { requeueAfterSeconds: queued.requeueAfterSeconds };
      }
      const live = await kube.readVolume(name);
      if (!live || live.metadata?.uid !== uid) {
        logger.info('the volume is gone or was re-created under the same name; nothing to delete');
        await helpers.removeHelper('delete', name, logger);
        return;
      }
      pv = live;
      decision = decideVolume(pv, settings.provisionerNames);
      if (decision.action !== 'delete')
        logger.info({ why: decisionWhy(decision) }, 'the volume no longer asks for deletion');
    }
    if (decision.action !== 'delete') {
      // A delete helper left by an earlier run (crash, lost Lease) must not remove data the PV no longer marks
      // for deletion: remove it whatever the decision.
      await helpers.removeHelper('delete', name, logger);
      switch (decision.action) {
        case 'ignore':
          logger.debug({ why: decision.why }, 'nothing to do');
          return;
        case 'ensure-finalizer':
          await kube.addVolumeFinalizer(name, VOLUME_FINALIZER, pv);
          return;
        case 'release-finalizer':
          await kube.removeVolumeFinalizer(name, VOLUME_FINALIZER);
          return;
      }
    }
    const className = volumeClassName(pv);
    const started = this.started.get(uid) ?? this.deps.clock();
    this.started.set(uid, started);
    const fail = (message: string): void => {
      this.started.delete(uid);
      events.event(pv, 'Warning', 'VolumeFailedDelete', message);
      metrics.deleteFinished(className, false, (this.deps.clock() - started) / 1000);
      logger.warn(message);
    };

    const path = volumePath(pv) ?? '';
    const pinned = volumeNode(pv); // node affinity, else (old addon PVs) the identity annotation's node name
    const hostname = pinned && 'hostname' in pinned ? pinned.hostname : pinned?.nodeName;
    // From the cache, else looked up live (by hostname label, then by name): a node missing from the cache for a
    // moment (informer lag, re-registration, a relabelled hostname) must not count as gone. (A cached node whose taints
    // are a moment old costs at most one helper that cannot be scheduled, retried with the taints as they are then.)
    let node: V1Node | undefined;
    const shared = isSharedVolume(pv);
    if (shared) {
      // Any node that mounts the shared file system may remove it, once; one where it failed is tried last.
      node = chooseNodeForSharedDelete(
        cache.nodes().filter((n) => sharedVolumeReachableFrom(pv, n)),
        this.sharedFailures.nodes(name),
      );
      if (!node) {
        fail(
          `no Ready Linux node matches the node affinity of this volume on a shared file system: the data in ${path} is kept and re-checked`,
        );
        return { requeueAfterSeconds: SLOW_RECHECK_SECONDS };
      }
    } else if (pinned && 'hostname' in pinned) {
      node = cache.nodeByHostname(pinned.hostname) ?? (await kube.findNode(pinned.hostname));
    } else if (pinned) {
      node = cache.node(pinned.nodeName) ?? (await kube.getNode(pinned.nodeName));
    }
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
    // Only under a known base directory (the node's own one included), only the PV's own directory. (A gone node's
    // PV is not checked: no helper runs for it, and node-gone-policy=delete removes the PV object, never data.)
    const safe = checkRemovablePath(path, name, this.knownBaseDirectories(shared ? undefined : node));
    const mismatch = safe.ok ? this.notItsOwnDirectory(pv, path) : undefined;
    if (!safe.ok || mismatch) {
      const reason = safe.ok ? mismatch : safe.reason;
      fail(`refusing to remove the volume's directory: ${reason ?? ''}; the data is left in place`);
      return { requeueAfterSeconds: SLOW_RECHECK_SECONDS };
    }
    const nodeName = node.metadata?.name ?? '';
    const log = logger.child({ node: nodeName, operation: 'delete' });
    const step = await helpers.step(
      {
        operation: 'delete',
        volumeName: name,
        node,
        baseDirectory: safe.base,
        directoryName: safe.leaf,
        tolerations: helperTolerations(settings.tolerationPolicy, node.spec?.taints ?? []),
        volumeUid: uid,
        ...(shared ? { sharedBase: true } : {}),
      },
      log,
    );
    if (!step.done) {
      log.debug({ helper: step.podName, status: step.message }, 'waiting for the delete helper');
      return { requeueAfterSeconds: step.requeueAfterSeconds };
    }
    const result = step.result;
    if (!result.ok && shared) this.sharedFailures.failed(name, nodeName);
    if (!result.ok) {
      const message = `helper pod ${result.podName} on node ${nodeName} could not remove ${path} (${result.reason}): ${result.message}`;
      fail(message);
      throw new DeletionError(message);
    }
    await this.removeVolumeObject(pv);
    this.cleaned.finished(uid);
    this.started.delete(uid);
    metrics.deleteFinished(className, true, (this.deps.clock() - started) / 1000);
    log.info({ path }, 'removed volume directory and deleted the PV');
    return;
  }

  /**
   * Why a safe-looking path is still not this PV's own directory, or undefined when it is: another PV points at the
   * same directory — so a hand-made PV named like the end of a live volume's directory (the name-suffix rule alone
   * accepts `<uid part>`) cannot remove that volume's data. (The claim in the PV's claimRef is not compared with the
   * directory name: a PV re-bound to another claim keeps the directory of the claim it was made for.)
   */
  private notItsOwnDirectory(pv: V1PersistentVolume, path: string): string | undefined {
    const name = pv.metadata?.name ?? '';
    const other = this.deps.cache.volumes().find((v) => v.metadata?.name !== name && volumePath(v) === path);
    if (other) return `another PersistentVolume (${other.metadata?.name ?? ''}) points at the same directory ${path}`;
    return undefined;
  }

  /**
   * The helper runner's answer when the delete helper of `pv` would only wait (its node, as the cache knows it, has no
   * free slot, or a failed attempt backs off); undefined when it would act, or the node is not known from the cache
   * (then the full reconcile finds it) or the volume is on a shared file system (its node is chosen later).
   */
  private waitsBeforeHelper(pv: V1PersistentVolume): HelperStep | undefined {
    if (isSharedVolume(pv)) return undefined;
    const { cache, helpers } = this.deps;
    const pinned = volumeNode(pv);
    if (!pinned) return undefined;
    const node = 'hostname' in pinned ? cache.nodeByHostname(pinned.hostname) : cache.node(pinned.nodeName);
    const nodeName = node?.metadata?.name;
    return nodeName ? helpers.waitsBeforeCreate('delete', pv.metadata?.name ?? '', nodeName) : undefined;
  }

  /** Drops what this controller remembers of a PV (call when the PV object is gone). */
  forget(uid: string): void {
    this.started.delete(uid);
  }

  /**
   * Called for every PV add/update the informer sees: when the PV no longer decides "delete" (switched to Retain,
   * re-bound, annotated away), its delete helper is removed at once, even while a run waits for it to be scheduled,
   * so a helper Pending on an unreachable node can never start `rm -rf` later. No API call unless such a helper exists.
   */
  async onVolumeChanged(pv: V1PersistentVolume, logger: ReconcileContext['logger']): Promise<void> {
    const name = pv.metadata?.name ?? '';
    if (!name || !this.deps.cache.helper(helperPodName('delete', name))) return;
    if (decideVolume(pv, this.deps.settings.provisionerNames).action === 'delete') return;
    await this.deps.helpers.removeHelper('delete', name, logger.child({ pv: name }));
  }

  /** Deletes the PV object (uid precondition) and then removes our finalizer so the API server lets it go. */
  private async removeVolumeObject(pv: V1PersistentVolume): Promise<void> {
    const { kube } = this.deps;
    const answered = pv.metadata?.deletionTimestamp
      ? undefined
      : await kube.deleteVolume(pv.metadata?.name ?? '', pv.metadata?.uid ?? '');
    // Unconditionally: against the PV the delete returned, else read fresh; nothing when our finalizer is absent (the
    // object we hold may predate the finalizer being added, and a kept finalizer leaves the PV Terminating forever).
    await kube.removeVolumeFinalizer(pv.metadata?.name ?? '', VOLUME_FINALIZER, answered);
  }
}
