/**
 * The Helm chart (charts/hostpath-provisioner, issue 17), with helm built from the Go module proxy
 * (e2e/cluster/build-helm.sh, cached like the control plane):
 * - one source of truth: with its default values the chart renders exactly the objects of manifests/base, and with
 *   monitoring on exactly those of manifests/monitoring (object by object, as `kubectl kustomize` renders them);
 * - `helm lint --strict`, and `helm template` over a matrix of values, each rendering checked object by object;
 *   invalid values are refused by values.schema.json, naming the value, before anything reaches the cluster;
 * - a real `helm install`, `helm upgrade` and `helm uninstall` on the test cluster: the image built from the
 *   Dockerfile runs on the real nodes, binds a claim of the chart's class on the tainted real node, keeps doing so
 *   across an upgrade, and the uninstall leaves none of the chart's objects behind.
 * The install changes only what loopback networking needs (as e2e/image/deploy.sh does for kustomize).
 * Needs the real nodes (HPP_REAL_NODES ≥ 2) and Docker or buildah.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppsV1Api, CoordinationV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { parseClassParameters } from '../src/domain/storage-class.js';
import {
  apiStatus,
  CLUSTER_DIR,
  clusterEnv,
  createTestNamespace,
  kubeconfigPath,
  loadKubeConfig,
  REPO_ROOT,
  waitFor,
  type TestNamespace,
} from './support/cluster.js';
import {
  claim,
  consumerPod,
  core,
  createClaim,
  storage,
  volumeDirOnNode,
  waitForBound,
  waitForVolumeGone,
} from './support/volumes.js';

const CHART = join(REPO_ROOT, 'charts', 'hostpath-provisioner');
const GPU = 'hpp-real-gpu';
const RELEASE = 'hpp-helm';
const NAMESPACE = 'hpp-helm';
const CLASS = 'hpp-helm';
const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let helmBin = '';
let helmHome = '';
let ns: TestNamespace | undefined;

/** A rendered object, keyed for comparison. */
type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } } & Record<
  string,
  unknown
>;

function run(
  cmd: string,
  args: string[],
  timeoutMs = 120_000,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 << 20,
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(helmHome, 'cache'),
      HELM_CONFIG_HOME: join(helmHome, 'config'),
      HELM_DATA_HOME: join(helmHome, 'data'),
    },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(cmd: string, args: string[], timeoutMs?: number): string {
  const r = run(cmd, args, timeoutMs);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const helm = (...args: string[]): string => ok(helmBin, args, 300_000);
/** Where the release lives: the test cluster, its record in namespace default. */
const onCluster = (): string[] => ['--kubeconfig', kubeconfigPath(), '--namespace', 'default'];
const kubectl = (...args: string[]): string =>
  ok(join(CLUSTER_DIR, 'bin', 'kubectl'), ['--kubeconfig', kubeconfigPath(), ...args]);

/** Objects of a multi-document YAML stream by `kind namespace/name`. */
function objects(text: string): Map<string, Obj> {
  const out = new Map<string, Obj>();
  for (const doc of parseAllDocuments(text)) {
    const obj = doc.toJS() as Obj | null;
    if (!obj) continue;
    const key = `${obj.kind} ${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    if (out.has(key)) throw new Error(`${key} rendered twice`);
    out.set(key, obj);
  }
  return out;
}

/** `helm template` of the chart with the given values (written to a file, as users pass them). */
function template(values: object = {}): Map<string, Obj> {
  const file = join(helmHome, `values-${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, JSON.stringify(values));
  return objects(helm('template', RELEASE, CHART, '-f', file));
}

/** `helm template` with values that must be refused: it fails and renders nothing. */
function templateFailure(values: object): { stderr: string } {
  const file = join(helmHome, 'invalid.yaml');
  writeFileSync(file, JSON.stringify(values));
  const r = run(helmBin, ['template', RELEASE, CHART, '-f', file]);
  expect(r.status).not.toBe(0);
  expect(r.stdout).toBe('');
  return r;
}

/** Expects the two renderings to hold the same objects, compared one by one (a failure names the object). */
function expectSameObjects(actual: Map<string, Obj>, expected: Map<string, Obj>): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [key, obj] of expected) expect({ key, obj: actual.get(key) }).toEqual({ key, obj });
}

beforeAll(() => {
  helmHome = mkdtempSync(join(tmpdir(), 'hpp-helm-'));
  helmBin =
    ok('bash', [join(REPO_ROOT, 'e2e', 'cluster', 'build-helm.sh')], 1_200_000)
      .trim()
      .split('\n')
      .pop() ?? '';
}, 1_200_000);

afterAll(async () => {
  // Whatever a failed case left: the release, then the test namespace.
  if (helmBin && existsSync(kubeconfigPath())) {
    run(helmBin, ['uninstall', RELEASE, ...onCluster(), '--wait', '--ignore-not-found']);
  }
  await ns?.cleanup();
  if (helmHome) rmSync(helmHome, { recursive: true, force: true });
});

describe('the chart renders', () => {
  it('passes helm lint --strict, and says its version is the package’s', () => {
    expect(helm('lint', '--strict', CHART)).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    const chart = parseAllDocuments(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'))[0]!.toJS() as Record<
      string,
      string
    >;
    expect({ version: chart.version, appVersion: chart.appVersion }).toEqual({ version, appVersion: version });
  });

  it('with its default values: exactly the objects of manifests/base', () => {
    expectSameObjects(template(), objects(kubectl('kustomize', 'manifests/base')));
  });

  it('with monitoring on: the base and exactly the objects of manifests/monitoring (scraping only its namespace)', () => {
    const rendered = template({
      metrics: {
        serviceMonitor: { enabled: true },
        prometheusRule: { enabled: true },
        dashboard: { enabled: true },
        namespace: 'monitoring',
      },
    });
    const expected = objects(kubectl('kustomize', 'manifests/monitoring'));
    const monitoring = new Map<string, Obj>();
    for (const [, obj] of expected) {
      const placed: Obj = { ...obj, metadata: { ...obj.metadata, namespace: 'monitoring' } };
      if (obj.kind === 'ServiceMonitor') {
        // The kustomization scrapes both of its installs' namespaces; the chart knows its own.
        placed.spec = { ...(obj.spec as object), namespaceSelector: { matchNames: ['hostpath-provisioner'] } };
      }
      monitoring.set(`${obj.kind} monitoring/${obj.metadata.name}`, placed);
    }
    const base = objects(kubectl('kustomize', 'manifests/base'));
    expectSameObjects(rendered, new Map([...base, ...monitoring]));
  });

  it('a matrix of values: namespace, image by digest, helper settings, classes, replicas, placement', () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    const rendered = template({
      name: 'storage',
      namespace: { name: 'kube-system', create: false },
      image: { repository: 'registry.example/hpp', tag: '9.9.9', digest, pullPolicy: 'Always' },
      helperImage: 'registry.example/busybox:1.37.0',
      pvDir: '/data/volumes',
      tolerationPolicy: 'all',
      helperPriorityClass: '',
      extraEnv: [{ name: 'LOG_LEVEL', value: 'debug' }],
      replicas: 1,
      podDisruptionBudget: { enabled: false },
      metrics: { service: false },
      nodeSelector: { 'node-role.kubernetes.io/control-plane': '' },
      tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
      hostNetwork: true,
      storageClasses: [
        {
          name: 'fast',
          default: true,
          volumeBindingMode: 'Immediate',
          allowVolumeExpansion: true,
          parameters: { pvDir: '/mnt/nvme', uid: 1000, gid: 4294967294, mode: '2770' },
        },
        {
          name: 'keep',
          reclaimPolicy: 'Retain',
          allowVolumeExpansion: false,
          parameters: { pvDirFromNode: true, volumeType: 'local' },
        },
        {
          name: 'nfs',
          parameters: { pvDir: '/mnt/nfs', sharedFileSystem: 'true' },
          allowedTopologies: [{ matchLabelExpressions: [{ key: 'example.com/nfs', values: ['yes'] }] }],
        },
      ],
    });
    expect([...rendered.keys()].sort()).toEqual([
      'ClusterRole /storage',
      'ClusterRoleBinding /storage',
      'Deployment kube-system/storage',
      'Role kube-system/storage',
      'RoleBinding kube-system/storage',
      'ServiceAccount kube-system/storage',
      'StorageClass /fast',
      'StorageClass /keep',
      'StorageClass /nfs',
    ]);
    const deployment = rendered.get('Deployment kube-system/storage') as unknown as {
      spec: {
        replicas: number;
        template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } };
      };
    };
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0]!;
    expect(deployment.spec.replicas).toBe(1);
    expect(pod.serviceAccountName).toBe('storage');
    expect({ hostNetwork: pod.hostNetwork, dnsPolicy: pod.dnsPolicy }).toEqual({
      hostNetwork: true,
      dnsPolicy: 'ClusterFirstWithHostNet',
    });
    expect(pod.nodeSelector).toEqual({ 'node-role.kubernetes.io/control-plane': '' });
    expect(pod.tolerations).toEqual([
      { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    expect({ image: container.image, imagePullPolicy: container.imagePullPolicy }).toEqual({
      image: `registry.example/hpp@${digest}`,
      imagePullPolicy: 'Always',
    });
    expect((container.env as { name: string; value?: string }[]).filter((e) => e.value !== undefined)).toEqual([
      { name: 'PV_DIR', value: '/data/volumes' },
      { name: 'BUSYBOX_IMAGE', value: 'registry.example/busybox:1.37.0' },
      { name: 'TOLERATION_POLICY', value: 'all' },
      { name: 'HELPER_PRIORITY_CLASS', value: '' },
      { name: 'LOG_LEVEL', value: 'debug' },
    ]);
    const binding = rendered.get('ClusterRoleBinding /storage') as unknown as {
      subjects: object[];
      roleRef: { name: string };
    };
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'storage', namespace: 'kube-system' }]);
    expect(binding.roleRef.name).toBe('storage');
    expect(rendered.get('StorageClass /fast')).toEqual({
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: 'fast', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      provisioner: 'microk8s.io/hostpath',
      reclaimPolicy: 'Delete',
      volumeBindingMode: 'Immediate',
      allowVolumeExpansion: true,
      // Numbers as integers (Helm reads them as float64), never 4.294967294e+09.
      parameters: { gid: '4294967294', mode: '2770', pvDir: '/mnt/nvme', uid: '1000' },
    });
    expect(rendered.get('StorageClass /keep')).toEqual({
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: 'keep' },
      provisioner: 'microk8s.io/hostpath',
      reclaimPolicy: 'Retain',
      volumeBindingMode: 'WaitForFirstConsumer',
      allowVolumeExpansion: false,
      parameters: { pvDirFromNode: 'true', volumeType: 'local' },
    });
    // The provisioner accepts the parameters the chart writes.
    expect(rendered.get('StorageClass /nfs')).toMatchObject({
      parameters: { pvDir: '/mnt/nfs', sharedFileSystem: 'true' },
      allowedTopologies: [{ matchLabelExpressions: [{ key: 'example.com/nfs', values: ['yes'] }] }],
    });
    for (const name of ['fast', 'keep', 'nfs']) {
      expect(parseClassParameters(rendered.get(`StorageClass /${name}`) as never, '/data/volumes').ok).toBe(true);
    }
  });

  it('without a digest the tag defaults to the chart’s appVersion; no helper priority value: the provisioner’s default', () => {
    const pod = (
      template().get('Deployment hostpath-provisioner/hostpath-provisioner') as unknown as {
        spec: { template: { spec: { containers: { image: string; env: { name: string }[] }[] } } };
      }
    ).spec.template.spec.containers[0]!;
    expect(pod.image).toBe(`hostpath-provisioner:${version}`);
    expect(pod.env.map((e) => e.name)).toEqual(['NAMESPACE', 'NODE_NAME', 'PV_DIR', 'BUSYBOX_IMAGE']);
  });

  it.each([
    ['an unknown key', { pvdir: '/x' }, /pvdir/],
    ['a relative pvDir', { pvDir: 'data' }, /pvDir/],
    ['an unknown reclaim policy', { storageClasses: [{ name: 'x', reclaimPolicy: 'Recycle' }] }, /reclaimPolicy/],
    ['an unknown class parameter', { storageClasses: [{ name: 'x', parameters: { pvdir: '/x' } }] }, /pvdir/],
    ['a digest that is not sha256', { image: { repository: 'hpp', digest: 'latest' } }, /digest/],
    ['an unknown toleration policy', { tolerationPolicy: 'some' }, /tolerationPolicy/],
    ['replicas as a string', { replicas: 'two' }, /replicas/],
    [
      'an unquoted mode (YAML would read 0770 as a number)',
      { storageClasses: [{ name: 'x', parameters: { mode: 770 } }] },
      /mode/,
    ],
    ['a uid beyond 4294967294', { storageClasses: [{ name: 'x', parameters: { uid: 4294967295 } }] }, /uid/],
    ['pvDirFromNode "yes"', { storageClasses: [{ name: 'x', parameters: { pvDirFromNode: 'yes' } }] }, /pvDirFromNode/],
    ['pvDir /', { pvDir: '/' }, /pvDir/],
    ['a value that would inject YAML', { priorityClassName: 'x\n      hostPID: true' }, /priorityClassName/],
    ['extraEnv setting PV_DIR a second time', { extraEnv: [{ name: 'PV_DIR', value: '/x' }] }, /extraEnv/],
  ])('refuses %s, naming it, before rendering anything', (_name, values, message) => {
    const r = templateFailure(values);
    expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(r.stderr).toMatch(message);
  });

  it.each([
    [
      'a namespace of the cluster it would own (and delete on uninstall)',
      { namespace: { name: 'kube-system', create: true } },
      'namespace.name kube-system is a namespace of the cluster: set namespace.create to false',
    ],
    [
      'two default classes',
      {
        storageClasses: [
          { name: 'a', default: true },
          { name: 'b', default: true },
        ],
      },
      'storageClasses: a, b are all marked default; at most one may be',
    ],
    ['a class listed twice', { storageClasses: [{ name: 'a' }, { name: 'a' }] }, 'storageClasses: a is listed twice'],
  ])('refuses %s, saying why', (_name, values, message) => {
    expect(templateFailure(values).stderr).toContain(message);
  });
});

describe('helm install, upgrade, uninstall on the test cluster', () => {
  const valuesFile = () => join(helmHome, 'install.yaml');
  /** The install's values: its own names, one class, placement on the real nodes and loopback networking. */
  function installValues(extraEnv: object[] = []): void {
    const port = clusterEnv().APISERVER_PORT ?? '';
    writeFileSync(
      valuesFile(),
      JSON.stringify({
        name: RELEASE,
        namespace: { name: NAMESPACE, create: true },
        image: { repository: 'hostpath-provisioner', tag: version },
        replicas: 1,
        hostNetwork: true,
        nodeSelector: { 'hpp.test/real-node': 'true' },
        tolerations: [
          { key: 'hpp.test/real-node', operator: 'Exists', effect: 'NoSchedule' },
          { key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' },
        ],
        extraEnv: [
          { name: 'KUBERNETES_SERVICE_HOST', value: '127.0.0.1' },
          { name: 'KUBERNETES_SERVICE_PORT', value: port },
          { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'METRICS_ADDRESS', value: '$(POD_IP):9090' },
          ...extraEnv,
        ],
        storageClasses: [{ name: CLASS, default: false, allowVolumeExpansion: true }],
      }),
    );
  }
  /** `helm install` or `helm upgrade` of the chart with the install's values, waiting for the rollout. */
  const release = (verb: 'install' | 'upgrade'): string =>
    helm(verb, RELEASE, CHART, ...onCluster(), '-f', valuesFile(), '--wait', '--timeout', '180s');
  const kc = loadKubeConfig();
  const apps = kc.makeApiClient(AppsV1Api);

  /** A claim of the chart's class bound on the tainted real node, its file there; then deleted and its directory gone. */
  async function provisionOnTaintedNode(name: string): Promise<string> {
    const taints = (await core.readNode({ name: GPU })).spec?.taints ?? [];
    await createClaim(ns!.name, claim(name, { className: CLASS }));
    await ns!.createPod(
      consumerPod(`${name}-app`, name, `echo ${name} > /data/f`, {
        node: GPU,
        tolerations: taints.map((t) => ({ key: t.key, operator: 'Equal', value: t.value ?? '', effect: t.effect })),
      }),
    );
    const pv = await waitForBound(ns!.name, name, { timeoutMs: 120_000 });
    await ns!.waitForPhase(`${name}-app`, ['Succeeded'], { timeoutMs: 120_000 });
    const dir = volumeDirOnNode(GPU, pv);
    expect(readFileSync(join(dir, 'f'), 'utf8')).toBe(`${name}\n`);
    await core.deleteNamespacedPod({ namespace: ns!.name, name: `${name}-app` });
    await ns!.waitForPodGone(`${name}-app`, { timeoutMs: 60_000 });
    await core.deleteNamespacedPersistentVolumeClaim({ namespace: ns!.name, name });
    await waitForVolumeGone(pv.metadata!.name!, { timeoutMs: 120_000 });
    expect(existsSync(dir)).toBe(false);
    return pv.spec?.hostPath?.path ?? '';
  }

  beforeAll(async () => {
    ok('bash', [join(REPO_ROOT, 'e2e', 'image', 'import.sh')], 840_000);
    ns = await createTestNamespace('helm');
  }, 900_000);

  it('installs: the pod from the image Ready, the chart’s class, a claim bound on the tainted real node', async () => {
    installValues();
    release('install');
    const deployment = await apps.readNamespacedDeployment({ namespace: NAMESPACE, name: RELEASE });
    expect(deployment.status?.readyReplicas).toBe(1);
    expect((await storage.readStorageClass({ name: CLASS })).allowVolumeExpansion).toBe(true);
    const namespace = await core.readNamespace({ name: NAMESPACE });
    expect(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('privileged');
    expect(await provisionOnTaintedNode('first')).toMatch(/^\/var\/snap\/microk8s\/common\/default-storage\//);
  }, 400_000);

  it('upgrades: the new settings roll out, the Lease is held by the new pod, claims still bind', async () => {
    const coordination = kc.makeApiClient(CoordinationV1Api);
    const holder = async () =>
      (await coordination.readNamespacedLease({ namespace: NAMESPACE, name: 'microk8s.io-hostpath' })).spec
        ?.holderIdentity ?? '';
    const before = await holder();
    installValues([{ name: 'LOG_LEVEL', value: 'debug' }]);
    release('upgrade');
    const pods = await core.listNamespacedPod({
      namespace: NAMESPACE,
      labelSelector: 'app.kubernetes.io/name=hostpath-provisioner',
    });
    const running = pods.items.filter((p) => !p.metadata?.deletionTimestamp);
    expect(running.map((p) => p.spec?.containers[0]?.env?.find((e) => e.name === 'LOG_LEVEL')?.value)).toEqual([
      'debug',
    ]);
    // Identities are <node>_<pid>_<random>: a new holder on the new pod's node.
    await waitFor(
      'the upgraded pod holding the Lease',
      async () => {
        const now = await holder();
        return now !== before && now.startsWith(`${running[0]!.spec!.nodeName!}_`);
      },
      { timeoutMs: 60_000 },
    );
    await provisionOnTaintedNode('second');
  }, 400_000);

  it('uninstalls: none of the chart’s objects is left', async () => {
    helm('uninstall', RELEASE, ...onCluster(), '--wait', '--timeout', '180s');
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const gone = async (read: () => Promise<unknown>): Promise<boolean> => {
      try {
        await read();
        return false;
      } catch (err) {
        if (apiStatus(err) === 404) return true;
        throw err;
      }
    };
    await waitFor('the namespace gone', () => gone(() => core.readNamespace({ name: NAMESPACE })), {
      timeoutMs: 120_000,
    });
    expect(await gone(() => storage.readStorageClass({ name: CLASS }))).toBe(true);
    expect(await gone(() => rbac.readClusterRole({ name: RELEASE }))).toBe(true);
    expect(await gone(() => rbac.readClusterRoleBinding({ name: RELEASE }))).toBe(true);
  }, 300_000);
});
