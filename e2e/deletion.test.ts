/**
 * Deletion: the directory is removed exactly when the reclaim policy says so, by a helper that tolerates the node's
 * taints as they are at delete time; a failed rm keeps the PV and is retried. C04, C15.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { provisionerSuite } from './support/suite.js';
import { waitFor } from './support/cluster.js';
import {
  claim,
  consumerPod,
  core,
  createClaim,
  liveHelpers,
  readVolume,
  volumeDirOnNode,
  waitForBound,
  waitForEvent,
  waitForVolumeGone,
} from './support/volumes.js';
import { PatchStrategy, setHeaderOptions, type V1Taint } from '@kubernetes/client-node';

const suite = provisionerSuite('delete');

const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** A claim bound on `node` with a file written by its pod; the pod is deleted again. Returns the PV and its dir. */
async function boundVolume(name: string, node: string, script = 'echo data > /data/file') {
  await createClaim(suite.ns.name, claim(name));
  await suite.ns.createPod(consumerPod(`${name}-app`, name, script, { node }));
  const pv = await waitForBound(suite.ns.name, name);
  await suite.ns.waitForPhase(`${name}-app`, ['Succeeded']);
  await core.deleteNamespacedPod({ name: `${name}-app`, namespace: suite.ns.name });
  await suite.ns.waitForPodGone(`${name}-app`);
  const dir = volumeDirOnNode(node, pv);
  expect(existsSync(`${dir}/file`)).toBe(true);
  return { pv, dir };
}

async function deleteClaim(name: string): Promise<void> {
  await core.deleteNamespacedPersistentVolumeClaim({ name, namespace: suite.ns.name });
}

async function setTaints(node: string, taints: V1Taint[]): Promise<void> {
  await core.patchNode({ name: node, body: { spec: { taints } } }, MERGE);
}

describe('deletion', () => {
  it('removes the directory and the PV when the claim is deleted (reclaim policy Delete)', async () => {
    const { pv, dir } = await boundVolume('plain-delete', 'hpp-plain');
    expect(pv.metadata?.finalizers).toContain('external-provisioner.volume.kubernetes.io/finalizer');
    await deleteClaim('plain-delete');
    await waitForVolumeGone(pv.metadata!.name!);
    expect(existsSync(dir)).toBe(false);
    await waitFor('no helper left', async () => (await liveHelpers(suite.provisioner.namespace)).length === 0);
  });

  it('C04 taint appears before delete: cordoned node', async () => {
    const { pv, dir } = await boundVolume('cordon', 'hpp-plain');
    await core.patchNode({ name: 'hpp-plain', body: { spec: { unschedulable: true } } }, MERGE);
    try {
      await waitFor('cordon taint', async () =>
        ((await core.readNode({ name: 'hpp-plain' })).spec?.taints ?? []).some(
          (t) => t.key === 'node.kubernetes.io/unschedulable',
        ),
      );
      await deleteClaim('cordon');
      await waitForVolumeGone(pv.metadata!.name!);
      expect(existsSync(dir)).toBe(false);
      const helper = suite.helpers.seen.get(`hostpath-delete-${pv.metadata!.name}`);
      expect(helper?.spec?.nodeName).toBe('hpp-plain');
      expect(helper?.spec?.tolerations).toEqual(
        expect.arrayContaining([{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }]),
      );
    } finally {
      await core.patchNode({ name: 'hpp-plain', body: { spec: { unschedulable: false } } }, MERGE);
    }
  });

  it('C04 taint appears before delete: a custom NoSchedule taint added after the volume was made', async () => {
    const { pv, dir } = await boundVolume('late-taint', 'hpp-plain');
    const taint = { key: 'maintenance', value: 'disk', effect: 'NoSchedule' };
    await setTaints('hpp-plain', [taint]);
    try {
      await deleteClaim('late-taint');
      await waitForVolumeGone(pv.metadata!.name!);
      expect(existsSync(dir)).toBe(false);
      const helper = suite.helpers.seen.get(`hostpath-delete-${pv.metadata!.name}`);
      expect(helper?.spec?.tolerations).toEqual(
        expect.arrayContaining([{ key: 'maintenance', operator: 'Equal', value: 'disk', effect: 'NoSchedule' }]),
      );
    } finally {
      await setTaints('hpp-plain', []);
    }
  });

  it('C15 delete removes files of any owner, in a 0700 subdirectory written by uid 1001', async () => {
    await createClaim(suite.ns.name, claim('owned'));
    await suite.ns.createPod(
      consumerPod('owned-app', 'owned', 'mkdir -m 0700 /data/private && echo secret > /data/private/file', {
        node: 'hpp-plain',
        runAsUser: 1001,
      }),
    );
    const pv = await waitForBound(suite.ns.name, 'owned');
    await suite.ns.waitForPhase('owned-app', ['Succeeded']);
    const dir = volumeDirOnNode('hpp-plain', pv);
    expect(existsSync(`${dir}/private/file`)).toBe(true);
    await core.deleteNamespacedPod({ name: 'owned-app', namespace: suite.ns.name });
    await suite.ns.waitForPodGone('owned-app');
    await deleteClaim('owned');
    await waitForVolumeGone(pv.metadata!.name!);
    expect(existsSync(dir)).toBe(false);
  });

  it("C15 delete fails: VolumeFailedDelete with rm's error, the PV stays, and it is retried until rm succeeds", async () => {
    const { pv, dir } = await boundVolume('stuck', 'hpp-plain');
    mkdirSync(`${dir}/sub`, { recursive: true });
    writeFileSync(`${dir}/sub/immutable`, 'x');
    chmodSync(`${dir}/sub/immutable`, 0o644);
    execFileSync('chattr', ['+i', `${dir}/sub/immutable`]);
    try {
      await deleteClaim('stuck');
      const event = await waitForEvent('PersistentVolume', pv.metadata!.name!, '', 'VolumeFailedDelete', /rm/);
      expect(event.type).toBe('Warning');
      expect(event.message).toMatch(/Operation not permitted/);
      expect(await readVolume(pv.metadata!.name!)).toBeDefined();
      expect(existsSync(`${dir}/sub/immutable`)).toBe(true);
    } finally {
      execFileSync('chattr', ['-i', `${dir}/sub/immutable`]);
    }
    await waitForVolumeGone(pv.metadata!.name!, { timeoutMs: 90_000 });
    expect(existsSync(dir)).toBe(false);
  });

  it('kubectl delete pv of a Released volume still removes the directory (finalizer)', async () => {
    const { pv, dir } = await boundVolume('by-hand', 'hpp-plain');
    await core.deletePersistentVolume({ name: pv.metadata!.name! });
    // Bound PVs are protected until their claim goes; deleting the claim releases it and the cleanup runs.
    expect(existsSync(dir)).toBe(true);
    await deleteClaim('by-hand');
    await waitForVolumeGone(pv.metadata!.name!);
    expect(existsSync(dir)).toBe(false);
  });
});
