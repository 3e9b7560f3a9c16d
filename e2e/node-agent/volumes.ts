/**
 * Making a pod's volumes exist on the host (the kubelet's volume manager, much reduced): node folders for hostPath
 * and claims, fresh folders for emptyDir, files for configMap, secret, downwardAPI and projected volumes
 * (including a bound service-account token from the TokenRequest API).
 */
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import type {
  CoreV1Api,
  V1DownwardAPIVolumeFile,
  V1KeyToPath,
  V1Pod,
  V1ServiceAccountTokenProjection,
} from '@kubernetes/client-node';
import { apiStatus, describeError } from './kube.js';
import { nodeHostPath, type PlannedVolume, type ReadyVolume } from './volume-plan.js';

/** A volume cannot be set up yet; the kubelet reports it as a FailedMount event and keeps the pod ContainerCreating. */
export class FailedMountError extends Error {
  override readonly name = 'FailedMountError';
}

/** What volume setup needs besides the pod. */
export interface VolumeContext {
  core: CoreV1Api;
  root: string;
  node: string;
}

async function ensureHostPath(path: string, type: string): Promise<ReadyVolume> {
  const info = await stat(path).catch(() => undefined);
  switch (type) {
    case '':
    case 'DirectoryOrCreate':
      if (info && !info.isDirectory()) {
        if (type === '') return { hostPath: path, isFile: true };
        throw new FailedMountError(`hostPath type check failed: ${path} is not a directory`);
      }
      await mkdir(path, { recursive: true, mode: 0o755 });
      return { hostPath: path, isFile: false };
    case 'Directory':
      if (!info?.isDirectory()) throw new FailedMountError(`hostPath type check failed: ${path} is not a directory`);
      return { hostPath: path, isFile: false };
    case 'FileOrCreate':
      if (!info) {
        await mkdir(posix.dirname(path), { recursive: true });
        await writeFile(path, '', { mode: 0o644 });
      } else if (!info.isFile()) throw new FailedMountError(`hostPath type check failed: ${path} is not a file`);
      return { hostPath: path, isFile: true };
    case 'File':
      if (!info?.isFile()) throw new FailedMountError(`hostPath type check failed: ${path} is not a file`);
      return { hostPath: path, isFile: true };
    default:
      if (!info) throw new FailedMountError(`hostPath type check failed: ${path} does not exist`);
      return { hostPath: path, isFile: !info.isDirectory() };
  }
}

/** The host path of a claim's PersistentVolume (hostPath or local source), on this node. */
async function claimHostPath(ctx: VolumeContext, namespace: string, claimName: string): Promise<ReadyVolume> {
  const claim = await ctx.core.readNamespacedPersistentVolumeClaim({ name: claimName, namespace }).catch((err) => {
    if (apiStatus(err) === 404) throw new FailedMountError(`persistentvolumeclaim "${claimName}" not found`);
    throw err;
  });
  const pvName = claim.spec?.volumeName;
  if (!pvName || claim.status?.phase !== 'Bound') {
    throw new FailedMountError(`persistentvolumeclaim "${claimName}" is not bound`);
  }
  const pv = await ctx.core.readPersistentVolume({ name: pvName });
  const path = pv.spec?.hostPath?.path ?? pv.spec?.local?.path;
  if (!path) throw new FailedMountError(`persistentvolume ${pvName} has no hostPath or local source`);
  const full = nodeHostPath(ctx.root, ctx.node, path);
  if (pv.spec?.local) {
    const info = await stat(full).catch(() => undefined);
    if (!info) throw new FailedMountError(`path "${path}" does not exist on node ${ctx.node}`);
    return { hostPath: full, isFile: !info.isDirectory() };
  }
  return ensureHostPath(full, pv.spec?.hostPath?.type ?? '');
}

type Files = Map<string, { content: Buffer; mode: number }>;

function addItems(
  files: Files,
  data: Record<string, Buffer>,
  items: readonly V1KeyToPath[] | undefined,
  mode: number,
  what: string,
): void {
  if (!items || items.length === 0) {
    for (const [k, v] of Object.entries(data)) files.set(k, { content: v, mode });
    return;
  }
  for (const item of items) {
    const content = data[item.key];
    if (content === undefined) throw new FailedMountError(`configuration key "${item.key}" not found in ${what}`);
    files.set(item.path, { content, mode: item.mode ?? mode });
  }
}

function labelsFile(map: Record<string, string> | undefined): Buffer {
  const lines = Object.entries(map ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return Buffer.from(lines.join('\n'));
}

function downwardItems(files: Files, pod: V1Pod, items: readonly V1DownwardAPIVolumeFile[], mode: number): void {
  for (const item of items) {
    const path = item.fieldRef?.fieldPath ?? '';
    let value: Buffer;
    if (path === 'metadata.labels') value = labelsFile(pod.metadata?.labels);
    else if (path === 'metadata.annotations') value = labelsFile(pod.metadata?.annotations);
    else if (path === 'metadata.name') value = Buffer.from(pod.metadata?.name ?? '');
    else if (path === 'metadata.namespace') value = Buffer.from(pod.metadata?.namespace ?? '');
    else if (path === 'metadata.uid') value = Buffer.from(pod.metadata?.uid ?? '');
    else if (path === 'spec.nodeName') value = Buffer.from(pod.spec?.nodeName ?? '');
    else value = Buffer.from(item.resourceFieldRef ? '0' : '');
    files.set(item.path, { content: value, mode: item.mode ?? mode });
  }
}

async function configMapData(ctx: VolumeContext, ns: string, name: string, optional: boolean) {
  try {
    const cm = await ctx.core.readNamespacedConfigMap({ name, namespace: ns });
    const data: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(cm.data ?? {})) data[k] = Buffer.from(v);
    for (const [k, v] of Object.entries(cm.binaryData ?? {})) data[k] = Buffer.from(v, 'base64');
    return data;
  } catch (err) {
    if (apiStatus(err) === 404) {
      if (optional) return {};
      throw new FailedMountError(`configmap "${name}" not found`);
    }
    throw err;
  }
}

async function secretData(ctx: VolumeContext, ns: string, name: string, optional: boolean) {
  try {
    const secret = await ctx.core.readNamespacedSecret({ name, namespace: ns });
    const data: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(v, 'base64');
    return data;
  } catch (err) {
    if (apiStatus(err) === 404) {
      if (optional) return {};
      throw new FailedMountError(`secret "${name}" not found`);
    }
    throw err;
  }
}

async function serviceAccountToken(ctx: VolumeContext, pod: V1Pod, source: V1ServiceAccountTokenProjection) {
  const namespace = pod.metadata?.namespace ?? '';
  const name = pod.spec?.serviceAccountName ?? 'default';
  try {
    const res = await ctx.core.createNamespacedServiceAccountToken({
      name,
      namespace,
      body: {
        spec: {
          audiences: source.audience ? [source.audience] : [],
          expirationSeconds: source.expirationSeconds ?? 3607,
          boundObjectRef: {
            apiVersion: 'v1',
            kind: 'Pod',
            name: pod.metadata?.name ?? '',
            uid: pod.metadata?.uid ?? '',
          },
        },
      },
    });
    return Buffer.from(res.status?.token ?? '');
  } catch (err) {
    throw new FailedMountError(`failed to fetch token for serviceaccount ${namespace}/${name}: ${describeError(err)}`);
  }
}

async function filesOf(ctx: VolumeContext, pod: V1Pod, v: PlannedVolume & { kind: 'files' }): Promise<Files> {
  const ns = pod.metadata?.namespace ?? '';
  const files: Files = new Map();
  const vol = v.volume;
  if (vol.configMap) {
    const name = vol.configMap.name ?? '';
    const data = await configMapData(ctx, ns, name, vol.configMap.optional ?? false);
    addItems(files, data, vol.configMap.items, vol.configMap.defaultMode ?? 0o644, `configmap ${name}`);
  } else if (vol.secret) {
    const name = vol.secret.secretName ?? '';
    const data = await secretData(ctx, ns, name, vol.secret.optional ?? false);
    addItems(files, data, vol.secret.items, vol.secret.defaultMode ?? 0o644, `secret ${name}`);
  } else if (vol.downwardAPI) {
    downwardItems(files, pod, vol.downwardAPI.items ?? [], vol.downwardAPI.defaultMode ?? 0o644);
  } else if (vol.projected) {
    const mode = vol.projected.defaultMode ?? 0o644;
    for (const s of vol.projected.sources ?? []) {
      if (s.configMap) {
        const name = s.configMap.name ?? '';
        addItems(
          files,
          await configMapData(ctx, ns, name, s.configMap.optional ?? false),
          s.configMap.items,
          mode,
          `configmap ${name}`,
        );
      } else if (s.secret) {
        const name = s.secret.name ?? '';
        addItems(
          files,
          await secretData(ctx, ns, name, s.secret.optional ?? false),
          s.secret.items,
          mode,
          `secret ${name}`,
        );
      } else if (s.downwardAPI) {
        downwardItems(files, pod, s.downwardAPI.items ?? [], mode);
      } else if (s.serviceAccountToken) {
        files.set(s.serviceAccountToken.path, {
          content: await serviceAccountToken(ctx, pod, s.serviceAccountToken),
          mode,
        });
      }
    }
  }
  return files;
}

async function writeFiles(dir: string, files: Files): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const [rel, f] of files) {
    if (rel.startsWith('/') || rel.split('/').includes('..')) throw new FailedMountError(`invalid item path ${rel}`);
    const path = posix.join(dir, rel);
    await mkdir(posix.dirname(path), { recursive: true, mode: 0o755 });
    await writeFile(path, f.content, { mode: f.mode });
  }
}

/**
 * Set up every planned volume of a pod, in order.
 *
 * @returns the host path of each volume by name.
 * @throws FailedMountError when a volume cannot be set up yet (missing claim, ConfigMap, Secret, type check);
 *   other errors from the API as they come.
 */
export async function prepareVolumes(
  ctx: VolumeContext,
  pod: V1Pod,
  plan: readonly PlannedVolume[],
): Promise<Map<string, ReadyVolume>> {
  const ready = new Map<string, ReadyVolume>();
  for (const v of plan) {
    switch (v.kind) {
      case 'unsupported':
        throw new FailedMountError(`volume ${v.name}: ${v.reason}`);
      case 'hostPath':
        ready.set(v.name, await ensureHostPath(v.hostDir, v.type));
        break;
      case 'claim':
        ready.set(v.name, await claimHostPath(ctx, pod.metadata?.namespace ?? '', v.claimName));
        break;
      case 'emptyDir':
        await mkdir(v.hostDir, { recursive: true, mode: 0o777 });
        ready.set(v.name, { hostPath: v.hostDir, isFile: false });
        break;
      case 'files':
        await writeFiles(v.hostDir, await filesOf(ctx, pod, v));
        ready.set(v.name, { hostPath: v.hostDir, isFile: false });
        break;
    }
  }
  return ready;
}
