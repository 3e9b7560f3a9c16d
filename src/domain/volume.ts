import type {
  V1Node,
  V1NodeSelectorTerm,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1TopologySelectorTerm,
} from '@kubernetes/client-node';
import {
  ANN_PROVISIONED_BY,
  ANN_PROVISIONER_IDENTITY,
  ANN_SHARED_FILE_SYSTEM,
  LABEL_HOSTNAME,
  VOLUME_FINALIZER,
} from './constants.js';
import { termMatches } from './node-affinity.js';
import { claimClassName, volumeClassName } from './class-name.js';
import type { ReclaimPolicy, VolumeType } from './storage-class.js';

/** Everything the PV builder needs, already decided. */
export interface VolumeSpecInput {
  /** The claim being served (name, namespace, uid, access modes and storage request are copied). */
  readonly claim: V1PersistentVolumeClaim;
  /** PV name, `pvc-<claim uid>`. */
  readonly volumeName: string;
  /** Absolute path of the volume directory on the node. */
  readonly path: string;
  /** Value of the node's `kubernetes.io/hostname` label (not assumed equal to the node name). */
  readonly nodeHostname: string;
  /**
   * Set for a class with `sharedFileSystem`: the PV is pinned not to `nodeHostname` but to the class's
   * `allowedTopologies` (none or empty: no node affinity at all), and marked {@link ANN_SHARED_FILE_SYSTEM}.
   */
  readonly shared?: { readonly allowedTopologies?: readonly V1TopologySelectorTerm[] | undefined };
  readonly reclaimPolicy: ReclaimPolicy;
  readonly volumeType: VolumeType;
  /** The provisioner name the claim asked for. */
  readonly provisionerName: string;
  /** Our identity (the addon writes its node name); stored in `hostPathProvisionerIdentity`. */
  readonly identity: string;
}

/**
 * The hostname label value a PV's node affinity should name: the node's `kubernetes.io/hostname` label,
 * falling back to its name when the label is missing.
 */
export function nodeHostname(node: V1Node): string {
  return node.metadata?.labels?.[LABEL_HOSTNAME] ?? node.metadata?.name ?? '';
}

/**
 * Builds the PersistentVolume for a provisioned claim, in the addon's shape: hostPath (type DirectoryOrCreate) or
 * `local`, capacity equal to the request (not enforced), access modes copied from the claim, required node affinity
 * on `kubernetes.io/hostname`, a full claimRef with uid (so the PV controller binds it to exactly this claim),
 * `pv.kubernetes.io/provisioned-by` and `hostPathProvisionerIdentity`. Reclaim policy Delete adds the
 * `external-provisioner.volume.kubernetes.io/finalizer` so `kubectl delete pv` waits for the directory's removal.
 * The PV's `storageClassName` is the claim's class as the PV controller resolves it ({@link claimClassName}: the beta
 * annotation first), so a claim that names its class only by annotation binds to it.
 *
 * @throws Error when the node hostname is empty: a PV pinned to "" is the addon's bug we do not copy.
 */
export function buildVolume(input: VolumeSpecInput): V1PersistentVolume {
  if (input.nodeHostname === '' && !input.shared)
    throw new Error('refusing to build a PV pinned to an empty node name');
  const { claim } = input;
  const storage = claim.spec?.resources?.requests?.storage;
  if (storage === undefined) throw new Error('claim requests no storage');
  const accessModes = claim.spec?.accessModes?.length ? [...claim.spec.accessModes] : ['ReadWriteOnce'];
  const pv: V1PersistentVolume = {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name: input.volumeName,
      annotations: {
        [ANN_PROVISIONED_BY]: input.provisionerName,
        [ANN_PROVISIONER_IDENTITY]: input.identity,
        ...(input.shared ? { [ANN_SHARED_FILE_SYSTEM]: 'true' } : {}),
      },
      ...(input.reclaimPolicy === 'Delete' ? { finalizers: [VOLUME_FINALIZER] } : {}),
    },
    spec: {
      capacity: { storage },
      accessModes,
      persistentVolumeReclaimPolicy: input.reclaimPolicy,
      storageClassName: claimClassName(claim),
      volumeMode: 'Filesystem',
      claimRef: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        namespace: claim.metadata?.namespace ?? '',
        name: claim.metadata?.name ?? '',
        uid: claim.metadata?.uid ?? '',
      },
      ...volumeNodeAffinity(input),
      ...(input.volumeType === 'local'
        ? { local: { path: input.path } }
        : { hostPath: { path: input.path, type: 'DirectoryOrCreate' } }),
    },
  };
  return pv;
}

/**
 * The node affinity of a new PV: its node's hostname; for a shared file system, the class's allowedTopologies as node
 * selector terms (each `matchLabelExpressions` entry becomes an `In` expression, as the CSI external-provisioner
 * translates topology), or none.
 */
function volumeNodeAffinity(input: VolumeSpecInput): Pick<NonNullable<V1PersistentVolume['spec']>, 'nodeAffinity'> {
  if (input.shared) {
    const terms: V1NodeSelectorTerm[] = (input.shared.allowedTopologies ?? [])
      .map((t) => ({
        matchExpressions: (t.matchLabelExpressions ?? []).map((e) => ({
          key: e.key,
          operator: 'In',
          values: [...e.values],
        })),
      }))
      .filter((t) => t.matchExpressions.length > 0);
    return terms.length > 0 ? { nodeAffinity: { required: { nodeSelectorTerms: terms } } } : {};
  }
  return {
    nodeAffinity: {
      required: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: LABEL_HOSTNAME, operator: 'In', values: [input.nodeHostname] }] },
        ],
      },
    },
  };
}

/** Whether a PV is on a shared file system ({@link ANN_SHARED_FILE_SYSTEM} is "true"). */
export function isSharedVolume(pv: V1PersistentVolume): boolean {
  return pv.metadata?.annotations?.[ANN_SHARED_FILE_SYSTEM] === 'true';
}

/**
 * Whether a node can reach a shared PV's directory: any term of the PV's required node affinity matches it, or the PV
 * has none.
 */
export function sharedVolumeReachableFrom(pv: V1PersistentVolume, node: V1Node): boolean {
  const terms = pv.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? [];
  return terms.length === 0 || terms.some((t) => termMatches(t, node));
}

/** Path of a PV's directory: its hostPath or local path, or undefined for other volume sources. */
export function volumePath(pv: V1PersistentVolume): string | undefined {
  return pv.spec?.hostPath?.path ?? pv.spec?.local?.path;
}

/**
 * The hostname a PV is pinned to: the single value of a `kubernetes.io/hostname In [...]` expression in its required
 * node affinity (the shape we and the addon write). Undefined when there is none, several, or an empty one.
 */
export function volumeHostname(pv: V1PersistentVolume): string | undefined {
  const values = new Set<string>();
  for (const term of pv.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? []) {
    for (const expr of term.matchExpressions ?? []) {
      if (expr.key === LABEL_HOSTNAME && expr.operator === 'In') for (const v of expr.values ?? []) values.add(v);
    }
  }
  const [only] = [...values];
  return values.size === 1 && only !== '' ? only : undefined;
}

/**
 * Where a PV's directory lives: the node whose `kubernetes.io/hostname` label its node affinity names
 * ({@link volumeHostname}); or, for a PV with no node affinity at all — made by addon releases before node affinity
 * was added, on the provisioner's own node — the node *named* by its `hostPathProvisionerIdentity` annotation (the
 * addon wrote its NODE_NAME there). Undefined when neither says (an affinity we cannot read is never second-guessed
 * with the annotation), and for a shared PV ({@link isSharedVolume}): it lives on no one node.
 *
 * @returns `{ hostname }` to look up by hostname label, `{ nodeName }` to look up by node name, or undefined.
 */
export function volumeNode(
  pv: V1PersistentVolume,
): { readonly hostname: string } | { readonly nodeName: string } | undefined {
  if (isSharedVolume(pv)) return undefined;
  const hostname = volumeHostname(pv);
  if (hostname !== undefined) return { hostname };
  const identity = pv.metadata?.annotations?.[ANN_PROVISIONER_IDENTITY];
  if (pv.spec?.nodeAffinity === undefined && identity) return { nodeName: identity };
  return undefined;
}

/**
 * Whether a PV's directory lives on `node`: its node affinity names the node's hostname, or — an old addon PV with no
 * node affinity — its identity annotation names the node ({@link volumeNode}); a shared PV lives on every node that
 * can reach it ({@link sharedVolumeReachableFrom}).
 */
export function volumeOnNode(pv: V1PersistentVolume, node: V1Node): boolean {
  if (isSharedVolume(pv)) return sharedVolumeReachableFrom(pv, node);
  const where = volumeNode(pv);
  if (where === undefined) return false;
  return 'hostname' in where ? where.hostname === nodeHostname(node) : where.nodeName === node.metadata?.name;
}

/** Whether one of `provisionerNames` provisioned this PV (`pv.kubernetes.io/provisioned-by`). */
export function isOurVolume(pv: V1PersistentVolume, provisionerNames: readonly string[]): boolean {
  const by = pv.metadata?.annotations?.[ANN_PROVISIONED_BY];
  return by !== undefined && provisionerNames.includes(by);
}

/**
 * Counts the PVs of ours by node and StorageClass, for the hostpath_provisioner_volumes gauge.
 * @param volumes - PVs as cached.
 * @param provisionerNames - names whose `pv.kubernetes.io/provisioned-by` makes a PV ours.
 * @returns one entry per node (the PV's pinned hostname, 'unknown' without one) and class ('' without one), in first-seen
 *   order, each count at least 1.
 */
export function countVolumes(
  volumes: readonly V1PersistentVolume[],
  provisionerNames: readonly string[],
): { readonly node: string; readonly class: string; readonly count: number }[] {
  const counts = new Map<string, { node: string; class: string; count: number }>();
  for (const pv of volumes) {
    if (!isOurVolume(pv, provisionerNames)) continue;
    const node = isSharedVolume(pv) ? '' : (volumeHostname(pv) ?? 'unknown'); // '' as in the usage series
    const className = volumeClassName(pv);
    const key = JSON.stringify([node, className]);
    const entry = counts.get(key) ?? { node, class: className, count: 0 };
    entry.count += 1;
    counts.set(key, entry);
  }
  return [...counts.values()];
}

/** What the delete reconciler should do with a PV of ours. */
export type VolumeDecision =
  | { readonly action: 'ignore'; readonly why: string }
  /** Reclaim policy Delete and still in use: make sure it carries our finalizer. */
  | { readonly action: 'ensure-finalizer' }
  /** Retain (or not ours to clean) but carrying our finalizer: remove it, touch no data. */
  | { readonly action: 'release-finalizer' }
  /** Released (or deleted by hand) with reclaim policy Delete: remove the directory, then the PV. */
  | { readonly action: 'delete' };

/**
 * Decides what to do with a PV. Only PVs we (or the addon) provisioned are considered. Data is removed only when the
 * reclaim policy is Delete and the PV is Released, or was deleted by hand while not Bound.
 *
 * @param pv - the PV as cached.
 * @param provisionerNames - the names we answer to.
 */
export function decideVolume(pv: V1PersistentVolume, provisionerNames: readonly string[]): VolumeDecision {
  if (!isOurVolume(pv, provisionerNames)) return { action: 'ignore', why: 'not provisioned by us' };
  const finalizers = pv.metadata?.finalizers ?? [];
  const hasFinalizer = finalizers.includes(VOLUME_FINALIZER);
  const phase = pv.status?.phase;
  const deleting = pv.metadata?.deletionTimestamp !== undefined;
  if (pv.spec?.persistentVolumeReclaimPolicy !== 'Delete') {
    return hasFinalizer ? { action: 'release-finalizer' } : { action: 'ignore', why: 'reclaim policy is not Delete' };
  }
  if (deleting && !hasFinalizer) return { action: 'ignore', why: 'being deleted; our cleanup is done' };
  if (phase === 'Released' || (deleting && phase !== 'Bound')) return { action: 'delete' };
  if (deleting) return { action: 'ignore', why: 'deleted by hand but still Bound: waiting for the claim to go' };
  return hasFinalizer ? { action: 'ignore', why: `phase ${phase ?? 'unknown'}` } : { action: 'ensure-finalizer' };
}
