import type { V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  ANN_HELPER_CLAIM,
  ANN_HELPER_CLAIM_UID,
  ANN_HELPER_VOLUME,
  LABEL_HELPER_OPERATION,
} from '../src/domain/constants.js';
import type { HelperRunner } from './helper-runner.js';
import type { ClusterCache, KubeWriter } from './ports.js';

/**
 * Why a helper pod is left over (no reconcile will ever adopt it), or undefined when it may still be needed.
 * A create helper is left over when its claim is gone (other uid, or deleted) or already has its volume; a delete
 * helper when its PV is gone. Pure apart from the cache reads.
 */
export function leftoverReason(helper: V1Pod, cache: ClusterCache): string | undefined {
  const ann = helper.metadata?.annotations ?? {};
  const operation = helper.metadata?.labels?.[LABEL_HELPER_OPERATION];
  const volumeName = ann[ANN_HELPER_VOLUME];
  if (!volumeName) return 'it names no volume';
  if (operation === 'create') {
    const claimKey = ann[ANN_HELPER_CLAIM] ?? '';
    const claim = cache.claim(claimKey);
    if (!claim || claim.metadata?.uid !== ann[ANN_HELPER_CLAIM_UID]) return `claim ${claimKey} no longer exists`;
    if (claim.spec?.volumeName || cache.volume(volumeName)) return `claim ${claimKey} already has its volume`;
    return undefined;
  }
  if (operation === 'delete') return cache.volume(volumeName) ? undefined : `volume ${volumeName} no longer exists`;
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
  readonly logger: Logger;
}): Promise<string[]> {
  const deleted: string[] = [];
  for (const helper of deps.cache.helpers()) {
    const name = helper.metadata?.name ?? '';
    if (!name || deps.runner.isRunning(name) || helper.metadata?.deletionTimestamp) continue;
    const reason = leftoverReason(helper, deps.cache);
    if (!reason) continue;
    deps.logger.info({ helper: name, reason }, 'deleting a leftover helper pod');
    await deps.kube.deletePod(deps.namespace, name, helper.metadata?.uid);
    deleted.push(name);
  }
  return deleted;
}
