import type { V1Volume, KubernetesObject, V1Node, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import {
  ANN_SELECTED_NODE,
  ANN_STORAGE_CLASS_BETA,
  ANN_STORAGE_PROVISIONER,
  ANN_STORAGE_PROVISIONER_BETA,
} from '../domain/constants.js';

/**
 * Informer transforms (client-go's `SetTransform` / `TransformStripManagedFields`): what the provisioner never reads
 * is dropped before an object is cached, so a cache of every claim, PV, node and Pending pod stays small. Each one
 * returns a new object and never mutates its input. What stays is what `controllers/` and `src/domain/` read; change
 * these together with any code that starts reading another field (test/kube-transforms.test.ts lists what is kept).
 */

/** The annotation `kubectl apply` writes: a full copy of the object, never read here. */
export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Drops `metadata.managedFields` (server-side apply bookkeeping, often the largest part of an object) and the
 * `kubectl.kubernetes.io/last-applied-configuration` annotation. Everything else is kept.
 *
 * @param obj - any Kubernetes object.
 * @returns a shallow copy without those two.
 */
export function stripCommon<T extends KubernetesObject>(obj: T): T {
  if (obj.metadata === undefined) return obj;
  const metadata = { ...obj.metadata };
  delete metadata.managedFields;
  if (metadata.annotations?.[LAST_APPLIED] !== undefined) {
    const annotations = { ...metadata.annotations };
    delete annotations[LAST_APPLIED];
    metadata.annotations = annotations;
  }
  return { ...obj, metadata };
}

/** The claim annotations the provisioner reads (src/domain/claim.ts, class-name.ts); no other is cached. */
export const CLAIM_ANNOTATIONS_READ: readonly string[] = [
  ANN_STORAGE_PROVISIONER,
  ANN_STORAGE_PROVISIONER_BETA,
  ANN_STORAGE_CLASS_BETA,
  ANN_SELECTED_NODE,
];

/**
 * A claim as the provisioner reads it: {@link stripCommon}, and of its annotations only
 * {@link CLAIM_ANNOTATIONS_READ}. Claims are namespace users' objects: any other annotation (up to 256 KiB each
 * claim) would be cached for every claim of the cluster in every replica. Safe because claims are written only by
 * JSON patches of one annotation, never by sending a cached claim back.
 *
 * @param claim - a PersistentVolumeClaim from the API.
 * @returns a copy with only those annotations (none: no `annotations` field).
 */
export function stripClaim(claim: V1PersistentVolumeClaim): V1PersistentVolumeClaim {
  const stripped = stripCommon(claim);
  const all = stripped.metadata?.annotations;
  if (all === undefined || stripped.metadata === undefined) return stripped;
  const kept = Object.fromEntries(CLAIM_ANNOTATIONS_READ.filter((k) => k in all).map((k) => [k, all[k] ?? '']));
  const metadata = { ...stripped.metadata };
  if (Object.keys(kept).length > 0) metadata.annotations = kept;
  else delete metadata.annotations;
  return { ...stripped, metadata };
}

/**
 * A node as the provisioner reads it: {@link stripCommon}, and its status without the image list, the volumes in use
 * or attached, and the node config. Labels, taints, `unschedulable`, conditions, addresses, capacity and nodeInfo stay.
 *
 * @param node - a Node from the API.
 * @returns a copy without those fields.
 */
export function stripNode(node: V1Node): V1Node {
  const out = stripCommon(node);
  if (out.status === undefined) return out;
  const status = { ...out.status };
  delete status.images;
  delete status.volumesInUse;
  delete status.volumesAttached;
  delete status.config;
  return { ...out, status };
}

/**
 * A Pending pod as the consumer index reads it: {@link stripCommon} metadata; of the spec only the claim volumes (and generic ephemeral ones),
 * the tolerations, the node name, the nodeSelector and the required node affinity; of the status only the phase. Containers (their env may hold literal secrets),
 * other volumes and the rest of the status are dropped.
 *
 * @param pod - a Pod from the API.
 * @returns a reduced copy.
 */
export function stripPendingPod(pod: V1Pod): V1Pod {
  const out = stripCommon(pod);
  const spec = pod.spec;
  const reduced: Record<string, unknown> = { containers: [] };
  // Claim volumes, and generic ephemeral volumes (their claim is `<pod>-<volume>`; the template is not needed).
  const claimVolumes = (spec?.volumes ?? []).flatMap((v): V1Volume[] =>
    v.persistentVolumeClaim
      ? [{ name: v.name, persistentVolumeClaim: v.persistentVolumeClaim }]
      : v.ephemeral
        ? [{ name: v.name, ephemeral: {} }]
        : [],
  );
  if (claimVolumes.length > 0) reduced['volumes'] = claimVolumes;
  if (spec?.tolerations !== undefined) reduced['tolerations'] = spec.tolerations;
  if (spec?.nodeName !== undefined) reduced['nodeName'] = spec.nodeName;
  // Node selection, to tell whether the pod could run on a claim's selected node (preferences are not needed).
  if (spec?.nodeSelector !== undefined) reduced['nodeSelector'] = spec.nodeSelector;
  const required = spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required !== undefined) {
    reduced['affinity'] = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: required } };
  }
  const result: V1Pod = { ...out, spec: reduced as unknown as NonNullable<V1Pod['spec']> };
  if (pod.status?.phase !== undefined) result.status = { phase: pod.status.phase };
  else delete result.status;
  return result;
}
