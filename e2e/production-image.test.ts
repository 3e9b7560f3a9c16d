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
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { AppsV1Api, CoordinationV1Api, type V1Pod } from '@kubernetes/client-node';
import {
  CLUSTER_DIR,
  clusterEnv,
  createTestNamespace,
  kubeconfigPath,
  nodePath,
  REPO_ROOT,
  waitFor,
  type TestNamespace,
} from './support/cluster.js';
import { applyDefaultStorageClass } from './support/provisioner.js';
import {
  affinityHostname,
  claim,
  consumerPod,
  core,
  createClaim,
  DEFAULT_PV_DIR,
  modeOf,
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
const overlay = join(CLUSTER_DIR, 'production-overlay');
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

/** The overlay a user would not need: only loopback networking and placement on the real nodes. */
function writeOverlay(apiServerPort: string): void {
  mkdirSync(overlay, { recursive: true });
  writeFileSync(
    join(overlay, 'kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ${relative(overlay, join(REPO_ROOT, 'manifests', 'overlays', 'microk8s'))}
images:
  - name: hostpath-provisioner
    newTag: "${version}"
patches:
  - target: { kind: Deployment, name: hostpath-provisioner }
    patch: |
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: hostpath-provisioner
      spec:
        template:
          spec:
            hostNetwork: true
            dnsPolicy: ClusterFirstWithHostNet
            nodeSelector:
              hpp.test/real-node: "true"
            tolerations:
              - { key: hpp.test/real-node, operator: Exists, effect: NoSchedule }
              - { key: dedicated, operator: Exists, effect: NoSchedule }
            containers:
              - name: hostpath-provisioner
                env:
                  - { name: KUBERNETES_SERVICE_HOST, value: 127.0.0.1 }
                  - { name: KUBERNETES_SERVICE_PORT, value: "${apiServerPort}" }
                  - name: POD_IP
                    valueFrom: { fieldRef: { fieldPath: status.podIP } }
                  - { name: METRICS_ADDRESS, value: "$(POD_IP):9090" }
`,
  );
}

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

beforeAll(async () => {
  const built = spawnSync('bash', [join(REPO_ROOT, 'e2e', 'image', 'build.sh')], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 840_000,
    maxBuffer: 256 << 20,
  });
  if (built.status !== 0) throw new Error(`make image failed (${built.status ?? built.signal}): ${built.stderr}`);
  for (const node of REAL_NODES) {
    const socket = join(CLUSTER_DIR, 'real', node, 'containerd', 'containerd.sock');
    if (!existsSync(socket)) throw new Error(`real node ${node} is not running (HPP_REAL_NODES=0?)`);
    run(
      'ctr',
      ['--address', socket, '-n', 'k8s.io', 'images', 'import', join(REPO_ROOT, 'dist', 'image.tar')],
      180_000,
    );
  }
  writeOverlay(clusterEnv().APISERVER_PORT ?? '');
  kubectl('apply', '-k', overlay);
  ns = await createTestNamespace('prod');
}, 900_000);

afterAll(async () => {
  await ns?.cleanup();
  // The StorageClass stays (the other files use it); everything else the overlay made goes.
  const rendered = kubectl('kustomize', overlay)
    .split(/^---$/m)
    .filter((doc) => !/^kind: StorageClass$/m.test(doc))
    .join('---\n');
  writeFileSync(join(overlay, 'rendered.yaml'), rendered);
  kubectl('delete', '-f', join(overlay, 'rendered.yaml'), '--ignore-not-found', '--wait=true', '--timeout=90s');
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
