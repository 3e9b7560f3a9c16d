/**
 * Real nodes (e2e/cluster/real-nodes.sh): a kubelet v1.37 with its own containerd and runc, not the node stand-in.
 * - A claim on the WaitForFirstConsumer class whose consumer tolerates dedicated=gpu binds on hpp-real-gpu; the
 *   helper and the consumer run as real containers, the consumer's file lands in that node's folder, and deleting
 *   the claim removes the directory.
 * - The reduced helper privileges: a helper pod as the provisioner builds it (buildHelperPod) with capabilities
 *   DAC_OVERRIDE and FOWNER only (ALL dropped first), seccomp RuntimeDefault, a read-only root file system and no
 *   privilege escalation still creates, lists and removes directories of another user with restrictive modes; with
 *   no capability at all the same removal fails (so the capabilities, not some other leniency, are what works).
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import type { V1Pod, V1SecurityContext, V1Taint, V1Toleration } from '@kubernetes/client-node';
import { buildHelperPod } from '../src/domain/helper-pod.js';
import { parseListOutput } from '../controllers/orphan-report.js';
import { nodePath, shellPod } from './support/cluster.js';
import { provisionerSuite } from './support/suite.js';
import {
  affinityHostname,
  claim,
  consumerPod,
  core,
  createClaim,
  modeOf,
  readVolume,
  volumeDirOnNode,
  waitForBound,
  waitForVolumeGone,
} from './support/volumes.js';

const GPU = 'hpp-real-gpu';
const PLAIN = 'hpp-real-plain';
const suite = provisionerSuite('real');

const toleration = (t: V1Taint): V1Toleration =>
  t.value
    ? { key: t.key, operator: 'Equal', value: t.value, effect: t.effect }
    : { key: t.key, operator: 'Exists', effect: t.effect };

async function nodeTaints(node: string): Promise<V1Taint[]> {
  return (await core.readNode({ name: node })).spec?.taints ?? [];
}

/** A container ID from a real runtime ("containerd://<64 hex>"), not the stand-in's. */
const CONTAINERD_ID = /^containerd:\/\/[0-9a-f]{64}$/;

describe('real kubelet nodes', () => {
  it('are Ready real kubelets with the harness taints, on a bridge address, with containerd', async () => {
    for (const name of [PLAIN, GPU]) {
      const node = await core.readNode({ name });
      expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      expect(node.status?.nodeInfo?.kubeletVersion).toBe('v1.37.2');
      expect(node.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\/1\./);
      expect(node.metadata?.labels?.['kubernetes.io/hostname']).toBe(name);
      expect(node.metadata?.labels?.['hpp.test/real-node']).toBe('true');
      const internal = node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? '';
      expect(internal).toMatch(/^10\.\d+\.\d+\.1$/);
    }
    expect(await nodeTaints(PLAIN)).toEqual([{ key: 'hpp.test/real-node', value: 'true', effect: 'NoSchedule' }]);
    expect(await nodeTaints(GPU)).toEqual([
      { key: 'hpp.test/real-node', value: 'true', effect: 'NoSchedule' },
      { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' },
    ]);
  });

  it('bind a WaitForFirstConsumer claim on the tainted real node; the pod writes there; deletion removes it', async () => {
    const ns = suite.ns.name;
    const taints = await nodeTaints(GPU);
    await createClaim(ns, claim('real-gpu'));
    await suite.ns.createPod(
      consumerPod('real-gpu-app', 'real-gpu', 'echo "written on $(hostname)" > /data/written && cat /data/written', {
        node: GPU,
        tolerations: taints.map(toleration),
      }),
    );
    const pv = await waitForBound(ns, 'real-gpu', { timeoutMs: 120_000 });
    expect(affinityHostname(pv)).toBe(GPU);
    const app = await suite.ns.waitForPhase('real-gpu-app', ['Succeeded', 'Failed'], { timeoutMs: 120_000 });
    expect(app.status?.phase).toBe('Succeeded');
    expect(app.spec?.nodeName).toBe(GPU);
    expect(app.status?.containerStatuses?.[0]?.containerID).toMatch(CONTAINERD_ID);
    // The pod's log, through the API server from the kubelet (node serving certificate, webhook authn/authz).
    expect((await suite.ns.podLog('real-gpu-app')).trim()).toBe('written on real-gpu-app');

    // The helper ran on the same real node, as a real container.
    const helper = suite.helpers.seen.get(`hostpath-create-${pv.metadata!.name}`);
    expect(helper?.spec?.nodeName).toBe(GPU);
    const dir = volumeDirOnNode(GPU, pv);
    expect(modeOf(dir)).toBe(0o777);
    expect(readdirSync(dir)).toEqual(['written']);

    await core.deleteNamespacedPod({ namespace: ns, name: 'real-gpu-app' });
    await suite.ns.waitForPodGone('real-gpu-app', { timeoutMs: 60_000 });
    await core.deleteNamespacedPersistentVolumeClaim({ namespace: ns, name: 'real-gpu' });
    await waitForVolumeGone(pv.metadata!.name!, { timeoutMs: 120_000 });
    expect(existsSync(dir)).toBe(false);
    const deleter = suite.helpers.seen.get(`hostpath-delete-${pv.metadata!.name}`);
    expect(deleter?.spec?.nodeName).toBe(GPU);
    expect(await readVolume(pv.metadata!.name!)).toBeUndefined();
  });

  it('fail to pull an image that was not imported, as from an unreachable registry', async () => {
    // A registry on a closed loopback port: a real pull attempt that never leaves this machine.
    const image = '127.0.0.1:1/hostpath-provisioner-test/not-imported:1';
    await suite.ns.createPod(
      shellPod('not-imported', 'true', { node: PLAIN, tolerations: (await nodeTaints(PLAIN)).map(toleration), image }),
    );
    const pod = await suite.ns.waitForPod(
      'not-imported',
      'image pull failure',
      (p) =>
        ['ErrImagePull', 'ImagePullBackOff'].includes(p.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? ''),
      { timeoutMs: 60_000 },
    );
    expect(pod.spec?.nodeName).toBe(PLAIN);
    expect(pod.status?.containerStatuses?.[0]?.state?.waiting?.message ?? '').toMatch(/connection refused/);
    await core.deleteNamespacedPod({ namespace: suite.ns.name, name: 'not-imported', gracePeriodSeconds: 0 });
  });
});

/** The helper container's security context the reduced-privilege helper pods run with. */
const REDUCED: V1SecurityContext = {
  runAsUser: 0,
  runAsGroup: 0,
  privileged: false,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  seccompProfile: { type: 'RuntimeDefault' },
  capabilities: { drop: ['ALL'], add: ['DAC_OVERRIDE', 'FOWNER'] },
};

describe('helper pods with reduced privileges on a real kubelet', () => {
  const base = '/var/snap/hpp-real-caps';
  const hostBase = nodePath(PLAIN, base);
  let n = 0;

  /**
   * Runs one helper on hpp-real-plain until it ends, exactly as buildHelperPod makes it — or with `securityContext`
   * instead of the product's own (the control case).
   */
  async function runHelper(
    operation: 'create' | 'delete' | 'list',
    directoryName: string,
    securityContext?: V1SecurityContext,
  ): Promise<{ pod: V1Pod; log: string }> {
    const pod = buildHelperPod({
      operation,
      volumeName: `caps-${++n}`,
      namespace: suite.ns.name,
      nodeName: PLAIN,
      baseDirectory: base,
      directoryName,
      image: 'busybox:1.37.0',
      tolerations: (await nodeTaints(PLAIN)).map(toleration),
      priorityClassName: '',
      activeDeadlineSeconds: 60,
    });
    // The product's helper runs with exactly the reduced set this test is about.
    expect(pod.spec!.containers[0]!.securityContext).toMatchObject(REDUCED);
    if (securityContext) pod.spec!.containers[0]!.securityContext = securityContext;
    const name = pod.metadata!.name!;
    await suite.ns.createPod(pod);
    const done = await suite.ns.waitForPhase(name, ['Succeeded', 'Failed'], { timeoutMs: 90_000 });
    const log = await suite.ns.podLog(name);
    await core.deleteNamespacedPod({ namespace: suite.ns.name, name, gracePeriodSeconds: 0 });
    return { pod: done, log };
  }

  it('create, list and remove directories of uid 1234 with modes 0700/0600 using DAC_OVERRIDE and FOWNER only', async () => {
    rmSync(hostBase, { recursive: true, force: true });
    // The base directory and a volume in it belong to another user and let nobody else in.
    mkdirSync(`${hostBase}/victim/nested`, { recursive: true });
    writeFileSync(`${hostBase}/victim/secret`, 'x', { mode: 0o600 });
    writeFileSync(`${hostBase}/victim/nested/deeper`, 'y', { mode: 0o600 });
    for (const p of ['victim/nested/deeper', 'victim/nested', 'victim/secret', 'victim', '']) {
      chownSync(`${hostBase}/${p}`, 1234, 1234);
    }
    chmodSync(`${hostBase}/victim/nested`, 0o700);
    chmodSync(`${hostBase}/victim`, 0o700);
    chmodSync(hostBase, 0o700);

    // Without any capability root cannot even enter the base directory: the removal fails.
    const denied = await runHelper('delete', 'victim', { ...REDUCED, capabilities: { drop: ['ALL'] } });
    expect(denied.pod.status?.phase).toBe('Failed');
    expect(denied.log).toMatch(/Permission denied/);
    expect(existsSync(`${hostBase}/victim/secret`)).toBe(true);

    const created = await runHelper('create', 'made');
    expect(created.pod.status?.phase).toBe('Succeeded');
    expect(created.pod.status?.containerStatuses?.[0]?.containerID).toMatch(CONTAINERD_ID);
    expect(modeOf(`${hostBase}/made`)).toBe(0o777);

    const listed = await runHelper('list', '');
    expect(listed.pod.status?.phase).toBe('Succeeded');
    // Names, then what du measured of each: on a real kubelet, as a pod with the reduced privileges.
    const output = parseListOutput(listed.log);
    expect(output.names.sort()).toEqual(['made', 'victim']);
    expect(output.complete).toBe(true);
    expect([...output.usedBytes.keys()].sort()).toEqual(['made', 'victim']);
    expect(output.usedBytes.get('victim')).toBeGreaterThanOrEqual(4096);

    const removed = await runHelper('delete', 'victim');
    expect(removed.pod.status?.phase).toBe('Succeeded');
    expect(existsSync(`${hostBase}/victim`)).toBe(false);
    expect(readdirSync(hostBase)).toEqual(['made']);
    rmSync(hostBase, { recursive: true, force: true });
  });
});
