/**
 * Runs the provisioner for e2e tests the way a cluster would: as its own process, with a kubeconfig holding a
 * ServiceAccount token bound to the ClusterRole and Role from manifests/base/rbac.yaml — so a missing RBAC verb
 * fails the tests. Also applies the StorageClass from manifests/base.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  CoreV1Api,
  RbacAuthorizationV1Api,
  StorageV1Api,
  type KubeConfig,
  type V1ClusterRole,
  type V1Role,
  type V1StorageClass,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { apiStatus, CLUSTER_DIR, loadKubeConfig, REPO_ROOT, waitFor } from './cluster.js';

/** Documents of a manifest file, parsed. */
function manifest(path: string): Record<string, unknown>[] {
  return parseAllDocuments(readFileSync(join(REPO_ROOT, path), 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
}

function ofKind<T>(docs: Record<string, unknown>[], kind: string): T {
  const doc = docs.find((d) => d.kind === kind);
  if (!doc) throw new Error(`no ${kind} in manifest`);
  return doc as T;
}

/** Creates `create()` or, when it exists, replaces it with `replace()`. */
async function upsert(create: () => Promise<unknown>, replace: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (apiStatus(err) !== 409) throw err;
    await replace();
  }
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Applies the StorageClass `microk8s-hostpath` exactly as manifests/base ships it. */
export async function applyDefaultStorageClass(kc: KubeConfig = loadKubeConfig()): Promise<void> {
  const storage = kc.makeApiClient(StorageV1Api);
  const sc = ofKind<V1StorageClass>(manifest('manifests/base/storageclass.yaml'), 'StorageClass');
  await storage.createStorageClass({ body: sc }).catch((err: unknown) => {
    if (apiStatus(err) !== 409) throw err;
  });
}

/** Options of {@link startProvisioner}. */
export interface ProvisionerOptions {
  /** Extra command-line flags for `run`. */
  readonly args?: readonly string[];
  /** Extra environment variables (e.g. BUSYBOX_IMAGE, PV_RECLAIM_POLICY). */
  readonly env?: Readonly<Record<string, string>>;
  /** Reuse this namespace (and its RBAC) instead of making a new one: for restarts and second replicas. */
  readonly namespace?: string;
}

/** A running provisioner process. */
export interface Provisioner {
  readonly namespace: string;
  readonly port: number;
  readonly logPath: string;
  readonly child: ChildProcess;
  /** GET /metrics text. */
  metrics(): Promise<string>;
  /** The exit code once the process has exited. */
  exited: Promise<number | null>;
  /** Sends a signal (SIGTERM by default) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Creates (or reuses) a namespace for the provisioner with the ServiceAccount, ClusterRole(Binding) and
 * Role(Binding) of manifests/base/rbac.yaml, and writes a kubeconfig with a token of that ServiceAccount.
 *
 * @returns the namespace and the kubeconfig path.
 */
export async function provisionerIdentity(namespace?: string): Promise<{ namespace: string; kubeconfig: string }> {
  const kc = loadKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  const ns = namespace ?? `hpp-${randomBytes(3).toString('hex')}`;
  const kubeconfig = join(CLUSTER_DIR, `provisioner-${ns}.kubeconfig`);
  if (namespace !== undefined) return { namespace: ns, kubeconfig };
  await core.createNamespace({ body: { metadata: { name: ns, labels: { 'hpp.test/e2e': 'true' } } } });
  const docs = manifest('manifests/base/rbac.yaml');
  const clusterRole = ofKind<V1ClusterRole>(docs, 'ClusterRole');
  const role = ofKind<V1Role>(docs, 'Role');
  const sa = 'hostpath-provisioner';
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
  await upsert(
    () => rbac.createClusterRole({ body: clusterRole }),
    () => rbac.replaceClusterRole({ name: clusterRole.metadata?.name ?? '', body: clusterRole }),
  );
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: `hostpath-provisioner-${ns}`, labels: { 'hpp.test/e2e': 'true' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole.metadata?.name ?? '' },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
    },
  });
  await rbac.createNamespacedRole({ namespace: ns, body: role });
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'hostpath-provisioner' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata?.name ?? '' },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
    },
  });
  const token = await core.createNamespacedServiceAccountToken({
    name: sa,
    namespace: ns,
    body: { spec: { expirationSeconds: 6 * 3600, audiences: [] } },
  });
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('admin kubeconfig has no cluster');
  const ca = cluster.caData ?? (cluster.caFile ? readFileSync(cluster.caFile).toString('base64') : '');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server: cluster.server, 'certificate-authority-data': ca } }],
      users: [{ name: sa, user: { token: token.status?.token } }],
      contexts: [{ name: 'provisioner', context: { cluster: 'test', user: sa, namespace: ns } }],
      'current-context': 'provisioner',
    }),
    { mode: 0o600 },
  );
  return { namespace: ns, kubeconfig };
}

/**
 * Starts `node dist/src/cli/main.js run` with the ServiceAccount kubeconfig, the metrics server on a free loopback
 * port, NODE_NAME `hpp-plain`; waits until /readyz answers 200 (caches synced). Logs go to
 * `.cluster/logs/provisioner-<namespace>-<n>.log`.
 */
export async function startProvisioner(options: ProvisionerOptions = {}): Promise<Provisioner> {
  const identity = await provisionerIdentity(options.namespace);
  const port = await freePort();
  mkdirSync(join(CLUSTER_DIR, 'logs'), { recursive: true });
  const logPath = join(CLUSTER_DIR, 'logs', `provisioner-${identity.namespace}-${port}.log`);
  const fd = openSync(logPath, 'a');
  const child = spawn(
    process.execPath,
    [
      join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js'),
      'run',
      '--kubeconfig',
      identity.kubeconfig,
      '--namespace',
      identity.namespace,
      '--node-name',
      'hpp-plain',
      '--metrics-address',
      `127.0.0.1:${port}`,
      '--helper-timeout',
      '30',
      '--retry-max-delay',
      '10',
      ...(options.args ?? []),
    ],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', fd, fd],
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'debug', ...options.env },
    },
  );
  closeSync(fd);
  // A test that fails before its afterAll stops the provisioner must not leave it acting on later tests' claims.
  const killOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      process.removeListener('exit', killOnExit);
      resolve(code);
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const ready = waitFor(
    `provisioner /readyz (log ${logPath})`,
    async () => (await fetch(`${url}/readyz`)).status === 200,
    { timeoutMs: 60_000 },
  );
  const died = exited.then((code) =>
    Promise.reject(new Error(`provisioner exited with ${code} before it was ready; see ${logPath}`)),
  );
  died.catch(() => undefined);
  ready.catch(() => undefined);
  await Promise.race([ready, died]);
  return {
    namespace: identity.namespace,
    port,
    logPath,
    child,
    exited,
    metrics: async () => (await fetch(`${url}/metrics`)).text(),
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
