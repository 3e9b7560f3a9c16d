/**
 * Compatibility with what the MicroK8s addon served: a claim that names its class only with the beta annotation
 * `volume.beta.kubernetes.io/storage-class` binds (the PV controller and the scheduler resolve the class that way,
 * and so do we), and a PV made by an addon release that wrote no node affinity is cleaned up on the node its
 * `hostPathProvisionerIdentity` annotation names.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { nodePath, waitFor } from './support/cluster.js';
import { provisionerSuite } from './support/suite.js';
import {
  affinityHostname,
  consumerPod,
  core,
  createClaim,
  DEFAULT_PV_DIR,
  volumeDirOnNode,
  waitForBound,
  waitForVolumeGone,
} from './support/volumes.js';

const suite = provisionerSuite('compat');

describe('compatibility with the addon', () => {
  it('a claim naming its class only by the beta annotation binds, and its PV carries that class', async () => {
    const body: V1PersistentVolumeClaim = {
      metadata: { name: 'beta', annotations: { 'volume.beta.kubernetes.io/storage-class': 'microk8s-hostpath' } },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    };
    const created = await createClaim(suite.ns.name, body);
    // The DefaultStorageClass admission leaves a claim with the beta annotation alone: no spec class is filled in.
    expect(created.spec?.storageClassName).toBeUndefined();
    await suite.ns.createPod(consumerPod('beta-app', 'beta', 'echo beta > /data/f', { node: 'hpp-plain' }));
    const pv = await waitForBound(suite.ns.name, 'beta');
    expect(pv.spec?.storageClassName).toBe('microk8s-hostpath');
    expect(affinityHostname(pv)).toBe('hpp-plain');
    await suite.ns.waitForPhase('beta-app', ['Succeeded']);
    expect(existsSync(`${volumeDirOnNode('hpp-plain', pv)}/f`)).toBe(true);
  });

  it('an old addon PV without node affinity, released with reclaim policy Delete, is cleaned on the node its identity names', async () => {
    const name = `pvc-${randomUUID()}`;
    const path = `${DEFAULT_PV_DIR}/${suite.ns.name}-old-${name}`;
    const dir = nodePath('hpp-gpu', path);
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/data`, 'old\n');
    // As the addon wrote it before node affinity: hostPath, its node in the identity annotation, and a claimRef to a
    // claim that is gone (so the PV controller marks it Released and leaves the deletion to us). It carries our
    // finalizer as every Delete PV does once we have seen it bound (a PV created and released within milliseconds
    // races the finalizer's addition with its cleanup: see the report of this change).
    await core.createPersistentVolume({
      body: {
        metadata: {
          name,
          annotations: {
            'pv.kubernetes.io/provisioned-by': 'microk8s.io/hostpath',
            hostPathProvisionerIdentity: 'hpp-gpu',
          },
          finalizers: ['external-provisioner.volume.kubernetes.io/finalizer'],
        },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Delete',
          storageClassName: 'microk8s-hostpath',
          hostPath: { path },
          claimRef: {
            apiVersion: 'v1',
            kind: 'PersistentVolumeClaim',
            namespace: suite.ns.name,
            name: 'old',
            uid: randomUUID(),
          },
        },
      },
    });
    await waitForVolumeGone(name, { timeoutMs: 90_000 });
    expect(existsSync(dir)).toBe(false);
    // The delete helper ran on hpp-gpu (tolerating its taint), the node the identity annotation names.
    const helper = await waitFor('the delete helper of the old PV', () =>
      suite.helpers.seen.get(`hostpath-delete-${name}`),
    );
    expect(helper.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution).toEqual({
      nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['hpp-gpu'] }] }],
    });
  });
});
