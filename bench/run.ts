/**
 * One benchmark run against the local test cluster (e2e/cluster): a provisioner under test is started as a process
 * with a ServiceAccount of its own, K claims of its StorageClass (WaitForFirstConsumer, Delete) and one consumer pod
 * per claim are created at once, and the run measures from watch events each claim's time from creation to Bound,
 * then the time until every PV of the class is gone and every directory removed, the process's CPU seconds and
 * peak RSS, and its API requests by verb and resource from the API server's audit log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CoreV1Api,
  StorageV1Api,
  Watch,
  type KubernetesObject,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { CLUSTER_DIR, loadKubeConfig, nodePath, REPO_ROOT } from '../e2e/support/cluster.js';
import { freePort, provisionerIdentity } from '../e2e/support/provisioner.js';
import { consumerPod } from '../e2e/support/volumes.js';
import { countRequests, quantile, type RequestCount } from './stats.js';

/**
 * A provisioner under test. In `command`, `env` values and `objects`, these placeholders are replaced:
 * `{{namespace}}` (its own namespace, where its helpers run), `{{serviceAccount}}` (a ServiceAccount there with the
 * RBAC of manifests/base/rbac.yaml), `{{kubeconfig}}` (a kubeconfig with that account's token), `{{provisioner}}`,
 * `{{class}}` (its StorageClass), `{{baseDir}}`, `{{port}}` (a free loopback port), `{{repo}}` (the repository).
 */
export interface ProvisionerSpec {
  /** Short name, used in names of objects and in the results. */
  readonly name: string;
  /** The StorageClass's `provisioner`. */
  readonly provisioner: string;
  /** The StorageClass's parameters. */
  readonly parameters?: Readonly<Record<string, string>>;
  /** Absolute base directory on every node. */
  readonly baseDir: string;
  /** argv; `node` as the first word means the Node.js running the benchmark. */
  readonly command: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** YAML of objects to create before starting it (extra RBAC, a ConfigMap …). */
  readonly objects?: string;
  /** The process is ready when its output matches this (a regular expression). */
  readonly ready: string;
}

/** Options of {@link runOnce}. */
export interface RunOptions {
  readonly spec: ProvisionerSpec;
  /** Claims (and consumer pods). */
  readonly claims: number;
  /** Nodes the consumer pods are spread over, round robin (a nodeSelector; the scheduler binds them). */
  readonly nodes: readonly string[];
  /** Memory limit of the provisioner's process in bytes (a cgroup v1 or v2 memory cgroup); none when undefined. */
  readonly memoryLimitBytes?: number;
  /** Seconds to wait for all Bound, then for all deleted. */
  readonly timeoutSeconds?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/** What one run measured. Times are seconds, memory bytes. */
export interface RunResult {
  readonly provisioner: string;
  readonly claims: number;
  readonly nodes: number;
  /** First claim created → last claim Bound. */
  readonly allBoundSeconds: number;
  /** Claim creation → Bound, per claim. */
  readonly latency: { readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number };
  /** Claims and pods deleted → every PV of the class gone and every directory removed. */
  readonly deleteAllSeconds: number;
  /** User and system CPU of the process from the first claim until every volume was deleted. */
  readonly cpuSeconds: number;
  /** Peak resident set (VmHWM) of the process, or of its memory cgroup when limited. */
  readonly peakRssBytes: number;
  /** OOM kills in its memory cgroup (0 without a limit). */
  readonly oomKills: number;
  /** Requests of its ServiceAccount from the first claim until it stopped. */
  readonly requests: RequestCount;
  readonly requestsPerClaim: number;
}

const SELECTED_NODE = 'volume.kubernetes.io/selected-node';
const AUDIT_LOG = join(CLUSTER_DIR, 'logs', 'audit.log');

/**
 * Runs one configuration once and cleans up after it (namespaces, class, process).
 *
 * @throws Error when the provisioner does not become ready in 60 s, exits early, or a phase times out; the
 *   provisioner's log is then at `.cluster/logs/bench-<name>-<id>.log`.
 */
export async function runOnce(options: RunOptions): Promise<RunResult> {
  const { spec, claims: count, nodes } = options;
  const log = options.log ?? (() => undefined);
  const timeoutMs = (options.timeoutSeconds ?? 900) * 1000;
  const kc = loadKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const storage = kc.makeApiClient(StorageV1Api);
  const id = randomBytes(3).toString('hex');
  const className = `bench-${spec.name}-${id}`;
  const identity = await provisionerIdentity();
  const claimsNs = `bench-claims-${id}`;
  await core.createNamespace({ body: { metadata: { name: claimsNs, labels: { 'hpp.test/e2e': 'true' } } } });
  const port = await freePort();
  const vars: Record<string, string> = {
    namespace: identity.namespace,
    serviceAccount: 'hostpath-provisioner',
    kubeconfig: identity.kubeconfig,
    provisioner: spec.provisioner,
    class: className,
    baseDir: spec.baseDir,
    port: String(port),
    repo: REPO_ROOT,
  };
  const fill = (text: string): string => text.replace(/\{\{(\w+)\}\}/g, (all, key: string) => vars[key] ?? all);
  await applyObjects(fill(spec.objects ?? ''), identity.namespace);
  await storage.createStorageClass({
    body: {
      metadata: { name: className, labels: { 'hpp.test/e2e': 'true' } },
      provisioner: spec.provisioner,
      parameters: { ...spec.parameters },
      reclaimPolicy: 'Delete',
      volumeBindingMode: 'WaitForFirstConsumer',
    },
  });
  const logPath = join(CLUSTER_DIR, 'logs', `bench-${spec.name}-${id}.log`);
  const cgroup = options.memoryLimitBytes === undefined ? undefined : memoryCgroup(`hpp-bench-${id}`);
  const child = await startProcess(spec, fill, logPath, cgroup, options.memoryLimitBytes);
  const watches: AbortController[] = [];
  try {
    const bound = new Map<string, number>();
    const created = new Map<string, number>();
    let allBound: () => void = () => undefined;
    const allBoundPromise = new Promise<void>((resolve) => (allBound = resolve));
    watches.push(
      await watch<V1PersistentVolumeClaim>(
        kc,
        `/api/v1/namespaces/${claimsNs}/persistentvolumeclaims`,
        () => core.listNamespacedPersistentVolumeClaim({ namespace: claimsNs }),
        (claim) => {
          const name = claim.metadata?.name ?? '';
          if (claim.status?.phase === 'Bound' && !bound.has(name)) {
            bound.set(name, performance.now());
            if (bound.size === count) allBound();
          }
        },
        log,
      ),
    );
    const volumes = new Set<string>();
    let noVolumes: () => void = () => undefined;
    const deletingStarted = { value: false };
    const noVolumesPromise = new Promise<void>((resolve) => (noVolumes = resolve));
    watches.push(
      await watch<V1PersistentVolume>(
        kc,
        '/api/v1/persistentvolumes',
        () => core.listPersistentVolume(),
        (pv, type) => {
          if (pv.spec?.storageClassName !== className) return;
          if (type === 'DELETED') volumes.delete(pv.metadata?.name ?? '');
          else volumes.add(pv.metadata?.name ?? '');
          if (deletingStarted.value && volumes.size === 0) noVolumes();
        },
        log,
      ),
    );
    const auditOffset = existsSync(AUDIT_LOG) ? readFileSync(AUDIT_LOG).length : 0;
    const cpu0 = cpuSeconds(child.pid!);
    log(`${spec.name}: creating ${count} claims and pods on ${nodes.length} nodes`);
    const start = performance.now();
    await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const name = `c${i}`;
        created.set(name, performance.now());
        await core.createNamespacedPersistentVolumeClaim({
          namespace: claimsNs,
          body: {
            metadata: { name },
            spec: {
              storageClassName: className,
              accessModes: ['ReadWriteOnce'],
              resources: { requests: { storage: '1Gi' } },
            },
          },
        });
        await core.createNamespacedPod({
          namespace: claimsNs,
          body: consumerPod(`${name}-app`, name, 'true', { node: nodes[i % nodes.length]! }),
        });
      }),
    );
    await deadline(allBoundPromise, timeoutMs, () => `${bound.size} of ${count} claims Bound`, child);
    const lastBound = Math.max(...bound.values());
    const latencies = [...bound].map(([name, at]) => (at - created.get(name)!) / 1000);
    log(`${spec.name}: all Bound in ${((lastBound - start) / 1000).toFixed(1)} s; deleting`);
    const nodesUsed = await claimNodes(core, claimsNs);
    const deleteStart = performance.now();
    deletingStarted.value = true;
    await core.deleteCollectionNamespacedPod({ namespace: claimsNs, gracePeriodSeconds: 0 });
    await core.deleteCollectionNamespacedPersistentVolumeClaim({ namespace: claimsNs });
    if (volumes.size === 0) noVolumes();
    await deadline(noVolumesPromise, timeoutMs, () => `${volumes.size} PVs left`, child);
    await deadline(
      waitUntil(() => [...nodesUsed].every((node) => entries(nodePath(node, spec.baseDir)) === 0)),
      timeoutMs,
      () => 'directories left on the nodes',
      child,
    );
    const deleteAllSeconds = (performance.now() - deleteStart) / 1000;
    const cpu = cpuSeconds(child.pid!) - cpu0;
    const peakRssBytes = cgroup ? cgroup.peakBytes() : peakRss(child.pid!);
    log(`${spec.name}: all deleted in ${deleteAllSeconds.toFixed(1)} s`);
    await stopProcess(child);
    await sleep(1000);
    const requests = countRequests(
      auditLines(auditOffset),
      `system:serviceaccount:${identity.namespace}:hostpath-provisioner`,
    );
    return {
      provisioner: spec.name,
      claims: count,
      nodes: nodes.length,
      allBoundSeconds: (lastBound - start) / 1000,
      latency: {
        p50: quantile(latencies, 0.5),
        p95: quantile(latencies, 0.95),
        p99: quantile(latencies, 0.99),
        max: Math.max(...latencies),
      },
      deleteAllSeconds,
      cpuSeconds: cpu,
      peakRssBytes,
      oomKills: cgroup ? cgroup.oomKills() : 0,
      requests,
      requestsPerClaim: requests.total / count,
    };
  } finally {
    for (const w of watches) w.abort();
    // A run that failed half-way: its claims go first, and the provisioner (if it still runs) gets up to 2 minutes
    // to remove their volumes, so no Released PV of this run is left for the next one to inherit.
    await core.deleteNamespace({ name: claimsNs }).catch(() => undefined);
    const left = async (): Promise<boolean> =>
      (await core.listPersistentVolume()).items.some((pv) => pv.spec?.storageClassName === className);
    if (child.exitCode === null && child.signalCode === null && (await left().catch(() => false))) {
      log(`${spec.name}: waiting up to 120 s for the volumes of this run to be removed`);
      await deadline(
        (async () => {
          while (await left().catch(() => false)) await sleep(1000);
        })(),
        120_000,
        () => 'volumes of this run left',
      ).catch((err: unknown) => log(`${spec.name}: ${String(err)}`));
    }
    await stopProcess(child);
    cgroup?.remove();
    await core.deleteNamespace({ name: identity.namespace }).catch(() => undefined);
    await storage.deleteStorageClass({ name: className }).catch(() => undefined);
  }
}

async function applyObjects(yaml: string, namespace: string): Promise<void> {
  if (!yaml.trim()) return;
  const kc = loadKubeConfig();
  const { KubernetesObjectApi } = await import('@kubernetes/client-node');
  const client = KubernetesObjectApi.makeApiClient(kc);
  for (const doc of parseAllDocuments(yaml)) {
    const obj = doc.toJS() as KubernetesObject | null;
    if (!obj?.kind) continue;
    obj.metadata ??= {};
    await client.create({ ...obj, metadata: { namespace, ...obj.metadata } }).catch(async (err: unknown) => {
      if ((err as { code?: number }).code !== 409) throw err;
      await client.replace({ ...obj, metadata: { namespace, ...obj.metadata } });
    });
  }
}

async function startProcess(
  spec: ProvisionerSpec,
  fill: (text: string) => string,
  logPath: string,
  cgroup: MemoryCgroup | undefined,
  limit: number | undefined,
): Promise<ChildProcess> {
  const [command, ...args] = spec.command.map(fill);
  if (!command) throw new Error(`${spec.name}: empty command`);
  mkdirSync(join(CLUSTER_DIR, 'logs'), { recursive: true });
  const fd = openSync(logPath, 'a');
  const env = Object.fromEntries(Object.entries(spec.env ?? {}).map(([k, v]) => [k, fill(v)]));
  const child = spawn(command === 'node' ? process.execPath : command, args, {
    cwd: REPO_ROOT,
    stdio: ['ignore', fd, fd],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/', ...env },
  });
  closeSync(fd);
  if (cgroup && limit !== undefined) cgroup.add(child.pid!, limit);
  const ready = new RegExp(spec.ready);
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`${spec.name} exited with ${code}; see ${logPath}`))),
  );
  exited.catch(() => undefined);
  await Promise.race([
    exited,
    deadline(
      waitUntil(() => ready.test(readFileSync(logPath, 'utf8'))),
      60_000,
      () => `${spec.name} not ready (no /${spec.ready}/ in ${logPath})`,
    ),
  ]);
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const killed = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(killed);
}

/**
 * Lists, then watches from the list's resourceVersion, calling `on` for every object listed and every event; when
 * the watch ends (the API server closes watches, a connection breaks) it lists and watches again, so no change is
 * missed. A claim first seen Bound in a re-list counts from that moment (later than it was; said in the log).
 */
async function watch<T extends KubernetesObject>(
  kc: ReturnType<typeof loadKubeConfig>,
  path: string,
  list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>,
  on: (obj: T, type: string) => void,
  log: (line: string) => void,
): Promise<AbortController> {
  const stop = new AbortController();
  const start = async (): Promise<void> => {
    const listed = await list();
    for (const obj of listed.items) on(obj, 'MODIFIED');
    if (stop.signal.aborted) return;
    const request = await new Watch(kc).watch(
      path,
      { allowWatchBookmarks: true, resourceVersion: listed.metadata?.resourceVersion ?? '' },
      (type: string, obj: T) => {
        if (type !== 'BOOKMARK' && type !== 'ERROR') on(obj, type);
      },
      (err: unknown) => {
        if (stop.signal.aborted) return;
        log(
          `watch ${path} ended (${err ? (err instanceof Error ? err.message : JSON.stringify(err)) : 'closed by the server'}); listing and watching again`,
        );
        setTimeout(() => void start().catch((e: unknown) => log(`watch ${path}: ${String(e)}`)), 500);
      },
    );
    stop.signal.addEventListener('abort', () => request.abort(), { once: true });
  };
  await start();
  return stop;
}

async function claimNodes(core: CoreV1Api, namespace: string): Promise<Set<string>> {
  const claims = await core.listNamespacedPersistentVolumeClaim({ namespace });
  return new Set(claims.items.map((c) => c.metadata?.annotations?.[SELECTED_NODE] ?? '').filter(Boolean));
}

function entries(dir: string): number {
  return existsSync(dir) ? readdirSync(dir).length : 0;
}

async function waitUntil(done: () => boolean, intervalMs = 200): Promise<void> {
  while (!done()) await sleep(intervalMs);
}

async function deadline<T>(work: Promise<T>, ms: number, what: () => string, child?: ChildProcess): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s: ${what()}`)), ms);
  });
  const died =
    child === undefined
      ? new Promise<never>(() => undefined)
      : new Promise<never>((_, reject) => {
          const exited = (code: number | null, signal: string | null): void =>
            reject(new Error(`provisioner exited (${code ?? signal}): ${what()}`));
          if (child.exitCode !== null || child.signalCode !== null) exited(child.exitCode, child.signalCode);
          else child.once('exit', exited);
        });
  try {
    return await Promise.race([work, timeout, died]);
  } finally {
    clearTimeout(timer);
  }
}

/** User + system CPU seconds of a process (/proc/<pid>/stat, clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Peak resident set size of a process in bytes (VmHWM). */
function peakRss(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmHWM:'));
  return Number(line?.split(/\s+/)[1] ?? 0) * 1024;
}

function auditLines(offset: number): string[] {
  if (!existsSync(AUDIT_LOG)) throw new Error(`no audit log at ${AUDIT_LOG}: start the cluster with e2e/cluster/up.sh`);
  return readFileSync(AUDIT_LOG).subarray(offset).toString('utf8').split('\n');
}

/** A memory cgroup of its own for the process under test. */
interface MemoryCgroup {
  add(pid: number, limitBytes: number): void;
  peakBytes(): number;
  oomKills(): number;
  remove(): void;
}

function memoryCgroup(name: string): MemoryCgroup {
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  const dir = v2 ? join('/sys/fs/cgroup', name) : join('/sys/fs/cgroup/memory', name);
  const read = (file: string): string => readFileSync(join(dir, file), 'utf8');
  return {
    add(pid, limitBytes) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(limitBytes));
      writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    },
    peakBytes: () => Number(read(v2 ? 'memory.peak' : 'memory.max_usage_in_bytes').trim()),
    oomKills() {
      const text = read(v2 ? 'memory.events' : 'memory.oom_control');
      return Number(/oom_kill (\d+)/.exec(text)?.[1] ?? 0);
    },
    remove() {
      try {
        rmdirSync(dir);
      } catch {
        // still has a process (it is killed at exit) or was never made
      }
    },
  };
}
