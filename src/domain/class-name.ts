import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { ANN_STORAGE_CLASS_BETA } from './constants.js';

/**
 * The StorageClass a claim asks for, resolved as the PV controller does (`GetPersistentVolumeClaimClass` in
 * k8s.io/component-helpers/storage/volume): the beta annotation `volume.beta.kubernetes.io/storage-class` first —
 * when it is present, its value wins even if it is empty — then `spec.storageClassName`.
 *
 * @param claim - a claim as cached.
 * @returns the class name, or '' when the claim asks for no class.
 */
export function claimClassName(claim: V1PersistentVolumeClaim): string {
  const annotations = claim.metadata?.annotations ?? {};
  if (Object.hasOwn(annotations, ANN_STORAGE_CLASS_BETA)) return annotations[ANN_STORAGE_CLASS_BETA] ?? '';
  return claim.spec?.storageClassName ?? '';
}

/**
 * The StorageClass of a PV, resolved as the PV controller does (`GetPersistentVolumeClass`): the beta annotation
 * `volume.beta.kubernetes.io/storage-class` first, then `spec.storageClassName`.
 *
 * @param pv - a PV as cached.
 * @returns the class name, or '' when the PV has none.
 */
export function volumeClassName(pv: V1PersistentVolume): string {
  const annotations = pv.metadata?.annotations ?? {};
  if (Object.hasOwn(annotations, ANN_STORAGE_CLASS_BETA)) return annotations[ANN_STORAGE_CLASS_BETA] ?? '';
  return pv.spec?.storageClassName ?? '';
}
