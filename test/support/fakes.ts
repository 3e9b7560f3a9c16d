import type {
  KubernetesObject,
  V1Node,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1StorageClass,
} from '@kubernetes/client-node';
import pino from 'pino';
import type {
  ClusterCache,
  ControllerMetrics,
  CreateResult,
  EventSink,
  EventType,
  KubeWriter,
} from '../../controllers/ports.js';
import { LABEL_HOSTNAME } from '../../src/domain/constants.js';
import { claimNamesOfPod } from '../../src/domain/pod-claims.js';

/** A silent logger for tests. */
export const silentLogger = pino({ level: 'silent' });

/** In-memory caches, keyed like the informers. */
export class FakeCache implements ClusterCache {
  claims = new Map<string, V1PersistentVolumeClaim>();
  classes = new Map<string, V1StorageClass>();
  pvs = new Map<string, V1PersistentVolume>();
  nodeMap = new Map<string, V1Node>();
  pods: V1Pod[] = [];
  helperMap = new Map<string, V1Pod>();

  claim(key: string) {
    return this.claims.get(key);
  }
  storageClass(name: string) {
    return this.classes.get(name);
  }
  storageClasses() {
    return [...this.classes.values()];
  }
  volume(name: string) {
    return this.pvs.get(name);
  }
  volumes() {
    return [...this.pvs.values()];
  }
  nodes() {
    return [...this.nodeMap.values()];
  }
  node(name: string) {
    return this.nodeMap.get(name);
  }
  nodeByHostname(hostname: string) {
    return this.nodes().find((n) => (n.metadata?.labels?.[LABEL_HOSTNAME] ?? n.metadata?.name) === hostname);
  }
  consumers(namespace: string, claimName: string) {
    return this.pods.filter((p) => p.metadata?.namespace === namespace && claimNamesOfPod(p).includes(claimName));
  }
  helper(name: string) {
    return this.helperMap.get(name);
  }
  helpers() {
    return [...this.helperMap.values()];
  }
}

/** RFC 7386 JSON merge patch of `target` by `patch` (a new object; `null` removes a key, arrays are replaced). */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

/** An API error as client-node 2.x throws it. */
export function apiError(code: number, reason: string, message: string): Error {
  return Object.assign(new Error(message), { code, body: { code, reason, message } });
}

/** One recorded API call: verb and object name. */
export type Call = [verb: string, name: string];

/**
 * Records every write; `onPodCreated` decides what the "kubelet" does with a new helper (called after the pod is in
 * the cache, so the test can emit status updates through the runner).
 */
export class FakeKube implements KubeWriter {
  calls: Call[] = [];
  logs = new Map<string, string>();
  onPodCreated: (pod: V1Pod) => void = () => undefined;
  onPodDeleted: (name: string) => void = () => undefined;
  private created = 0;
  constructor(private readonly cache: FakeCache) {}

  /** What the API server has when it differs from the cache (a stale informer); `null` means deleted. */
  liveVolumes = new Map<string, V1PersistentVolume | null>();
  liveClaims = new Map<string, V1PersistentVolumeClaim | null>();

  getNode(name: string) {
    this.calls.push(['getNode', name]);
    return Promise.resolve(this.cache.nodeMap.get(name));
  }
  findNode(hostname: string) {
    this.calls.push(['findNode', hostname]);
    return Promise.resolve(this.cache.nodeByHostname(hostname) ?? this.cache.nodeMap.get(hostname));
  }
  readVolume(name: string) {
    this.calls.push(['readVolume', name]);
    const live = this.liveVolumes.get(name);
    return Promise.resolve(live === null ? undefined : (live ?? this.cache.pvs.get(name)));
  }
  readClaim(namespace: string, name: string) {
    const key = `${namespace}/${name}`;
    this.calls.push(['readClaim', key]);
    const live = this.liveClaims.get(key);
    return Promise.resolve(live === null ? undefined : (live ?? this.cache.claims.get(key)));
  }
  createVolume(pv: V1PersistentVolume): Promise<CreateResult<V1PersistentVolume>> {
    const name = pv.metadata?.name ?? '';
    this.calls.push(['createVolume', name]);
    const existing = this.cache.pvs.get(name);
    if (existing) return Promise.resolve({ created: false, object: existing });
    this.cache.pvs.set(name, pv);
    return Promise.resolve({ created: true, object: pv });
  }
  deleteVolume(name: string): Promise<V1PersistentVolume | undefined> {
    this.calls.push(['deleteVolume', name]);
    return Promise.resolve(undefined);
  }
  addVolumeFinalizer(name: string, finalizer: string) {
    this.calls.push(['addVolumeFinalizer', `${name} ${finalizer}`]);
    return Promise.resolve();
  }
  removeVolumeFinalizer(name: string, finalizer: string) {
    this.calls.push(['removeVolumeFinalizer', `${name} ${finalizer}`]);
    return Promise.resolve();
  }
  removeClaimAnnotation(claim: V1PersistentVolumeClaim, key: string) {
    this.calls.push(['removeClaimAnnotation', `${claim.metadata?.name} ${key}`]);
    return Promise.resolve();
  }
  /** Whether writes of claim status and PV capacity show in the cache at once (false: a stale informer). */
  cacheFollowsWrites = true;
  private version = 100;
  /** The patches of claim status and PVs, in order. */
  patches: [kind: 'claim' | 'pv', name: string, patch: object][] = [];
  patchClaimStatus(namespace: string, name: string, patch: object): Promise<V1PersistentVolumeClaim | undefined> {
    const key = `${namespace}/${name}`;
    this.calls.push(['patchClaimStatus', key]);
    this.patches.push(['claim', key, patch]);
    const live = this.liveClaims.get(key);
    const current = live === null ? undefined : (live ?? this.cache.claims.get(key));
    if (!current) return Promise.resolve(undefined);
    const guard = (patch as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
    if (guard !== undefined && guard !== current.metadata?.resourceVersion) {
      return Promise.reject(apiError(409, 'Conflict', 'the object has been modified'));
    }
    // The status subresource: only the status changes; the server sets a new resourceVersion.
    const status = mergePatch(current.status, (patch as { status?: unknown }).status ?? {});
    const updated = {
      ...current,
      metadata: { ...current.metadata, resourceVersion: String(++this.version) },
      status,
    } as V1PersistentVolumeClaim;
    this.liveClaims.set(key, updated);
    if (this.cacheFollowsWrites) this.cache.claims.set(key, updated);
    return Promise.resolve(updated);
  }
  patchVolume(name: string, patch: object): Promise<V1PersistentVolume | undefined> {
    this.calls.push(['patchVolume', name]);
    this.patches.push(['pv', name, patch]);
    const live = this.liveVolumes.get(name);
    const current = live === null ? undefined : (live ?? this.cache.pvs.get(name));
    if (!current) return Promise.resolve(undefined);
    const updated = mergePatch(current, patch) as V1PersistentVolume;
    updated.metadata = { ...updated.metadata, resourceVersion: String(++this.version) };
    this.liveVolumes.set(name, updated);
    if (this.cacheFollowsWrites) this.cache.pvs.set(name, updated);
    return Promise.resolve(updated);
  }
  createPod(pod: V1Pod): Promise<CreateResult<V1Pod>> {
    const name = pod.metadata?.name ?? '';
    this.calls.push(['createPod', name]);
    if (this.cache.helperMap.has(name))
      return Promise.resolve({ created: false, object: this.cache.helperMap.get(name) });
    // A new uid for every pod, as the API server gives (a re-created helper is another object).
    const created = { ...pod, metadata: { ...pod.metadata, uid: `uid-${name}-${++this.created}` } };
    this.cache.helperMap.set(name, created);
    setImmediate(() => this.onPodCreated(created));
    return Promise.resolve({ created: true, object: created });
  }
  deletePod(_namespace: string, name: string) {
    this.calls.push(['deletePod', name]);
    if (this.cache.helperMap.delete(name)) setImmediate(() => this.onPodDeleted(name));
    return Promise.resolve();
  }
  /** Log of any helper without an entry in `logs`. */
  podLog = '';
  readPodLog(_namespace: string, name: string) {
    this.calls.push(['readPodLog', name]);
    return Promise.resolve(this.logs.get(name) ?? this.podLog);
  }
}

/** Records events as [type, reason, message] in order. */
export class FakeEvents implements EventSink {
  recorded: [string, EventType, string, string][] = [];
  /** While false, events are dropped (as the recorder does when its queue is full): not recorded, false returned. */
  accepting = true;
  event(object: KubernetesObject, type: EventType, reason: string, message: string): boolean {
    if (!this.accepting) return false;
    this.recorded.push([object.metadata?.name ?? '', type, reason, message]);
    return true;
  }
}

/** Records metric observations as strings. */
export class FakeMetrics implements ControllerMetrics {
  seen: string[] = [];
  provisionFinished(className: string, _source: string, ok: boolean) {
    this.seen.push(`provision ${className} ${ok ? 'ok' : 'failed'}`);
  }
  deleteFinished(className: string, ok: boolean) {
    this.seen.push(`delete ${className} ${ok ? 'ok' : 'failed'}`);
  }
  provisionLatency(className: string) {
    this.seen.push(`latency ${className}`);
  }
  phase() {
    /* phases are timing only */
  }
  helperOutcome(operation: string, outcome: string) {
    this.seen.push(`helper ${operation} ${outcome}`);
  }
}
