import type { V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER, ANN_STORAGE_PROVISIONER_BETA } from './constants.js';
import { claimClassName } from './class-name.js';
import { parseClassParameters, type ClassParameters } from './storage-class.js';

/** What to do with a claim, decided before anything touches a node. */
export type ClaimDecision =
  /** Not ours, or not ready for us yet: do nothing, say nothing (a reason for debug logs). */
  | { readonly action: 'ignore'; readonly why: string }
  /** Ours but cannot be served: Warning ProvisioningFailed with `message`, no helper, no PV. */
  | { readonly action: 'refuse'; readonly reason: RefusalReason; readonly message: string }
  /** Provision on `node` (WaitForFirstConsumer) or on a node we choose (`node` undefined, Immediate binding). */
  | {
      readonly action: 'provision';
      readonly provisionerName: string;
      readonly parameters: ClassParameters;
      readonly selectedNode: string | undefined;
    };

/** Named refusal reasons (metric label values and log fields). */
export type RefusalReason = 'block_volume' | 'selector' | 'data_source' | 'bad_class' | 'no_storage_request';

/**
 * The provisioner the PV controller asked to serve a claim: the GA annotation
 * `volume.kubernetes.io/storage-provisioner`, else the beta key (sig-storage-lib-external-provisioner reads them in
 * that order).
 */
export function requestedProvisioner(claim: V1PersistentVolumeClaim): string | undefined {
  const ann = claim.metadata?.annotations ?? {};
  return ann[ANN_STORAGE_PROVISIONER] ?? ann[ANN_STORAGE_PROVISIONER_BETA];
}

/** Kinds of `dataSource`/`dataSourceRef` that mean cloning or restoring a snapshot (refused, not ours to ignore). */
const CLONE_KINDS = new Set(['PersistentVolumeClaim', 'VolumeSnapshot']);

/**
 * Decides whether and how to serve a claim. Mirrors sig-storage-lib-external-provisioner's `shouldProvision`:
 * a claim is ours when it is not bound, not being deleted, its class names one of our provisioners, and the PV
 * controller annotated it for that provisioner; with WaitForFirstConsumer it also needs the selected-node annotation.
 *
 * @param claim - the claim as cached.
 * The claim's class is resolved by {@link claimClassName} (the beta annotation first, as the PV controller does).
 *
 * @param storageClass - its StorageClass (named by {@link claimClassName}), or undefined when it does not exist (yet).
 * @param provisionerNames - the names we answer to.
 * @param defaultBaseDirectory - PV_DIR.
 */
export function decideClaim(
  claim: V1PersistentVolumeClaim,
  storageClass: V1StorageClass | undefined,
  provisionerNames: readonly string[],
  defaultBaseDirectory: string,
): ClaimDecision {
  const spec = claim.spec ?? {};
  if (claim.metadata?.deletionTimestamp) return { action: 'ignore', why: 'claim is being deleted' };
  if (spec.volumeName) return { action: 'ignore', why: `claim is bound to ${spec.volumeName}` };
  const className = claimClassName(claim);
  if (!className) return { action: 'ignore', why: 'claim names no StorageClass' };
  if (!storageClass) return { action: 'ignore', why: `StorageClass ${className} not found` };
  if (!provisionerNames.includes(storageClass.provisioner)) {
    return {
      action: 'ignore',
      why: `StorageClass ${storageClass.metadata?.name} belongs to ${storageClass.provisioner}`,
    };
  }
  const requested = requestedProvisioner(claim);
  if (requested === undefined || !provisionerNames.includes(requested)) {
    return { action: 'ignore', why: 'the PV controller has not asked us to provision this claim' };
  }
  const ref = spec.dataSourceRef ?? spec.dataSource;
  if (ref && !CLONE_KINDS.has(ref.kind)) {
    return { action: 'ignore', why: `claim is filled by the volume populator for ${ref.kind}` };
  }

  if (spec.volumeMode === 'Block') {
    return {
      action: 'refuse',
      reason: 'block_volume',
      message: 'block volumes (volumeMode: Block) are not supported: hostPath volumes are directories',
    };
  }
  if (spec.selector) {
    return {
      action: 'refuse',
      reason: 'selector',
      message: 'claims with a selector are not supported by dynamic provisioning',
    };
  }
  if (ref) {
    return {
      action: 'refuse',
      reason: 'data_source',
      message: `claims with a data source (${ref.kind} ${ref.name}) are not supported: no cloning or snapshots`,
    };
  }
  if (!spec.resources?.requests?.storage) {
    return {
      action: 'refuse',
      reason: 'no_storage_request',
      message: 'claim requests no storage (resources.requests.storage)',
    };
  }
  const parsed = parseClassParameters(storageClass, defaultBaseDirectory);
  if (!parsed.ok) {
    return {
      action: 'refuse',
      reason: 'bad_class',
      message: `StorageClass ${storageClass.metadata?.name}: ${parsed.problems.join('; ')}`,
    };
  }
  const selectedNode = claim.metadata?.annotations?.[ANN_SELECTED_NODE];
  if (storageClass.volumeBindingMode === 'WaitForFirstConsumer' && !selectedNode) {
    return { action: 'ignore', why: 'waiting for a consumer pod to be scheduled (WaitForFirstConsumer)' };
  }
  return { action: 'provision', provisionerName: requested, parameters: parsed.parameters, selectedNode };
}
