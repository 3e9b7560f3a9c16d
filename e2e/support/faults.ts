/**
 * Tools for fault tests: the role a replica reports, the leader-election Lease, pausing a provisioner process at an
 * observed step (SIGSTOP when a watch shows the step, SIGKILL after checking the state), and log searches.
 */
import { readFileSync } from 'node:fs';
import {
  CoordinationV1Api,
  Watch,
  type V1Lease,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1Pod,
} from '@kubernetes/client-node';
import { insecureGet, loadKubeConfig, waitFor, type WaitOptions } from './cluster.js';
import type { Provisioner } from './provisioner.js';

const kc = loadKubeConfig();
export const coordination = kc.makeApiClient(CoordinationV1Api);

/** Name of the leader-election Lease (the addon's). */
export const LEASE_NAME = 'microk8s.io-hostpath';

/** Short leader-election timings for tests: lease 6 s, renew deadline 4 s, retry 1 s. */
export const FAST_LEASE_ARGS = ['--lease-duration', '6', '--renew-deadline', '4', '--retry-period', '1'] as const;

/** `leader`, `standby`, or `down` (no answer / not ready) from a replica's /readyz body. */
export async function roleOf(p: Provisioner): Promise<'leader' | 'standby' | 'down'> {
  try {
    const res = await fetch(`http://127.0.0.1:${p.port}/readyz`, { signal: AbortSignal.timeout(2000) });
    const body = await res.text();
    if (res.status !== 200) return 'down';
    return body.includes('leader') ? 'leader' : 'standby';
  } catch {
    return 'down';
  }
}

/** Value of `hostpath_provisioner_leader` on a replica's /metrics. */
export async function leaderGauge(p: Provisioner): Promise<number | undefined> {
  const m = /^hostpath_provisioner_leader(?:\{[^}]*\})? (\S+)$/m.exec(await p.metrics());
  return m ? Number(m[1]) : undefined;
}

/** The Lease as the API server stores it, or undefined. */
export async function readLease(namespace: string): Promise<V1Lease | undefined> {
  try {
    return await coordination.readNamespacedLease({ name: LEASE_NAME, namespace });
  } catch {
    return undefined;
  }
}

/** The raw JSON of the Lease (client-node turns MicroTime fields into Dates; this keeps the wire format). */
export async function readLeaseRaw(namespace: string): Promise<{ spec?: Record<string, unknown> }> {
  const server = kc.getCurrentCluster()?.server ?? '';
  const token = kc.getCurrentUser()?.token ?? '';
  const res = await insecureGet(`${server}/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${LEASE_NAME}`, {
    Authorization: `Bearer ${token}`,
  });
  return JSON.parse(res.body) as { spec?: Record<string, unknown> };
}

/** The text of a provisioner's log file. */
export function logOf(p: Provisioner): string {
  return readFileSync(p.logPath, 'utf8');
}

/** JSON log records of a provisioner whose `msg` matches. */
export function logLines(p: Provisioner, msg: RegExp): Record<string, unknown>[] {
  return logOf(p)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => typeof r.msg === 'string' && msg.test(r.msg));
}

/** Waits until exactly one of `replicas` reports `leader` and every other `standby`; returns the leader. */
export async function waitForOneLeader(replicas: readonly Provisioner[], opts: WaitOptions = {}): Promise<Provisioner> {
  return waitFor(
    'exactly one leader',
    async () => {
      const roles = await Promise.all(replicas.map(roleOf));
      const leaders = replicas.filter((_, i) => roles[i] === 'leader');
      const standbys = roles.filter((r) => r === 'standby').length;
      return leaders.length === 1 && standbys === replicas.length - 1 ? leaders[0] : undefined;
    },
    { timeoutMs: 30_000, ...opts },
  );
}

/** Stops a process (SIGSTOP): it keeps its connections but does nothing until {@link resume}. */
export function pause(p: Provisioner): void {
  p.child.kill('SIGSTOP');
}

/** Continues a process stopped by {@link pause}. */
export function resume(p: Provisioner): void {
  p.child.kill('SIGCONT');
}

/** A watch on objects at `path`, calling `onEvent` for every event until stopped. */
export interface ObjectWatch {
  stop(): void;
}

/** Watches pods (label selector) or PVs and calls `onEvent(type, object)` as events arrive. */
export async function watchObjects<T>(
  path: string,
  query: Record<string, string>,
  onEvent: (type: string, obj: T) => void,
): Promise<ObjectWatch> {
  const watch = new Watch(kc);
  const req = await watch.watch(path, query, onEvent, () => undefined);
  return { stop: () => req.abort() };
}

/**
 * Resolves with the first object (pod, PV or claim) a watch on `path` reports for which `predicate` holds, after calling `act()`
 * synchronously in the same callback (e.g. SIGSTOP of the provisioner), so the step is caught as it is observed.
 */
export async function actWhen<T extends V1Pod | V1PersistentVolume | V1PersistentVolumeClaim>(
  path: string,
  query: Record<string, string>,
  predicate: (type: string, obj: T) => boolean,
  act: () => void,
): Promise<{ ready: Promise<T>; stop: () => void }> {
  let resolveHit: (obj: T) => void = () => undefined;
  const ready = new Promise<T>((r) => (resolveHit = r));
  let fired = false;
  const w = await watchObjects<T>(path, query, (type, obj) => {
    if (fired || !predicate(type, obj)) return;
    fired = true;
    act();
    resolveHit(obj);
  });
  return { ready, stop: () => w.stop() };
}
