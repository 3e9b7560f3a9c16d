/**
 * C16 Retain: a class with reclaim policy Retain keeps the data through claim deletion, class re-creation and a
 * manual PV delete — and PV_RECLAIM_POLICY=Delete in the environment never turns Retain into Delete.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { provisionerSuite } from './support/suite.js';
import { waitFor } from './support/cluster.js';
import {
  applyStorageClass,
  claim,
  consumerPod,
  core,
  createClaim,
  readVolume,
  volumeDirOnNode,
  waitForBound,
  waitForVolumeGone,
} from './support/volumes.js';

const keep = {
  metadata: { name: 'keep' },
  provisioner: 'microk8s.io/hostpath',
  volumeBindingMode: 'WaitForFirstConsumer',
  reclaimPolicy: 'Retain',
};

const suite = provisionerSuite('retain', {
  setup: () => applyStorageClass(keep),
  provisioner: { env: { PV_RECLAIM_POLICY: 'Delete' } },
});

describe('Retain', () => {
  it('C16 Retain keeps the data through claim deletion, class re-creation and a manual PV delete', async () => {
    await createClaim(suite.ns.name, claim('kept', { className: 'keep' }));
    await suite.ns.createPod(consumerPod('kept-app', 'kept', 'echo precious > /data/file', { node: 'hpp-plain' }));
    const pv = await waitForBound(suite.ns.name, 'kept');
    expect(pv.spec?.persistentVolumeReclaimPolicy).toBe('Retain');
    expect(pv.metadata?.finalizers ?? []).not.toContain('external-provisioner.volume.kubernetes.io/finalizer');
    await suite.ns.waitForPhase('kept-app', ['Succeeded']);
    const file = `${volumeDirOnNode('hpp-plain', pv)}/file`;
    expect(readFileSync(file, 'utf8')).toBe('precious\n');

    await core.deleteNamespacedPod({ name: 'kept-app', namespace: suite.ns.name });
    await suite.ns.waitForPodGone('kept-app');
    await core.deleteNamespacedPersistentVolumeClaim({ name: 'kept', namespace: suite.ns.name });
    await waitFor('PV Released', async () => (await readVolume(pv.metadata!.name!))?.status?.phase === 'Released');
    await applyStorageClass(keep);
    // Give the provisioner time to see the Released PV and the re-created class (it must not act).
    await new Promise((r) => setTimeout(r, 3000));
    expect(existsSync(file)).toBe(true);
    await core.deletePersistentVolume({ name: pv.metadata!.name! });
    await waitForVolumeGone(pv.metadata!.name!);
    expect(readFileSync(file, 'utf8')).toBe('precious\n');
    expect(suite.helpers.seen.has(`hostpath-delete-${pv.metadata!.name}`)).toBe(false);
  });
});
