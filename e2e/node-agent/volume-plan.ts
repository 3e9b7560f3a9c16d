/**
 * Where each pod volume lives on the host, and where each container sees it. Pure.
 *
 * hostPath (and PersistentVolumes with a hostPath or local source) map to the node's own folder
 * `<root>/<node>/<path>`: every node is a folder on this one machine. Other volumes are materialised under the
 * pod's folder `<pods>/<uid>/volumes/<name>`.
 */
import { posix } from 'node:path';
import type { V1Container, V1Volume } from '@kubernetes/client-node';
import type { VolumeMount } from './container-root.js';

/** How one pod volume gets its content. */
export type PlannedVolume =
  | { name: string; kind: 'hostPath'; hostDir: string; type: string }
  | { name: string; kind: 'claim'; claimName: string; readOnly: boolean }
  | { name: string; kind: 'emptyDir'; hostDir: string; medium: string }
  | { name: string; kind: 'files'; hostDir: string; volume: V1Volume }
  | { name: string; kind: 'unsupported'; reason: string };

/** A volume ready to mount: its host path and whether it is a single file. */
export interface ReadyVolume {
  hostPath: string;
  isFile: boolean;
}

/**
 * Map a path on a node to this machine: `<root>/<node>/<path>`.
 *
 * @param path an absolute path as written in a hostPath volume or PersistentVolume.
 * @throws Error for a relative path or one that would leave the node's folder through `..`.
 */
export function nodeHostPath(root: string, node: string, path: string): string {
  if (!path.startsWith('/')) throw new Error(`hostPath ${JSON.stringify(path)} must be absolute`);
  const base = posix.join(root, node);
  const full = posix.join(base, posix.normalize(path));
  if (full !== base && !full.startsWith(`${base}/`)) throw new Error(`hostPath ${path} leaves the node's folder`);
  return full.length > 1 && full.endsWith('/') ? full.slice(0, -1) : full;
}

/**
 * Plan every volume of a pod.
 *
 * @param dirs `root`: the folder of node folders; `node`: the pod's node; `podDir`: the pod's own folder;
 *   `podName`: for generic ephemeral volumes, whose claim is `<pod>-<volume>` (as the kubelet resolves them).
 */
export function planPodVolumes(
  volumes: readonly V1Volume[] | undefined,
  dirs: { root: string; node: string; podDir: string; podName?: string },
): PlannedVolume[] {
  return (volumes ?? []).map((v): PlannedVolume => {
    const own = posix.join(dirs.podDir, 'volumes', v.name);
    if (v.hostPath) {
      try {
        return {
          name: v.name,
          kind: 'hostPath',
          hostDir: nodeHostPath(dirs.root, dirs.node, v.hostPath.path),
          type: v.hostPath.type ?? '',
        };
      } catch (err) {
        return { name: v.name, kind: 'unsupported', reason: (err as Error).message };
      }
    }
    if (v.persistentVolumeClaim) {
      return {
        name: v.name,
        kind: 'claim',
        claimName: v.persistentVolumeClaim.claimName,
        readOnly: v.persistentVolumeClaim.readOnly ?? false,
      };
    }
    if (v.ephemeral) {
      return {
        name: v.name,
        kind: 'claim',
        claimName: `${dirs.podName ?? ''}-${v.name}`,
        readOnly: false,
      };
    }
    if (v.emptyDir) return { name: v.name, kind: 'emptyDir', hostDir: own, medium: v.emptyDir.medium ?? '' };
    if (v.configMap || v.secret || v.projected || v.downwardAPI)
      return { name: v.name, kind: 'files', hostDir: own, volume: v };
    const kind = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
    return { name: v.name, kind: 'unsupported', reason: `volume type ${kind} is not supported by the node agent` };
  });
}

/**
 * The bind mounts of one container: each volumeMount's volume (with its subPath) at its mountPath.
 *
 * @param ready host paths of the pod's volumes by name.
 * @throws Error when a volumeMount names an unknown volume or its subPath is absolute or contains `..`.
 */
export function containerVolumeMounts(container: V1Container, ready: ReadonlyMap<string, ReadyVolume>): VolumeMount[] {
  return (container.volumeMounts ?? []).map((m) => {
    const volume = ready.get(m.name);
    if (!volume) throw new Error(`volumeMount ${m.name} refers to no volume of the pod`);
    const sub = m.subPath ?? '';
    if (sub.startsWith('/') || sub.split('/').includes('..'))
      throw new Error(`subPath ${sub} must be relative without '..'`);
    return {
      containerPath: m.mountPath,
      source: sub ? posix.join(volume.hostPath, sub) : volume.hostPath,
      readOnly: m.readOnly ?? false,
      ...(sub ? {} : { sourceIsFile: volume.isFile }),
    };
  });
}
