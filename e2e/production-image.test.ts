/**
 * The provisioner as users install it: the image built from the Dockerfile (`make image`, e2e/image/build.sh),
 * imported into the real nodes' containerd, started by their kubelets from `kubectl apply -k` of
 * manifests/overlays/microk8s, talking to the API server through its ServiceAccount (in-cluster configuration).
 * The test's overlay changes only what loopback networking needs: the API server listens on 127.0.0.1 of this
 * machine, so the pods use the host network, find the API server at 127.0.0.1 and serve their probes on the node's
 * address; and it places them on the real nodes (node selector and tolerations of their taints).
 * Needs the real nodes (HPP_REAL_NODES ≥ 2) and Docker or buildah.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppsV1Api, CoordinationV1Api, type V1Pod } from '@kubernetes/client-node';
import {
  CLUSTER_DIR,
  createTestNamespace,
  kubeconfigPath,
  nodePath,
  REPO_ROOT,
  waitFor,
  type TestNamespace,
} from './support/cluster.js';
import { runDoctor } from './support/doctor.js';
import { applyDefaultStorageClass } from './support/provisioner.js';
import {
  affinityHostname,
  claim,
  consumerPod,
  core,
  createClaim,
  DEFAULT_PV_DIR,
  modeOf,
  readVolume,
  volumeDirOnNode,
  waitForBound,
  waitForEvent,
  waitForVolumeGone,
} from './support/volumes.js';

const REAL_NODES = ['hpp-real-plain', 'hpp-real-gpu'];
const GPU = 'hpp-real-gpu';
const PLAIN = 'hpp-real-plain';
const NAMESPACE = 'kube-system';
const SELECTOR = 'k8s-app=hostpath-provisioner';
const ADDON_IMAGE = 'cdkbot/hostpath-provisioner:1.4.2';
let overlay = '';
const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const apps = () => ns.kc.makeApiClient(AppsV1Api);
let ns: TestNamespace;

function run(cmd: string, args: string[], timeoutMs: number): string {
  const r = spawnSync(cmd, args, { cwd: REPO_ROOT, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}
const kubectl = (...args: string[]): string =>
  run(join(CLUSTER_DIR, 'bin', 'kubectl'), ['--kubeconfig', kubeconfigPath(), ...args], 120_000);

/** The host pids of a container of a real node, from its cgroup (the kubelet's cgroupfs layout). */
function containerPids(containerId: string): number[] {
  const id = containerId.replace(/^containerd:\/\//, '');
  const search = (dir: string, depth: number): string | undefined => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      if (e.name === id) return p;
      if (depth < 6) {
        const found = search(p, depth + 1);
        if (found) return found;
      }
    }
    return undefined;
  };
  const roots = readdirSync('/sys/fs/cgroup/pids').filter((d) => /^hpp-[0-9a-f]{6}-hpp-real-/.test(d));
  for (const root of roots) {
    const dir = search(join('/sys/fs/cgroup/pids', root), 0);
    if (dir) {
      return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    }
  }
  return [];
}

/**
 * The addon's objects as `microk8s enable hostpath-storage` applies them (client-side apply) from its storage.yaml,
 * with $SNAP_COMMON, $DEFAULT_CLASS and $RECLAIM_POLICY filled in as on a default install. Only placement is added (a
 * node selector and a toleration of the real nodes' taint): on a MicroK8s node nothing is tainted, here the pod must
 * land on a real kubelet, which tries to pull the addon's image and cannot, as on an air-gapped upgrade.
 */
function addonObjects(): object[] {
  const labels = { 'k8s-app': 'hostpath-provisioner' };
  const rules = [
    { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['list', 'get', 'watch', 'update'] },
    {
      apiGroups: [''],
      resources: ['persistentvolumes'],
      verbs: ['list', 'get', 'update', 'watch', 'create', 'delete'],
    },
    { apiGroups: [''], resources: ['endpoints'], verbs: ['list', 'get', 'update', 'watch', 'create', 'delete'] },
    { apiGroups: [''], resources: ['events'], verbs: ['create', 'list', 'patch'] },
    { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['list', 'watch'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'create', 'delete'] },
    { apiGroups: [''], resources: ['nodes'], verbs: ['get'] },
  ];
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'hostpath-provisioner', labels, namespace: NAMESPACE },
      spec: {
        replicas: 1,
        revisionHistoryLimit: 0,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'microk8s-hostpath',
            nodeSelector: { 'kubernetes.io/hostname': PLAIN },
            tolerations: [{ key: 'hpp.test/real-node', operator: 'Exists', effect: 'NoSchedule' }],
            containers: [
              {
                name: 'hostpath-provisioner',
                image: ADDON_IMAGE,
                env: [
                  { name: 'NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                  { name: 'PV_DIR', value: DEFAULT_PV_DIR },
                  { name: 'BUSYBOX_IMAGE', value: 'busybox:1.28.4' },
                ],
                volumeMounts: [{ name: 'pv-volume', mountPath: DEFAULT_PV_DIR }],
              },
            ],
            volumes: [{ name: 'pv-volume', hostPath: { path: DEFAULT_PV_DIR } }],
          },
        },
      },
    },
    {
      kind: 'StorageClass',
      apiVersion: 'storage.k8s.io/v1',
      metadata: {
        name: 'microk8s-hostpath',
        annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
      },
      provisioner: 'microk8s.io/hostpath',
      reclaimPolicy: 'Delete',
      volumeBindingMode: 'WaitForFirstConsumer',
    },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'microk8s-hostpath', namespace: NAMESPACE } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'microk8s-hostpath' }, rules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'microk8s-hostpath' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'microk8s-hostpath' },
      subjects: [{ kind: 'ServiceAccount', name: 'microk8s-hostpath', namespace: NAMESPACE }],
    },
  ];
}

/**
 * A volume as the addon made it for claim `namespace/name` on `node`: the claim, then its PV named after the claim's
 * uid, pre-bound to it, with the addon's annotations and node affinity, and its directory
 * `<PV_DIR>/<namespace>-<claim>-<pv>` (mode 0777) holding a file. The PV controller binds the two.
 */
async function addonVolume(namespace: string, name: string, node: string): Promise<{ pv: string; dir: string }> {
  const created = await createClaim(namespace, claim(name));
  const pv = `pvc-${created.metadata!.uid!}`;
  const path = `${DEFAULT_PV_DIR}/${namespace}-${name}-${pv}`;
  const dir = nodePath(node, path);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o777);
  writeFileSync(join(dir, 'kept'), 'written under the addon\n');
  await core.createPersistentVolume({
    body: {
      metadata: {
        name: pv,
        annotations: { hostPathProvisionerIdentity: node, 'pv.kubernetes.io/provisioned-by': 'microk8s.io/hostpath' },
      },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Delete',
        storageClassName: 'microk8s-hostpath',
        hostPath: { path, type: 'DirectoryOrCreate' },
        nodeAffinity: {
          required: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] },
            ],
          },
        },
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name, uid: created.metadata!.uid! },
      },
    },
  });
  await waitForBound(namespace, name, { timeoutMs: 60_000 });
  return { pv, dir };
}

let addonPod: V1Pod | undefined;
let addonVolumeOf: { pv: string; dir: string };

beforeAll(async () => {
  for (const node of REAL_NODES) {
    if (!existsSync(join(CLUSTER_DIR, 'real', node, 'containerd', 'containerd.sock'))) {
      throw new Error(`real node ${node} is not running (HPP_REAL_NODES=0?)`);
    }
  }
  ns = await createTestNamespace('prod');
  // The addon as installed, with a volume it made; its pod cannot pull its image.
  writeFileSync(
    join(CLUSTER_DIR, 'addon.yaml'),
    addonObjects()
      .map((o) => JSON.stringify(o))
      .join('\n---\n'),
  );
  kubectl('apply', '-f', join(CLUSTER_DIR, 'addon.yaml'));
  addonPod = await waitFor(
    "the addon's pod failing to pull its image",
    async () =>
      (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: SELECTOR })).items.find((p) =>
        ['ErrImagePull', 'ImagePullBackOff'].includes(p.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? ''),
      ),
    { timeoutMs: 120_000, intervalMs: 1000 },
  );
  addonVolumeOf = await addonVolume(ns.name, 'addon-data', PLAIN);
  // `make image`, imported into the real nodes, and `kubectl apply -k` of the microk8s overlay over all of it.
  const deployed = spawnSync(
    'bash',
    [join(REPO_ROOT, 'e2e', 'image', 'deploy.sh'), 'manifests/overlays/microk8s', NAMESPACE],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 840_000,
      maxBuffer: 256 << 20,
    },
  );
  if (deployed.status !== 0) {
    throw new Error(`e2e/image/deploy.sh failed (${deployed.status ?? deployed.signal}): ${deployed.stderr}`);
  }
  overlay = deployed.stdout.trim().split('\n').pop() ?? '';
}, 1_000_000);

afterAll(async () => {
  await ns?.cleanup();
  // The StorageClass stays (the other files use it); everything else the overlay (or the addon, if the overlay was
  // never applied) made goes.
  const rendered = (overlay ? kubectl('kustomize', overlay) : readFileSync(join(CLUSTER_DIR, 'addon.yaml'), 'utf8'))
    .split(/^---$/m)
    .filter((doc) => !/^kind: StorageClass$|"kind":"StorageClass"/m.test(doc))
    .join('---\n');
  writeFileSync(join(CLUSTER_DIR, 'production-rendered.yaml'), rendered);
  kubectl(
    'delete',
    '-f',
    join(CLUSTER_DIR, 'production-rendered.yaml'),
    '--ignore-not-found',
    '--wait=true',
    '--timeout=90s',
  );
  await applyDefaultStorageClass();
}, 180_000);

describe('the image as a Deployment on real nodes', () => {
  let pods: V1Pod[] = [];

  it('runs both replicas from the image, Ready (probes pass), as 65532 with a read-only root file system', async () => {
    await waitFor(
      'Deployment kube-system/hostpath-provisioner available with 2 ready replicas',
      async () => {
        const d = await apps().readNamespacedDeployment({ name: 'hostpath-provisioner', namespace: NAMESPACE });
        return (d.status?.readyReplicas ?? 0) === 2 && (d.status?.updatedReplicas ?? 0) === 2;
      },
      { timeoutMs: 150_000, intervalMs: 1000 },
    );
    pods = (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: SELECTOR })).items.filter(
      (p) => p.status?.phase === 'Running',
    );
    expect(pods.map((p) => p.spec?.nodeName).sort()).toEqual([...REAL_NODES].sort());
    for (const pod of pods) {
      const status = pod.status?.containerStatuses?.[0];
      expect(status?.ready).toBe(true);
      expect(status?.image).toMatch(new RegExp(`hostpath-provisioner:${version.replace(/\./g, '\\.')}$`));
      expect(status?.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
      const pids = containerPids(status!.containerID!);
      expect(pids.length).toBeGreaterThan(0);
      const procStatus = readFileSync(`/proc/${pids[0]}/status`, 'utf8');
      expect(/^Uid:\s+(\d+)\s+(\d+)/m.exec(procStatus)?.slice(1)).toEqual(['65532', '65532']);
      expect(/^Gid:\s+(\d+)/m.exec(procStatus)?.[1]).toBe('65532');
      const rootMount = readFileSync(`/proc/${pids[0]}/mountinfo`, 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[4] === '/');
      expect(rootMount?.split(' ')[5]?.split(',')).toContain('ro');
    }
  });

  it('replaces the addon in place: its pod (which never pulled its image) is gone, its Deployment now runs ours', async () => {
    expect(addonPod?.spec?.containers[0]?.image).toBe(ADDON_IMAGE);
    const left = await waitFor(
      "the addon's pod gone",
      async () => {
        const pods = (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: SELECTOR })).items;
        return pods.some((p) => p.metadata?.name === addonPod?.metadata?.name) ? false : pods;
      },
      { timeoutMs: 90_000 },
    );
    expect(left.filter((p) => p.spec?.containers[0]?.image === ADDON_IMAGE)).toEqual([]);
    const d = await apps().readNamespacedDeployment({ name: 'hostpath-provisioner', namespace: NAMESPACE });
    expect(d.spec?.template.spec?.containers[0]?.image).toMatch(/hostpath-provisioner:/);
    expect(d.spec?.template.spec?.containers[0]?.image).not.toBe(ADDON_IMAGE);
    // The addon's hostPath mount is gone (ours needs none: helpers touch the node), its selector kept.
    expect(d.spec?.template.spec?.volumes).toBeUndefined();
    expect(d.spec?.selector?.matchLabels).toEqual({ 'k8s-app': 'hostpath-provisioner' });
    expect(d.spec?.strategy?.type).toBe('Recreate');
  });

  it("keeps the addon's volume: still Bound, its data read by a pod on its node; deleting the claim removes it", async () => {
    const { pv, dir } = addonVolumeOf;
    const bound = await readVolume(pv);
    expect(bound?.status?.phase).toBe('Bound');
    await ns.createPod(
      consumerPod('addon-reader', 'addon-data', 'cat /data/kept && echo read-by-a-real-kubelet >> /data/kept', {
        node: PLAIN,
        tolerations: [{ key: 'hpp.test/real-node', operator: 'Exists', effect: 'NoSchedule' }],
      }),
    );
    expect((await ns.waitForPhase('addon-reader', ['Succeeded', 'Failed'], { timeoutMs: 120_000 })).status?.phase).toBe(
      'Succeeded',
    );
    expect(readFileSync(join(dir, 'kept'), 'utf8')).toBe('written under the addon\nread-by-a-real-kubelet\n');
    await core.deleteNamespacedPod({ namespace: ns.name, name: 'addon-reader' });
    await ns.waitForPodGone('addon-reader', { timeoutMs: 60_000 });
    await core.deleteNamespacedPersistentVolumeClaim({ namespace: ns.name, name: 'addon-data' });
    await waitForVolumeGone(pv, { timeoutMs: 120_000 });
    expect(existsSync(dir)).toBe(false);
  });

  it('reads its configuration in-cluster from the mounted ServiceAccount token and holds the Lease', async () => {
    const logs = await Promise.all(
      pods.map((p) => core.readNamespacedPodLog({ name: p.metadata!.name!, namespace: NAMESPACE })),
    );
    // Nothing but the in-cluster configuration could have reached the API server: no kubeconfig is mounted.
    for (const pod of pods) {
      const c = pod.spec?.containers[0];
      expect(c?.args).toEqual(['run']);
      expect((c?.env ?? []).map((e) => e.name)).not.toContain('KUBECONFIG');
      expect(pod.spec?.serviceAccountName).toBe('microk8s-hostpath');
    }
    expect(logs.join('\n')).not.toMatch(/"level":(50|60)/);
    // The leader's identity is <node name>_<pid>_<random>: one of the two pods on the real nodes holds it.
    const lease = await waitFor(
      'the provisioner Lease held by one of the pods',
      async () =>
        (await ns.kc.makeApiClient(CoordinationV1Api).listNamespacedLease({ namespace: NAMESPACE })).items.find((l) =>
          REAL_NODES.some((n) => (l.spec?.holderIdentity ?? '').startsWith(`${n}_`)),
        ),
      { timeoutMs: 60_000 },
    );
    expect(lease.spec?.holderIdentity).toMatch(/^hpp-real-(plain|gpu)_\d+_[0-9a-f]+$/);
  });

  it("doctor, told only its namespace, checks it as its pods run it (the overlay's ServiceAccount) and shows their version", () => {
    const r = runDoctor(NAMESPACE, '--namespace', ns.name);
    const about = (subject: string) => r.findings.find((f) => f.subject === subject);
    expect(about('ServiceAccount kube-system/microk8s-hostpath')?.status).toBe('ok');
    expect(about('provisioner pods')?.status).toBe('ok');
    for (const pod of pods) {
      expect(about(`provisioner pod ${pod.metadata!.name!}`)?.summary).toMatch(
        new RegExp(`answers 200: ok: (leader|standby); version ${version.replace(/\./g, '\\.')}$`),
      );
    }
  });

  it('provisions a claim whose consumer tolerates the NoSchedule taint on the tainted real node, and deletes it', async () => {
    const taints = (await core.readNode({ name: GPU })).spec?.taints ?? [];
    await createClaim(ns.name, claim('prod'));
    await ns.createPod(
      consumerPod('prod-app', 'prod', 'echo from-the-image > /data/written', {
        node: GPU,
        tolerations: taints.map((t) => ({ key: t.key, operator: 'Equal', value: t.value ?? '', effect: t.effect })),
      }),
    );
    const pv = await waitForBound(ns.name, 'prod', { timeoutMs: 120_000 });
    expect(affinityHostname(pv)).toBe(GPU);
    // Provisioned by a replica of the Deployment (no provisioner process runs in this file).
    expect(pv.metadata?.annotations?.['hostPathProvisionerIdentity']).toMatch(/^hpp-real-(plain|gpu)$/);
    expect((await ns.waitForPhase('prod-app', ['Succeeded', 'Failed'], { timeoutMs: 120_000 })).status?.phase).toBe(
      'Succeeded',
    );
    const dir = volumeDirOnNode(GPU, pv);
    expect(modeOf(dir)).toBe(0o777);
    expect(readFileSync(join(dir, 'written'), 'utf8')).toBe('from-the-image\n');

    await core.deleteNamespacedPod({ namespace: ns.name, name: 'prod-app' });
    await ns.waitForPodGone('prod-app', { timeoutMs: 60_000 });
    await core.deleteNamespacedPersistentVolumeClaim({ namespace: ns.name, name: 'prod' });
    await waitForVolumeGone(pv.metadata!.name!, { timeoutMs: 120_000 });
    expect(existsSync(dir)).toBe(false);
  });

  it('quotes the log of a failed helper in the claim event (read from the real kubelet through the API server)', async () => {
    const taints = (await core.readNode({ name: GPU })).spec?.taints ?? [];
    const created = await createClaim(ns.name, claim('blocked'));
    // A regular file where the volume directory goes: the helper's mkdir fails on the node.
    const blocker = nodePath(GPU, `${DEFAULT_PV_DIR}/${ns.name}-blocked-pvc-${created.metadata!.uid}`);
    mkdirSync(dirname(blocker), { recursive: true });
    writeFileSync(blocker, 'not a directory');
    try {
      await ns.createPod(
        consumerPod('blocked-app', 'blocked', 'true', {
          node: GPU,
          tolerations: taints.map((t) => ({ key: t.key, operator: 'Equal', value: t.value ?? '', effect: t.effect })),
        }),
      );
      const event = await waitForEvent('PersistentVolumeClaim', 'blocked', ns.name, 'ProvisioningFailed', /code 1/, {
        timeoutMs: 120_000,
      });
      expect(event.type).toBe('Warning');
      expect(event.message).toMatch(/helper pod hostpath-create-pvc-\S+ on node hpp-real-gpu failed/);
      expect(event.message).toMatch(/File exists/);
    } finally {
      await core.deleteNamespacedPod({ namespace: ns.name, name: 'blocked-app', gracePeriodSeconds: 0 });
      await core.deleteNamespacedPersistentVolumeClaim({ namespace: ns.name, name: 'blocked' });
      rmSync(blocker, { force: true });
    }
  });

  it('keeps the working set under its memory limit through a burst of claims (kubelet stats), and survives a rolling restart', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `burst-${i}`);
    const tolerations = [{ key: 'hpp.test/real-node', operator: 'Exists', effect: 'NoSchedule' }];
    for (const name of names) {
      await createClaim(ns.name, claim(name));
      await ns.createPod(consumerPod(`${name}-app`, name, 'echo burst > /data/written', { node: PLAIN, tolerations }));
    }
    const volumes = await Promise.all(names.map((name) => waitForBound(ns.name, name, { timeoutMs: 180_000 })));
    const limit = 256 * 1024 * 1024;
    for (const node of REAL_NODES) {
      // The kubelet's summary API through the API server's node proxy (the node's address is not loopback).
      const summary = JSON.parse(kubectl('get', '--raw', `/api/v1/nodes/${node}/proxy/stats/summary`)) as {
        pods: {
          podRef: { name: string; namespace: string };
          containers?: { memory?: { workingSetBytes?: number } }[];
        }[];
      };
      const own = summary.pods.filter(
        (p) => p.podRef.namespace === NAMESPACE && pods.some((q) => q.metadata?.name === p.podRef.name),
      );
      expect(own).toHaveLength(1);
      const workingSet = own[0]?.containers?.[0]?.memory?.workingSetBytes ?? 0;
      expect(workingSet).toBeGreaterThan(16 * 1024 * 1024);
      expect(workingSet).toBeLessThan(limit);
    }

    kubectl('rollout', 'restart', '-n', NAMESPACE, 'deployment/hostpath-provisioner');
    kubectl('rollout', 'status', '-n', NAMESPACE, 'deployment/hostpath-provisioner', '--timeout=150s');
    const restarted = (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: SELECTOR })).items;
    const oldNames = pods.map((p) => p.metadata?.name);
    const running = restarted.filter((p) => p.status?.phase === 'Running');
    expect(running).toHaveLength(2);
    expect(running.filter((p) => oldNames.includes(p.metadata?.name))).toEqual([]);
    // Nothing lost: every volume is still bound to its claim, and a new claim is served by the new replicas.
    for (const [i, pv] of volumes.entries()) {
      const now = await core.readPersistentVolume({ name: pv.metadata!.name! });
      expect(now.status?.phase).toBe('Bound');
      expect(now.spec?.claimRef?.name).toBe(names[i]);
    }
    await createClaim(ns.name, claim('after-restart'));
    await ns.createPod(
      consumerPod('after-restart-app', 'after-restart', 'echo again > /data/written', {
        node: PLAIN,
        tolerations,
      }),
    );
    const pv = await waitForBound(ns.name, 'after-restart', { timeoutMs: 120_000 });
    expect(affinityHostname(pv)).toBe(PLAIN);
  });
});
