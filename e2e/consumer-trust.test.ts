/**
 * The selected node of a claim is trusted only for a pod waiting for that claim (review H3): anyone who may write a
 * claim can set `volume.kubernetes.io/selected-node`, but a helper runs on a tainted node only for a pod that mounts
 * the claim and tolerates that node's taints. A hand-annotated claim with no pod, or with a pod that cannot run
 * there (an untolerated taint, or a nodeSelector or required node affinity the node does not match), gets a
 * ProvisioningFailed event saying why — naming the taints or the selector — and no helper pod anywhere.
 */
import { describe, expect, it } from '@jest/globals';
import { provisionerSuite } from './support/suite.js';
import { claim, consumerPod, createClaim, readClaim, waitForBound, waitForEvent } from './support/volumes.js';

const suite = provisionerSuite('trust');
const NODE = 'hpp-noexec';

/** A claim annotated by hand for NODE, as a tenant could write it. */
function annotated(name: string) {
  const c = claim(name);
  c.metadata!.annotations = { 'volume.kubernetes.io/selected-node': NODE };
  return c;
}

/** No helper of this claim was ever made. */
function expectNoHelper(claimName: string): void {
  const mine = [...suite.helpers.seen.values()].filter(
    (h) => h.metadata?.annotations?.['hostpath-provisioner.io/claim'] === `${suite.ns.name}/${claimName}`,
  );
  expect(mine.map((h) => h.metadata?.name)).toEqual([]);
}

describe('a selected node is used only for a pod waiting for the claim', () => {
  it('a claim annotated for a tainted node with no pod: a clear event, no helper, no volume', async () => {
    await createClaim(suite.ns.name, annotated('no-pod'));
    const event = await waitForEvent('PersistentVolumeClaim', 'no-pod', suite.ns.name, 'ProvisioningFailed');
    expect(event.message).toBe(
      `no Pending pod mounts this claim: its selected node ${NODE} is used only for a pod waiting for the claim ` +
        '(the annotation volume.kubernetes.io/selected-node alone is not trusted); create the pod, or remove the annotation',
    );
    expectNoHelper('no-pod');
    expect((await readClaim(suite.ns.name, 'no-pod')).status?.phase).toBe('Pending');
  });

  it('a claim annotated for a tainted node whose pod does not tolerate it: the event names the taint, no helper', async () => {
    await createClaim(suite.ns.name, annotated('intruder'));
    // Pinned to the node without its toleration: the scheduler cannot place it anywhere, the annotation stays.
    await suite.ns.createPod(consumerPod('intruder-app', 'intruder', 'true', { node: NODE }));
    const event = await waitForEvent(
      'PersistentVolumeClaim',
      'intruder',
      suite.ns.name,
      'ProvisioningFailed',
      /tolerates/,
    );
    expect(event.message).toBe(
      `no pod that mounts this claim tolerates the taints of its selected node ${NODE} (dedicated=db:NoExecute); ` +
        'no helper pod is started there — add the tolerations to the pod, or let the scheduler choose the node',
    );
    expectNoHelper('intruder');
  });

  it('a claim annotated for a tainted node whose pod tolerates it but selects other nodes: no helper', async () => {
    await createClaim(suite.ns.name, annotated('elsewhere'));
    // It tolerates the node's taint, but its nodeSelector rules the node out: the scheduler would never put it there.
    const pod = consumerPod('elsewhere-app', 'elsewhere', 'true', {
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoExecute' }],
    });
    pod.spec!.nodeSelector = { 'kubernetes.io/hostname': 'no-such-node' };
    await suite.ns.createPod(pod);
    const event = await waitForEvent(
      'PersistentVolumeClaim',
      'elsewhere',
      suite.ns.name,
      'ProvisioningFailed',
      /may run/,
    );
    expect(event.message).toBe(
      `no pod that mounts this claim may run on its selected node ${NODE}: pod elsewhere-app has nodeSelector ` +
        "kubernetes.io/hostname=no-such-node that the node does not match; no helper pod is started there — fix the pod's " +
        'node selection, or let the scheduler choose the node',
    );
    expectNoHelper('elsewhere');
    expect((await readClaim(suite.ns.name, 'elsewhere')).status?.phase).toBe('Pending');
  });

  it('the same claim binds once a pod that tolerates the node waits for it', async () => {
    await suite.ns.createPod(
      consumerPod('tenant-app', 'intruder', 'echo ok > /data/f', {
        node: NODE,
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoExecute' }],
      }),
    );
    const pv = await waitForBound(suite.ns.name, 'intruder');
    const helper = suite.helpers.seen.get(`hostpath-create-${pv.metadata!.name}`);
    expect(helper?.spec?.tolerations).toContainEqual({
      key: 'dedicated',
      operator: 'Equal',
      value: 'db',
      effect: 'NoExecute',
    });
    // A create helper runs at normal priority: only deletes free disk under pressure.
    expect(helper?.spec?.priorityClassName).toBeUndefined();
    await suite.ns.waitForPhase('tenant-app', ['Succeeded']);
  });

  it('a generic ephemeral volume: the pod that owns the claim is its consumer, so it binds on the tainted node', async () => {
    await suite.ns.createPod({
      metadata: { name: 'eph' },
      spec: {
        restartPolicy: 'Never',
        terminationGracePeriodSeconds: 1,
        nodeSelector: { 'kubernetes.io/hostname': 'hpp-gpu' },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }],
        containers: [
          {
            name: 'main',
            image: 'busybox:1.36',
            command: ['sh', '-c', 'echo ok > /scratch/f'],
            volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }],
          },
        ],
        volumes: [
          {
            name: 'scratch',
            ephemeral: {
              volumeClaimTemplate: {
                spec: {
                  storageClassName: 'microk8s-hostpath',
                  accessModes: ['ReadWriteOnce'],
                  resources: { requests: { storage: '1Gi' } },
                },
              },
            },
          },
        ],
      },
    });
    const pv = await waitForBound(suite.ns.name, 'eph-scratch');
    expect(pv.spec?.nodeAffinity?.required?.nodeSelectorTerms[0]?.matchExpressions?.[0]?.values).toEqual(['hpp-gpu']);
    await suite.ns.waitForPhase('eph', ['Succeeded']);
  });
});
