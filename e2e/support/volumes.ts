/**
 * Claim, volume and event helpers for the provisioner's e2e tests, plus a recorder of every helper pod the
 * provisioner creates (they are deleted right after they finish, so tests watch for them).
 */
import { statSync } from 'node:fs';
import {
  CoreV1Api,
  StorageV1Api,
  Watch,
  type CoreV1Event,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1Pod,
  type V1StorageClass,
  type V1Toleration,
} from '@kubernetes/client-node';
import { apiStatus, loadKubeConfig, nodePath, shellPod, waitFor, type WaitOptions } from './cluster.js';

export const DEFAULT_PV_DIR = '/var/snap/microk8s/common/default-storage';

const kc = loadKubeConfig();
export const core = kc.makeApiClient(CoreV1Api);
export const storage = kc.makeApiClient(StorageV1Api);

/** Options of {@link claim}. */
export interface ClaimOptions {
  className?: string;
  size?: string;
  accessModes?: string[];
  volumeMode?: 'Filesystem' | 'Block';
}

/** A claim object (not created). */
export function claim(name: string, opts: ClaimOptions = {}): V1PersistentVolumeClaim {
  return {
    metadata: { name },
    spec: {
      storageClassName: opts.className ?? 'microk8s-hostpath',
      accessModes: opts.accessModes ?? ['ReadWriteOnce'],
      resources: { requests: { storage: opts.size ?? '1Gi' } },
      ...(opts.volumeMode ? { volumeMode: opts.volumeMode } : {}),
    },
  };
}

export function createClaim(namespace: string, body: V1PersistentVolumeClaim): Promise<V1PersistentVolumeClaim> {
  return core.createNamespacedPersistentVolumeClaim({ namespace, body });
}

/** A pod mounting claim `claimName` at /data, running `script`, placed on `node` with `tolerations`. */
export function consumerPod(
  name: string,
  claimName: string,
  script: string,
  opts: { node?: string; tolerations?: V1Toleration[]; runAsUser?: number } = {},
): V1Pod {
  const pod = shellPod(name, script, {
    ...(opts.node ? { node: opts.node } : {}),
    ...(opts.tolerations ? { tolerations: opts.tolerations } : {}),
    volumes: [{ name: 'data', persistentVolumeClaim: { claimName } }],
    volumeMounts: [{ name: 'data', mountPath: '/data' }],
  });
  if (opts.runAsUser !== undefined) {
    pod.spec!.containers[0]!.securityContext = { runAsUser: opts.runAsUser, runAsGroup: opts.runAsUser };
  }
  return pod;
}

export async function readClaim(namespace: string, name: string): Promise<V1PersistentVolumeClaim> {
  return core.readNamespacedPersistentVolumeClaim({ namespace, name });
}

/** Waits until the claim is Bound and returns its PV. */
export async function waitForBound(
  namespace: string,
  name: string,
  opts: WaitOptions = {},
): Promise<V1PersistentVolume> {
  const bound = await waitFor(
    `claim ${namespace}/${name} Bound`,
    async () => {
      const c = await readClaim(namespace, name);
      return c.status?.phase === 'Bound' && c.spec?.volumeName ? c : false;
    },
    { timeoutMs: 60_000, ...opts },
  );
  return core.readPersistentVolume({ name: bound.spec!.volumeName! });
}

export async function readVolume(name: string): Promise<V1PersistentVolume | undefined> {
  try {
    return await core.readPersistentVolume({ name });
  } catch (err) {
    if (apiStatus(err) === 404) return undefined;
    throw err;
  }
}

export async function waitForVolumeGone(name: string, opts: WaitOptions = {}): Promise<void> {
  await waitFor(`PV ${name} to be gone`, async () => (await readVolume(name)) === undefined, {
    timeoutMs: 60_000,
    ...opts,
  });
}

/** Events on one object (by kind and name; namespace '' for PVs, whose events go to `default`). */
export async function eventsFor(kind: string, name: string, namespace: string): Promise<CoreV1Event[]> {
  const list = await core.listNamespacedEvent({
    namespace: namespace || 'default',
    fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
  });
  return list.items;
}

/** Waits for an event with `reason` (and a message matching `message`) on the object; returns it. */
export async function waitForEvent(
  kind: string,
  name: string,
  namespace: string,
  reason: string,
  message: RegExp = /.*/,
  opts: WaitOptions = {},
): Promise<CoreV1Event> {
  return waitFor(
    `${reason} event on ${kind} ${name}`,
    async () =>
      (await eventsFor(kind, name, namespace)).find((e) => e.reason === reason && message.test(e.message ?? '')),
    { timeoutMs: 60_000, ...opts },
  );
}

/** Path on this machine of a volume directory of `node`. */
export function volumeDirOnNode(node: string, pv: V1PersistentVolume): string {
  return nodePath(node, pv.spec?.hostPath?.path ?? pv.spec?.local?.path ?? '/nonexistent');
}

/** Permission bits of a path (e.g. 0o777), or undefined when it does not exist. */
export function modeOf(path: string): number | undefined {
  try {
    return statSync(path).mode & 0o7777;
  } catch {
    return undefined;
  }
}

/** Hostname of a PV's node affinity. */
export function affinityHostname(pv: V1PersistentVolume): string | undefined {
  return pv.spec?.nodeAffinity?.required?.nodeSelectorTerms?.[0]?.matchExpressions?.find(
    (e) => e.key === 'kubernetes.io/hostname',
  )?.values?.[0];
}

/** Creates a StorageClass (replacing one of the same name). */
export async function applyStorageClass(sc: V1StorageClass): Promise<void> {
  await storage.deleteStorageClass({ name: sc.metadata!.name! }).catch(() => undefined);
  await waitFor(`StorageClass ${sc.metadata!.name} gone`, async () => {
    try {
      await storage.readStorageClass({ name: sc.metadata!.name! });
      return false;
    } catch (err) {
      return apiStatus(err) === 404;
    }
  });
  await storage.createStorageClass({ body: sc });
}

/** Every helper pod seen in a namespace, by name, as first seen (spec) and last seen (status). */
export interface HelperRecorder {
  readonly seen: Map<string, V1Pod>;
  stop(): void;
}

/** Watches the provisioner's namespace for pods and remembers every one (helpers are short-lived). */
export async function recordHelpers(namespace: string): Promise<HelperRecorder> {
  const seen = new Map<string, V1Pod>();
  const watch = new Watch(kc);
  const req = await watch.watch(
    `/api/v1/namespaces/${namespace}/pods`,
    { labelSelector: 'app.kubernetes.io/managed-by=hostpath-provisioner' },
    (_type: string, pod: V1Pod) => {
      const name = pod.metadata?.name;
      if (name) seen.set(name, pod);
    },
    () => undefined,
  );
  return { seen, stop: () => req.abort() };
}

/** Current create and delete helper pods in the provisioner namespace (not the orphan report's list helpers). */
export async function liveHelpers(namespace: string): Promise<V1Pod[]> {
  return (
    await core.listNamespacedPod({
      namespace,
      labelSelector:
        'app.kubernetes.io/managed-by=hostpath-provisioner,hostpath-provisioner.io/operation in (create,delete)',
    })
  ).items;
}

/** Strips `tolerationSeconds` and sorts tolerations for set comparison. */
export function tolerationSet(tolerations: readonly V1Toleration[] | undefined): string[] {
  return [
    ...new Set(
      (tolerations ?? []).map((t) =>
        JSON.stringify([t.key ?? '', t.operator ?? 'Equal', t.value ?? '', t.effect ?? '']),
      ),
    ),
  ].sort();
}

/**
 * Deletes a test namespace and waits (up to 60 s, never throwing) until the provisioner has cleaned up every
 * Delete-policy volume its claims had — so a test file leaves no Released volumes for the next file's provisioner.
 * Call it while the provisioner still runs.
 */
export async function drainNamespace(ns: { name: string; cleanup(): Promise<void> }): Promise<void> {
  await ns.cleanup();
  await waitFor(
    `volumes of ${ns.name} cleaned up`,
    async () =>
      !(await core.listPersistentVolume()).items.some(
        (pv) => pv.spec?.claimRef?.namespace === ns.name && pv.spec.persistentVolumeReclaimPolicy === 'Delete',
      ),
    { timeoutMs: 60_000, intervalMs: 500 },
  ).catch(() => undefined);
}
