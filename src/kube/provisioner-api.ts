import {
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Api,
  type V1Node,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1Pod,
} from '@kubernetes/client-node';
import type { CreateResult, KubeWriter } from '../../controllers/ports.js';
import { LABEL_HOSTNAME } from '../domain/constants.js';
import { apiErrorMessage, isAlreadyExists, isConflict, isNotFound } from './client.js';

/** JSON Patch operation (RFC 6902). */
type JsonPatchOp = { op: 'test' | 'replace' | 'add' | 'remove'; path: string; value?: unknown };

const JSON_PATCH = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Escapes a key for a JSON Pointer path segment (RFC 6901). */
function pointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Attempts for a read-modify-write that races other writers (409 Conflict). */
const CONFLICT_ATTEMPTS = 5;

/**
 * The reconcilers' writes over the Kubernetes API (client-node 2.x `CoreV1Api`). Every call is idempotent:
 * NotFound on delete is success, AlreadyExists on create reads the existing object back, finalizer edits are
 * guarded JSON patches (the finalizer list or entry, else the resourceVersion) retried when the guard fails.
 */
export class ProvisionerApi implements KubeWriter {
  constructor(private readonly core: CoreV1Api) {}

  /** Live GET of a Node; undefined on 404. */
  async getNode(name: string): Promise<V1Node | undefined> {
    try {
      return await this.core.readNode({ name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Live lookup by `kubernetes.io/hostname` label (list with a label selector), else by name; undefined if neither. */
  async findNode(hostname: string): Promise<V1Node | undefined> {
    const list = await this.core.listNode({ labelSelector: `${LABEL_HOSTNAME}=${hostname}` });
    return list.items[0] ?? (await this.getNode(hostname));
  }

  /** Live GET of a PV; undefined on 404. */
  async readVolume(name: string): Promise<V1PersistentVolume | undefined> {
    try {
      return await this.core.readPersistentVolume({ name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Live GET of a claim; undefined on 404. */
  async readClaim(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined> {
    try {
      return await this.core.readNamespacedPersistentVolumeClaim({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** POST a PV; on AlreadyExists reads the existing one back. */
  async createVolume(pv: V1PersistentVolume): Promise<CreateResult<V1PersistentVolume>> {
    try {
      return { created: true, object: await this.core.createPersistentVolume({ body: pv }) };
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const object = await this.core.readPersistentVolume({ name: pv.metadata?.name ?? '' }).catch((e: unknown) => {
        if (isNotFound(e)) return undefined;
        throw e;
      });
      return { created: false, object };
    }
  }

  /** DELETE a PV with a uid precondition; 404 (and 409 for another uid: not ours to delete) are success. */
  async deleteVolume(name: string, uid: string): Promise<V1PersistentVolume | undefined> {
    try {
      const answer: unknown = await this.core.deletePersistentVolume({ name, body: { preconditions: { uid } } });
      // 200 with the object while finalizers hold it; a Status when it is gone at once.
      const pv = answer as V1PersistentVolume | undefined;
      return pv?.kind === 'PersistentVolume' && pv.metadata?.uid === uid ? pv : undefined;
    } catch (err) {
      if (isNotFound(err) || isConflict(err)) return undefined;
      throw err;
    }
  }

  async addVolumeFinalizer(name: string, finalizer: string, current?: V1PersistentVolume): Promise<void> {
    await this.editFinalizers(
      name,
      (pv) => {
        const finalizers = pv.metadata?.finalizers;
        if (finalizers?.includes(finalizer)) return undefined;
        // Guarded by the list as read (or, when there is none, the resourceVersion): the PV controller's status
        // writes do not make it fail, a concurrent finalizer edit does.
        return finalizers
          ? [
              { op: 'test', path: '/metadata/finalizers', value: finalizers },
              { op: 'add', path: '/metadata/finalizers/-', value: finalizer },
            ]
          : [
              { op: 'test', path: '/metadata/resourceVersion', value: pv.metadata?.resourceVersion },
              { op: 'add', path: '/metadata/finalizers', value: [finalizer] },
            ];
      },
      current,
    );
  }

  async removeVolumeFinalizer(name: string, finalizer: string, current?: V1PersistentVolume): Promise<void> {
    await this.editFinalizers(
      name,
      (pv) => {
        const indexes = (pv.metadata?.finalizers ?? []).flatMap((f, i) => (f === finalizer ? [i] : []));
        if (indexes.length === 0) return undefined;
        // Removes exactly these entries (every copy, last first so the earlier indexes hold): a `test` fails (422)
        // only when the list shifted under it (another finalizer removed before ours), not on the PV controller's
        // writes as a resourceVersion guard would.
        return indexes.reverse().flatMap((i): JsonPatchOp[] => {
          const path = `/metadata/finalizers/${i}`;
          return [
            { op: 'test', path, value: finalizer },
            { op: 'remove', path },
          ];
        });
      },
      current,
    );
  }

  /**
   * Read, build a guarded JSON patch, apply; on 409/422 (the guard failed) read again and retry, up to
   * CONFLICT_ATTEMPTS. `known`, when given, stands in for the first read (a stale one only costs the retry).
   */
  private async editFinalizers(
    name: string,
    patchFor: (pv: V1PersistentVolume) => JsonPatchOp[] | undefined,
    known?: V1PersistentVolume,
  ): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let pv: V1PersistentVolume;
      try {
        pv = attempt === 1 && known ? known : await this.core.readPersistentVolume({ name });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      const body = patchFor(pv);
      if (body === undefined) return;
      try {
        await this.core.patchPersistentVolume({ name, body }, JSON_PATCH);
        return;
      } catch (err) {
        if (isNotFound(err)) return;
        const retry = isConflict(err) || (err as { code?: number }).code === 422;
        if (!retry || attempt >= CONFLICT_ATTEMPTS) throw err;
      }
    }
  }

  async removeClaimAnnotation(claim: V1PersistentVolumeClaim, key: string): Promise<void> {
    const value = claim.metadata?.annotations?.[key];
    if (value === undefined) return;
    const path = `/metadata/annotations/${pointer(key)}`;
    const body: JsonPatchOp[] = [
      { op: 'test', path, value },
      { op: 'remove', path },
    ];
    try {
      await this.core.patchNamespacedPersistentVolumeClaim(
        { name: claim.metadata?.name ?? '', namespace: claim.metadata?.namespace ?? '', body },
        JSON_PATCH,
      );
    } catch (err) {
      // gone, or the annotation was changed or removed since the claim was read (the `test` failed: 422)
      if (isNotFound(err) || (err as { code?: number }).code === 422) return;
      throw err;
    }
  }

  /** PATCH (JSON merge patch) of `persistentvolumeclaims/status`; 404 is undefined, 409 (resourceVersion) is thrown. */
  async patchClaimStatus(namespace: string, name: string, patch: object): Promise<V1PersistentVolumeClaim | undefined> {
    try {
      return await this.core.patchNamespacedPersistentVolumeClaimStatus({ namespace, name, body: patch }, MERGE_PATCH);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** PATCH (JSON merge patch) of a PV; 404 is undefined. */
  async patchVolume(name: string, patch: object): Promise<V1PersistentVolume | undefined> {
    try {
      return await this.core.patchPersistentVolume({ name, body: patch }, MERGE_PATCH);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async createPod(pod: V1Pod): Promise<CreateResult<V1Pod>> {
    const namespace = pod.metadata?.namespace ?? '';
    try {
      return { created: true, object: await this.core.createNamespacedPod({ namespace, body: pod }) };
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const object = await this.core
        .readNamespacedPod({ namespace, name: pod.metadata?.name ?? '' })
        .catch((e: unknown) => {
          if (isNotFound(e)) return undefined;
          throw e;
        });
      return { created: false, object };
    }
  }

  async deletePod(namespace: string, name: string, uid?: string): Promise<void> {
    try {
      await this.core.deleteNamespacedPod({
        namespace,
        name,
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, ...(uid ? { preconditions: { uid } } : {}) },
      });
    } catch (err) {
      if (isNotFound(err) || (uid !== undefined && isConflict(err))) return;
      throw err;
    }
  }

  async readPodLog(
    namespace: string,
    name: string,
    container: string,
    tailLines: number,
    limitBytes = 16 * 1024,
  ): Promise<string> {
    try {
      return await this.core.readNamespacedPodLog({ namespace, name, container, tailLines, limitBytes });
    } catch (err) {
      return `(log unavailable: ${apiErrorMessage(err)})`;
    }
  }
}
