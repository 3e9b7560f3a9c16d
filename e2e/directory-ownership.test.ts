/**
 * A directory is removed only for the PV it was provisioned for: a hand-made PV that claims to be ours, is named like
 * the end of a live volume's directory (so the name-suffix rule alone would accept it) and points at that directory,
 * is refused with a Warning when it is released — the live volume's data stays and its claim stays Bound.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { provisionerSuite } from './support/suite.js';
import {
  claim,
  consumerPod,
  core,
  createClaim,
  readClaim,
  volumeDirOnNode,
  waitForBound,
  waitForEvent,
} from './support/volumes.js';

const suite = provisionerSuite('ownership');

describe('deletion removes only the PV’s own directory', () => {
  it('a hand-made PV named like the end of a live volume directory does not remove it', async () => {
    const ns = suite.ns.name;
    await createClaim(ns, claim('live'));
    await suite.ns.createPod(consumerPod('live-app', 'live', 'echo precious > /data/keep', { node: 'hpp-plain' }));
    const pv = await waitForBound(ns, 'live');
    await suite.ns.waitForPhase('live-app', ['Succeeded']);
    const dir = volumeDirOnNode('hpp-plain', pv);
    const suffix = pv.metadata!.name!.split('-').at(-1)!; // the last group of the uid: a dash-suffix of the directory
    await core.createPersistentVolume({
      body: {
        metadata: {
          name: suffix,
          annotations: {
            'pv.kubernetes.io/provisioned-by': 'microk8s.io/hostpath',
            hostPathProvisionerIdentity: 'hpp-plain',
          },
        },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Delete',
          storageClassName: 'microk8s-hostpath',
          hostPath: { path: pv.spec!.hostPath!.path },
          claimRef: { namespace: ns, name: 'ghost', uid: '00000000-0000-0000-0000-000000000000' },
          nodeAffinity: pv.spec!.nodeAffinity!,
        },
      },
    });
    try {
      const event = await waitForEvent('PersistentVolume', suffix, '', 'VolumeFailedDelete', /refusing to remove/);
      expect(event.message).toMatch(/another PersistentVolume \(pvc-[0-9a-f-]+\) points at the same directory/);
      expect(readFileSync(`${dir}/keep`, 'utf8')).toBe('precious\n');
      expect((await readClaim(ns, 'live')).status?.phase).toBe('Bound');
      expect(suite.helpers.seen.has(`hostpath-delete-${suffix}`)).toBe(false);
    } finally {
      // Ours now (the finalizer was added): remove it by hand; the live volume is left to the suite's cleanup.
      await core.deletePersistentVolume({ name: suffix }).catch(() => undefined);
      await core
        .patchPersistentVolume({ name: suffix, body: [{ op: 'remove', path: '/metadata/finalizers' }] })
        .catch(() => undefined);
    }
    expect(existsSync(dir)).toBe(true);
  });
});
