import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  ANN_HELPER_CLAIM,
  ANN_HELPER_CLAIM_UID,
  ANN_HELPER_PATH,
  ANN_HELPER_VOLUME,
  ANN_HELPER_VOLUME_UID,
  LABEL_HELPER_OPERATION,
} from '../src/domain/constants.js';
import { decideClaim } from '../src/domain/claim.js';
import { claimClassName } from '../src/domain/class-name.js';
import { decideVolume, volumePath } from '../src/domain/volume.js';
import type { HelperRunner } from './helper-runner.js';
import type { ClusterCache, KubeWriter } from './ports.js';

/**
 * Why a helper pod is left over (no reconcile will ever adopt it), or undefined when it may still be needed.
 * A create helper is left over when its claim is gone (other uid, or deleted), is being deleted, already has its
 * volume, or is no longer one we provision ({@link decideClaim} ignores or refuses it: its class was deleted or
 * changed, its selected node was removed for rescheduling). Removing a create helper never removes data. A delete helper is left over unless its PV still decides "delete" and is the same object (uid) with the
 * same path: a delete helper is only ever kept for work the PV still asks for (removing one is always safe — the
 * PV's reconcile creates a new one if it must). Pure apart from the cache reads.
 *
 * @param provisionerNames - the provisioner names we answer to (for {@link decideVolume} and {@link decideClaim}).
 * @param defaultBaseDirectory - PV_DIR (for {@link decideClaim}).
 */
export function leftoverReason(
  helper: V1Pod,
  cache: ClusterCache,
  provisionerNames: readonly string[],
  defaultBaseDirectory: string,
): string | undefined {
  const ann = helper.metadata?.annotations ?? {};
  const operation = helper.metadata?.labels?.[LABEL_HELPER_OPERATION];
  const volumeName = ann[ANN_HELPER_VOLUME];
  if (!volumeName) return 'it names no volume';
  if (operation === 'create') {
    const claimKey = ann[ANN_HELPER_CLAIM] ?? '';
    const claim = cache.claim(claimKey);
    if (!claim || claim.metadata?.uid !== ann[ANN_HELPER_CLAIM_UID]) return `claim ${claimKey} no longer exists`;
    if (claim.metadata?.deletionTimestamp) return `claim ${claimKey} is being deleted`;
    if (claim.spec?.volumeName || cache.volume(volumeName)) return `claim ${claimKey} already has its volume`;
    const className = claimClassName(claim);
    const storageClass = className ? cache.storageClass(className) : undefined;
    const decision = decideClaim(claim, storageClass, provisionerNames, defaultBaseDirectory);
    if (decision.action === 'ignore') return `claim ${claimKey} is not ours to provision now: ${decision.why}`;
    if (decision.action === 'refuse') return `claim ${claimKey} is refused: ${decision.message}`;
    return undefined;
  }
  if (operation === 'delete') {
    const pv = cache.volume(volumeName);
    if (!pv) return `volume ${volumeName} no longer exists`;
    if (pv.metadata?.uid !== ann[ANN_HELPER_VOLUME_UID]) return `it was made for another object named ${volumeName}`;
    if (volumePath(pv) !== ann[ANN_HELPER_PATH]) return `volume ${volumeName} points at another path now`;
    const decision = decideVolume(pv, provisionerNames);
    if (decision.action !== 'delete') return `volume ${volumeName} no longer asks for deletion`;
    return undefined;
  }
  if (operation === 'list') return 'no orphan report is waiting for this list helper';
  return `unknown operation ${JSON.stringify(operation)}`;
}

/**
 * Deletes helper pods that no reconcile will adopt: left by a crash, or by a claim deleted while the provisioner was
 * down. Helpers a run is using right now are never touched. Run at start of leadership and periodically.
 *
 * @returns the names of the helpers deleted.
 */
export async function sweepLeftoverHelpers(deps: {
  readonly cache: ClusterCache;
  readonly kube: KubeWriter;
  readonly runner: HelperRunner;
  readonly namespace: string;
  readonly provisionerNames: readonly string[];
  /** PV_DIR. */
  readonly defaultBaseDirectory: string;
  readonly logger: Logger;
}): Promise<string[]> {
  const deleted: string[] = [];
  for (const helper of deps.cache.helpers()) {
    const name = helper.metadata?.name ?? '';
    if (!name || deps.runner.isRunning(name) || helper.metadata?.deletionTimestamp) continue;
    const reason = leftoverReason(helper, deps.cache, deps.provisionerNames, deps.defaultBaseDirectory);
    if (!reason) continue;
    deps.logger.info({ helper: name, reason }, 'deleting a leftover helper pod');
    await deps.kube.deletePod(deps.namespace, name, helper.metadata?.uid);
    deleted.push(name);
  }
  return deleted;
}
