/**
 * Smoke tests of the local cluster: the real control plane plus the node agent (e2e/node-agent) behave like a
 * cluster a provisioner can be tested on.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoordinationV1Api, Health, PatchStrategy, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import {
  clusterEnv,
  createTestNamespace,
  insecureGet,
  nodePath,
  shellPod,
  waitFor,
  type TestNamespace,
} from './support/cluster.js';

const PLAIN = 'hpp-plain';
const GPU = 'hpp-gpu';
const NOEXEC = 'hpp-noexec';
const gpuToleration = { key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' };

let ns: TestNamespace;

beforeAll(async () => {
  ns = await createTestNamespace('smoke');
}, 60_000);

afterAll(async () => {
  await ns.cleanup();
});

describe('control plane', () => {
  it('has a ready API server and healthy scheduler and controller-manager', async () => {
    expect(await new Health(ns.kc).readyz({})).toBe(true);
    const env = clusterEnv();
    for (const port of [env.KCM_PORT, env.SCHEDULER_PORT]) {
      const res = await insecureGet(`https://127.0.0.1:${port}/healthz`);
      expect(res).toEqual({ status: 200, body: 'ok' });
    }
  });

  it('has the three nodes Ready, without the not-ready taint, with fresh Leases', async () => {
    const nodes = (await ns.core.listNode()).items;
    const byName = new Map(nodes.map((n) => [n.metadata?.name ?? '', n]));
    for (const name of [PLAIN, GPU, NOEXEC]) {
      const node = byName.get(name) as V1Node;
      expect(node).toBeDefined();
      expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      expect((node.spec?.taints ?? []).map((t) => t.key)).not.toContain('node.kubernetes.io/not-ready');
    }
    expect(byName.get(GPU)?.spec?.taints).toEqual([{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }]);
    expect(byName.get(NOEXEC)?.spec?.taints).toEqual([{ key: 'dedicated', value: 'db', effect: 'NoExecute' }]);
    const lease = await ns.kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: PLAIN, namespace: 'kube-node-lease' });
    expect(lease.spec?.holderIdentity).toBe(PLAIN);
    expect(Date.now() - new Date(lease.spec?.renewTime ?? 0).getTime()).toBeLessThan(40_000);
  });
});

describe('scheduling on a NoSchedule node', () => {
  it('leaves a pod without the toleration Pending as Unschedulable, and runs one with it', async () => {
    await ns.createPod(shellPod('gpu-untolerated', 'sleep 300', { node: GPU }));
    await ns.createPod(shellPod('gpu-tolerated', 'sleep 300', { node: GPU, tolerations: [gpuToleration] }));

    const running = await ns.waitForPhase('gpu-tolerated', ['Running']);
    expect(running.spec?.nodeName).toBe(GPU);
    expect(running.status?.containerStatuses?.[0]?.state?.running?.startedAt).toBeDefined();

    const pending = await ns.waitForPod('gpu-untolerated', 'PodScheduled=False', (p) =>
      Boolean(p.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False')),
    );
    const cond = pending.status?.conditions?.find((c) => c.type === 'PodScheduled');
    expect(cond?.reason).toBe('Unschedulable');
    expect(cond?.message).toMatch(/untolerated taint/);
    expect(pending.status?.phase).toBe('Pending');
    expect(pending.spec?.nodeName).toBeUndefined();
  }, 60_000);
});

describe('pods on a node', () => {
  it('bind-mounts a hostPath volume from the node folder and serves the output through pods/log', async () => {
    const dir = `/var/lib/hpp-smoke/${ns.name}`;
    await ns.createPod(
      shellPod('writer', 'echo "written by $(hostname)" > /data/hello.txt && cat /data/hello.txt && echo done', {
        node: PLAIN,
        volumes: [{ name: 'data', hostPath: { path: dir, type: 'DirectoryOrCreate' } }],
        volumeMounts: [{ name: 'data', mountPath: '/data' }],
      }),
    );
    const done = await ns.waitForPhase('writer', ['Succeeded', 'Failed']);
    expect(done.status?.phase).toBe('Succeeded');
    expect(done.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    const file = nodePath(PLAIN, `${dir}/hello.txt`);
    expect(readFileSync(file, 'utf8')).toBe('written by writer\n');
    // The mount lived in the container's own mount namespace: the host's /data is untouched.
    expect(existsSync('/data/hello.txt')).toBe(false);
    expect(await ns.podLog('writer')).toBe('written by writer\ndone\n');
  }, 60_000);

  it('reports a failing container as Failed with its exit code', async () => {
    await ns.createPod(shellPod('failing', 'echo oops >&2; exit 3', { node: PLAIN }));
    const failed = await ns.waitForPhase('failing', ['Succeeded', 'Failed']);
    expect(failed.status?.phase).toBe('Failed');
    expect(failed.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(await ns.podLog('failing')).toBe('oops\n');
  }, 60_000);

  it('shows ErrImagePull then ImagePullBackOff for an image that does not exist', async () => {
    await ns.createPod(shellPod('no-image', 'true', { node: PLAIN, image: 'example.com/does-not-exist:1' }));
    const reasons = new Set<string>();
    await waitFor(
      'ImagePullBackOff after ErrImagePull',
      async () => {
        const p = await ns.core.readNamespacedPod({ name: 'no-image', namespace: ns.name });
        const reason = p.status?.containerStatuses?.[0]?.state?.waiting?.reason;
        if (reason) reasons.add(reason);
        expect(p.status?.phase).toBe('Pending');
        return reasons.has('ErrImagePull') && reasons.has('ImagePullBackOff');
      },
      { intervalMs: 100 },
    );
  }, 60_000);

  it('restarts an OnFailure container, runs as runAsUser and keeps the previous log', async () => {
    const dir = `/var/lib/hpp-smoke/${ns.name}-restart`;
    const pod = shellPod(
      'retry',
      'echo "run as $(id -u):$(id -g)"; [ -e /work/once ] && exit 0; touch /work/once; exit 1',
      {
        node: PLAIN,
        restartPolicy: 'OnFailure',
        volumes: [{ name: 'work', hostPath: { path: dir, type: 'DirectoryOrCreate' } }],
        volumeMounts: [{ name: 'work', mountPath: '/work' }],
      },
    );
    pod.spec!.securityContext = { runAsUser: 1000, runAsGroup: 3000 };
    // A folder uid 1000 may write to (DirectoryOrCreate would make it root's 0755).
    mkdirSync(nodePath(PLAIN, dir), { recursive: true });
    chmodSync(nodePath(PLAIN, dir), 0o777);
    await ns.createPod(pod);
    const done = await ns.waitForPhase('retry', ['Succeeded', 'Failed'], { timeoutMs: 30_000 });
    expect(done.status?.phase).toBe('Succeeded');
    const status = done.status?.containerStatuses?.[0];
    expect(status?.restartCount).toBeGreaterThanOrEqual(1);
    expect(status?.lastState?.terminated).toMatchObject({ exitCode: 1, reason: 'Error' });
    expect(await ns.podLog('retry')).toBe('run as 1000:3000\n');
    const previous = await ns.core.readNamespacedPodLog({ name: 'retry', namespace: ns.name, previous: true });
    expect(previous).toBe('run as 1000:3000\n');
  }, 60_000);

  it('removes a deleted running pod', async () => {
    await ns.createPod(shellPod('sleeper', 'sleep 300', { node: PLAIN }));
    await ns.waitForPhase('sleeper', ['Running']);
    await ns.core.deleteNamespacedPod({ name: 'sleeper', namespace: ns.name });
    await ns.waitForPodGone('sleeper', { timeoutMs: 20_000 });
  }, 60_000);

  it('evicts a running pod that does not tolerate a new NoExecute taint', async () => {
    const taint = { key: 'hpp.test/evict', value: ns.name, effect: 'NoExecute' };
    await ns.createPod(shellPod('evicted', 'sleep 300', { node: GPU, tolerations: [gpuToleration] }));
    await ns.createPod(
      shellPod('survivor', 'sleep 300', {
        node: GPU,
        tolerations: [gpuToleration, { key: 'hpp.test/evict', operator: 'Exists', effect: 'NoExecute' }],
      }),
    );
    await ns.waitForPhase('evicted', ['Running']);
    await ns.waitForPhase('survivor', ['Running']);
    const patchOpts = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
    const node = await ns.core.readNode({ name: GPU });
    const taints = node.spec?.taints ?? [];
    await ns.core.patchNode(
      {
        name: GPU,
        body: [
          { op: 'test', path: '/metadata/resourceVersion', value: node.metadata?.resourceVersion },
          { op: 'replace', path: '/spec/taints', value: [...taints, taint] },
        ],
      },
      patchOpts,
    );
    try {
      await ns.waitForPodGone('evicted', { timeoutMs: 30_000 });
      const survivor = await ns.core.readNamespacedPod({ name: 'survivor', namespace: ns.name });
      expect(survivor.status?.phase).toBe('Running');
      expect(survivor.metadata?.deletionTimestamp).toBeUndefined();
    } finally {
      const now = await ns.core.readNode({ name: GPU });
      await ns.core.patchNode(
        {
          name: GPU,
          body: [
            { op: 'replace', path: '/spec/taints', value: (now.spec?.taints ?? []).filter((t) => t.key !== taint.key) },
          ],
        },
        patchOpts,
      );
    }
  }, 60_000);
});
