import type { KubernetesObject, V1Node, V1PersistentVolume } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { overCapacityMessage, volumeUsageSeries, type VolumeUsageSeries } from '../src/domain/usage.js';
import { isOurVolume, volumeOnNode, volumePath } from '../src/domain/volume.js';
import type { ClusterCache } from './ports.js';

/** Reason of the Warning event on a claim whose volume uses more than its capacity. */
export const REASON_OVER_CAPACITY = 'VolumeOverCapacity';

/**
 * Keeps what the list helpers measured of our volumes (bytes used, by PV name) for the usage gauges, and says on the
 * claim when its volume outgrows its capacity: one Warning `VolumeOverCapacity` when a volume goes over, again only
 * after it has been back under. Entries go with their PV ({@link forget}), and a complete report of a node drops
 * those of its volumes it no longer found.
 */
export class VolumeUsageTracker {
  private readonly usedBytes = new Map<string, number>();
  private readonly over = new Set<string>();

  /**
   * @param deps.cache - PVs and claims as cached.
   * @param deps.provisionerNames - names whose PVs are ours.
   * @param deps.event - records an event (the provisioner's EventRecorder).
   */
  constructor(
    private readonly deps: {
      readonly cache: Pick<ClusterCache, 'volumes' | 'claim'>;
      readonly provisionerNames: readonly string[];
      readonly event: (obj: KubernetesObject, type: 'Normal' | 'Warning', reason: string, message: string) => void;
      readonly logger: Logger;
    },
  ) {}

  /**
   * Takes one node's measurement (from the orphan and usage report).
   *
   * @param node - the node listed.
   * @param usedByPath - bytes used by directory path (`<base>/<name>`).
   * @param complete - whether every du of the node finished; when not, volumes it did not measure keep their value.
   */
  record(node: V1Node, usedByPath: ReadonlyMap<string, number>, complete: boolean): void {
    const measured: V1PersistentVolume[] = [];
    for (const pv of this.deps.cache.volumes()) {
      const name = pv.metadata?.name ?? '';
      if (!name || !isOurVolume(pv, this.deps.provisionerNames) || !volumeOnNode(pv, node)) continue;
      const path = volumePath(pv);
      const used = path === undefined ? undefined : usedByPath.get(path);
      if (used !== undefined) {
        this.usedBytes.set(name, used);
        measured.push(pv);
      } else if (complete) {
        this.forget(name);
      }
    }
    for (const series of volumeUsageSeries(measured, this.deps.provisionerNames, this.usedBytes)) {
      const pv = measured.find((v) => v.metadata?.name === series.persistentvolume);
      if (pv) this.checkCapacity(series, pv);
    }
  }

  /** Drops what is known of a PV (it was deleted). */
  forget(volumeName: string): void {
    this.usedBytes.delete(volumeName);
    this.over.delete(volumeName);
  }

  /** The usage series of our volumes now (capacity always, used bytes once measured). */
  series(): VolumeUsageSeries[] {
    return volumeUsageSeries(this.deps.cache.volumes(), this.deps.provisionerNames, this.usedBytes);
  }

  private checkCapacity(series: VolumeUsageSeries, volume: V1PersistentVolume): void {
    const name = series.persistentvolume;
    const capacity = volume.spec?.capacity?.['storage'] ?? '';
    const message = overCapacityMessage(series, capacity);
    if (message === undefined) {
      this.over.delete(name);
      return;
    }
    if (this.over.has(name)) return;
    const claim = this.deps.cache.claim(`${series.namespace}/${series.persistentvolumeclaim}`);
    if (!claim || claim.metadata?.uid !== volume.spec?.claimRef?.uid) return; // the claim is gone or another one
    this.over.add(name);
    this.deps.logger.warn({ pv: name, usedBytes: series.usedBytes, capacity }, message);
    this.deps.event(claim, 'Warning', REASON_OVER_CAPACITY, message);
  }
}
