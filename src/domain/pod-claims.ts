import type { V1Pod } from '@kubernetes/client-node';

/**
 * The names of the claims a pod mounts: `persistentVolumeClaim.claimName` of its claim volumes and, for generic
 * ephemeral volumes, `<pod name>-<volume name>` — the claim the ephemeral volume controller creates for it
 * (`k8s.io/component-helpers/storage/ephemeral.VolumeClaimName`). Pure.
 *
 * @param pod - a pod (its namespace is the claims' namespace).
 * @returns claim names, in volume order, without duplicates.
 */
export function claimNamesOfPod(pod: V1Pod): string[] {
  const names = new Set<string>();
  for (const v of pod.spec?.volumes ?? []) {
    if (v.persistentVolumeClaim?.claimName) names.add(v.persistentVolumeClaim.claimName);
    else if (v.ephemeral) names.add(`${pod.metadata?.name ?? ''}-${v.name}`);
  }
  return [...names];
}
