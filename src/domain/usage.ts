/**
 * Volume usage: what the list helper's `du` measured, tied to the PVs of ours, for the used/capacity gauges and the
 * VolumeOverCapacity event. Capacity on hostPath is bookkeeping, not a limit (see README), so a volume may hold more
 * than its claim asked for; these functions say so, they never enforce anything. Pure.
 */
import type { V1Node, V1PersistentVolume } from '@kubernetes/client-node';
import { quantityToBytes } from './quantity.js';
import { isOurVolume, isSharedVolume, volumeHostname, volumeNode, volumeOnNode, volumePath } from './volume.js';

/** One series pair of hostpath_provisioner_volume_capacity_bytes / _used_bytes. */
export interface VolumeUsageSeries {
  readonly namespace: string;
  readonly persistentvolumeclaim: string;
  readonly persistentvolume: string;
  /** The PV's pinned hostname ('unknown' without one; an old addon PV: the node its identity names). */
  readonly node: string;
  /** `spec.capacity.storage` in bytes. */
  readonly capacityBytes: number;
  /** Bytes used as last measured; undefined before the first report of its node. */
  readonly usedBytes: number | undefined;
}

/**
 * The usage series of our PVs that have a claim and a capacity: the claim's namespace and name from `claimRef`.
 *
 * @param volumes - PVs as cached.
 * @param provisionerNames - names whose `pv.kubernetes.io/provisioned-by` makes a PV ours.
 * @param usedBytes - bytes used by PV name, as last measured.
 */
export function volumeUsageSeries(
  volumes: readonly V1PersistentVolume[],
  provisionerNames: readonly string[],
  usedBytes: ReadonlyMap<string, number>,
): VolumeUsageSeries[] {
  const out: VolumeUsageSeries[] = [];
  for (const pv of volumes) {
    const ref = pv.spec?.claimRef;
    const capacityBytes = quantityToBytes(pv.spec?.capacity?.['storage']);
    const name = pv.metadata?.name;
    if (!isOurVolume(pv, provisionerNames) || !ref?.name || capacityBytes === undefined || !name) continue;
    const where = volumeNode(pv);
    out.push({
      namespace: ref.namespace ?? '',
      persistentvolumeclaim: ref.name,
      persistentvolume: name,
      // A volume on a shared file system lives on no one node: its series has an empty node label.
      node: isSharedVolume(pv)
        ? ''
        : (volumeHostname(pv) ?? (where && 'nodeName' in where ? where.nodeName : 'unknown')),
      capacityBytes,
      usedBytes: usedBytes.get(name),
    });
  }
  return out;
}

/**
 * Bytes used by each PV of ours on `node`, from one listing of that node: a PV's entry is its path in `usedByPath`.
 * PVs of ours on the node whose directory was not measured are absent.
 *
 * @param volumes - PVs as cached.
 * @param provisionerNames - names whose `pv.kubernetes.io/provisioned-by` makes a PV ours.
 * @param node - the node listed.
 * @param usedByPath - bytes used by directory path (`<base>/<name>`), from the list helper.
 * @returns bytes by PV name.
 */
export function usageOnNode(
  volumes: readonly V1PersistentVolume[],
  provisionerNames: readonly string[],
  node: V1Node,
  usedByPath: ReadonlyMap<string, number>,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const pv of volumes) {
    const path = volumePath(pv);
    const name = pv.metadata?.name;
    if (!name || path === undefined || !isOurVolume(pv, provisionerNames)) continue;
    const used = usedByPath.get(path);
    if (used !== undefined && volumeOnNode(pv, node)) out.set(name, used);
  }
  return out;
}

/** Bytes as a short human figure with the exact value, e.g. `2.0 MiB (2101248 bytes)`. */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]} (${bytes} bytes)`;
}

/**
 * The VolumeOverCapacity message when a volume uses more than its capacity, else undefined.
 *
 * @param series - the volume's series (its `usedBytes` measured).
 * @param capacity - `spec.capacity.storage` as written on the PV, e.g. `1Gi`.
 */
export function overCapacityMessage(series: VolumeUsageSeries, capacity: string): string | undefined {
  if (series.usedBytes === undefined || series.usedBytes <= series.capacityBytes) return undefined;
  return (
    `volume ${series.persistentvolume} uses ${formatBytes(series.usedBytes)} ` +
    `${series.node ? `on node ${series.node}` : 'on its shared file system'}, more than its ` +
    `capacity ${capacity}: hostPath capacity is not enforced, so the node's disk is what fills up — free space in ` +
    "the volume, or raise the claim's request (with allowVolumeExpansion on its class) so quotas and dashboards are true"
  );
}
