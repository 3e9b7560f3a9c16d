/**
 * Helpers for e2e tests against the local cluster (e2e/cluster/up.sh + the node agent): clients from the admin
 * kubeconfig, a namespace per test file, polling waits with a deadline, and paths of the nodes' folders.
 */
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ApiException, CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';

/**
 * The repository root: the nearest folder above this file with a package.json and a Makefile (this file is
 * e2e/support/cluster.ts, or dist/e2e/support/cluster.js when compiled for the benchmark).
 */
export const REPO_ROOT = repositoryRoot(import.meta.dirname);

function repositoryRoot(from: string): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'Makefile'))) return dir;
    if (dirname(dir) === dir) return resolve(from, '..', '..');
  }
}
/** The cluster's state folder. */
export const CLUSTER_DIR = join(REPO_ROOT, '.cluster');

/** Path of the admin kubeconfig: `HPP_KUBECONFIG` (set by the global setup) or `.cluster/kubeconfig`. */
export function kubeconfigPath(): string {
  return process.env.HPP_KUBECONFIG ?? join(CLUSTER_DIR, 'kubeconfig');
}

/** A KubeConfig loaded from {@link kubeconfigPath} (admin, group system:masters). */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return kc;
}

/** The values up.sh writes to `.cluster/cluster.env` (ports of the components, API server URL). */
export function clusterEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(join(CLUSTER_DIR, 'cluster.env'), 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1]) env[m[1]] = m[2] ?? '';
  }
  return env;
}

/** Where a hostPath `path` of node `node` lives on this machine: `.cluster/nodes/<node>/<path>`. */
export function nodePath(node: string, path: string): string {
  return join(CLUSTER_DIR, 'nodes', node, path);
}

/**
 * GET an HTTPS URL on loopback without verifying the certificate (component /healthz endpoints).
 *
 * @returns the status code and body text.
 */
export function insecureGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolveGet, reject) => {
    const req = request(url, { rejectUnauthorized: false, headers, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolveGet({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.end();
  });
}

/** HTTP status of a failed client call, or undefined. */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

export interface WaitOptions {
  /** Give up after this many milliseconds (default 30 000). */
  timeoutMs?: number;
  /** Poll period, milliseconds (default 250). */
  intervalMs?: number;
}

/**
 * Poll `probe` until it returns a value other than `undefined`/`false`, and return that value.
 * Errors thrown by the probe count as "not yet" (the last one is reported on timeout).
 *
 * @param what a description for the timeout error.
 * @throws Error `timed out after N ms waiting for <what>` with the last error or value seen.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      last = `probe returned ${String(v)}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
}

/** A namespace for one test file, with helpers bound to it. */
export interface TestNamespace {
  name: string;
  kc: KubeConfig;
  core: CoreV1Api;
  /** Create a pod in this namespace. */
  createPod(pod: V1Pod): Promise<V1Pod>;
  /** Poll a pod until `predicate` holds; returns that version of the pod. */
  waitForPod(name: string, what: string, predicate: (pod: V1Pod) => boolean, opts?: WaitOptions): Promise<V1Pod>;
  /** Wait until the pod's phase is one of `phases`. */
  waitForPhase(name: string, phases: string[], opts?: WaitOptions): Promise<V1Pod>;
  /** Wait until the pod no longer exists (404). */
  waitForPodGone(name: string, opts?: WaitOptions): Promise<void>;
  /** `pods/log` through the API server (which proxies to the node agent). */
  podLog(name: string, container?: string): Promise<string>;
  /** Delete the namespace (does not wait). */
  cleanup(): Promise<void>;
}

/**
 * Create a unique namespace `e2e-<prefix>-<random>` and wait for its `default` ServiceAccount (pods are refused
 * until the service-account controller made it).
 */
export async function createTestNamespace(prefix: string): Promise<TestNamespace> {
  const kc = loadKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const name = `e2e-${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels: { 'hpp.test/e2e': 'true' } } } });
  await waitFor(`serviceaccount default in ${name}`, () =>
    core.readNamespacedServiceAccount({ name: 'default', namespace: name }).then(() => true),
  );
  const readPod = (pod: string) => core.readNamespacedPod({ name: pod, namespace: name });
  const ns: TestNamespace = {
    name,
    kc,
    core,
    createPod: (pod) => core.createNamespacedPod({ namespace: name, body: pod }),
    waitForPod: (pod, what, predicate, opts) =>
      waitFor(
        `pod ${name}/${pod}: ${what}`,
        async () => {
          const p = await readPod(pod);
          return predicate(p) ? p : false;
        },
        opts,
      ),
    waitForPhase: (pod, phases, opts) =>
      ns.waitForPod(pod, `phase in ${phases.join('|')}`, (p) => phases.includes(p.status?.phase ?? ''), opts),
    waitForPodGone: async (pod, opts) => {
      await waitFor(
        `pod ${name}/${pod} to be gone`,
        () =>
          readPod(pod).then(
            () => false,
            (err: unknown) => {
              if (apiStatus(err) === 404) return true;
              throw err;
            },
          ),
        opts,
      );
    },
    podLog: (pod, container) =>
      core.readNamespacedPodLog({ name: pod, namespace: name, ...(container ? { container } : {}) }),
    cleanup: async () => {
      await core.deleteNamespace({ name }).catch(() => undefined);
    },
  };
  return ns;
}

/** Options of {@link shellPod}. */
export interface ShellPodOptions {
  node?: string;
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  tolerations?: NonNullable<V1Pod['spec']>['tolerations'];
  volumes?: NonNullable<V1Pod['spec']>['volumes'];
  volumeMounts?: NonNullable<NonNullable<V1Pod['spec']>['containers'][number]['volumeMounts']>;
  image?: string;
}

/**
 * A one-container pod running `sh -c <script>` (busybox image; the node agent runs the host's sh), placed on
 * `node` with a nodeSelector on `kubernetes.io/hostname` (so the real scheduler decides), grace period 1 s.
 */
export function shellPod(name: string, script: string, opts: ShellPodOptions = {}): V1Pod {
  return {
    metadata: { name },
    spec: {
      restartPolicy: opts.restartPolicy ?? 'Never',
      terminationGracePeriodSeconds: 1,
      ...(opts.node ? { nodeSelector: { 'kubernetes.io/hostname': opts.node } } : {}),
      ...(opts.tolerations ? { tolerations: opts.tolerations } : {}),
      ...(opts.volumes ? { volumes: opts.volumes } : {}),
      containers: [
        {
          name: 'main',
          image: opts.image ?? 'busybox:1.36',
          command: ['sh', '-c', script],
          ...(opts.volumeMounts ? { volumeMounts: opts.volumeMounts } : {}),
        },
      ],
    },
  };
}

/**
 * Restarts the node agent (it registers every node of its file again, e.g. after a test deleted one): stops its
 * process group, then runs `e2e/cluster/up.sh`, which starts it and waits until every node is Ready.
 */
export async function restartNodeAgent(): Promise<void> {
  const pidFile = join(CLUSTER_DIR, 'pids', 'node-agent.pid');
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    process.kill(pid, 'SIGTERM');
  }
  await waitFor('node agent to stop', () => !alive(), { timeoutMs: 20_000 });
  const { spawnSync } = await import('node:child_process');
  const result = spawnSync('bash', [join(REPO_ROOT, 'e2e', 'cluster', 'up.sh')], { cwd: REPO_ROOT, stdio: 'ignore' });
  if (result.status !== 0) throw new Error(`up.sh failed while restarting the node agent (exit ${result.status})`);
}

/**
 * Restarts kube-apiserver with its own command line (`e2e/cluster/restart-apiserver.sh`): etcd and every object stay,
 * every watch and connection breaks. Resolves once the API server is ready again.
 *
 * @param downSeconds - how long it stays down between stop and start.
 */
export async function restartApiServer(downSeconds = 0): Promise<void> {
  const { spawn } = await import('node:child_process');
  const child = spawn('bash', [join(REPO_ROOT, 'e2e', 'cluster', 'restart-apiserver.sh'), String(downSeconds)], {
    cwd: REPO_ROOT,
    stdio: 'ignore',
  });
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`restart-apiserver.sh failed (exit ${code}); see .cluster/logs/kube-apiserver.log`);
}
