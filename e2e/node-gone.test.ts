/**
 * C05: the node is deleted before the volume. No helper is created for a node that does not exist; a Warning on the
 * PV says the data cannot be cleaned; the PV stays Released (node-gone-policy keep); other claims keep provisioning.
 */
import { describe, expect, it } from '@jest/globals';
import { provisionerSuite } from './support/suite.js';
import { restartNodeAgent, waitFor } from './support/cluster.js';
import { claim, consumerPod, core, createClaim, readVolume, waitForBound, waitForEvent } from './support/volumes.js';

let deletedNode = false;

const suite = provisionerSuite('nodegone', {
  teardown: async () => {
    if (deletedNode) await restartNodeAgent();
  },
});

describe('node gone', () => {
  it('C05 node deleted before the volume: no helper, a Warning on the PV, the PV kept, others unaffected', async () => {
    await createClaim(suite.ns.name, claim('doomed'));
    await suite.ns.createPod(consumerPod('doomed-app', 'doomed', 'echo x > /data/f', { node: 'hpp-doomed' }));
    const pv = await waitForBound(suite.ns.name, 'doomed');
    await suite.ns.waitForPhase('doomed-app', ['Succeeded']);
    await core.deleteNamespacedPod({ name: 'doomed-app', namespace: suite.ns.name, gracePeriodSeconds: 0 });
    await suite.ns.waitForPodGone('doomed-app');

    deletedNode = true;
    await core.deleteNode({ name: 'hpp-doomed' });
    await core.deleteNamespacedPersistentVolumeClaim({ name: 'doomed', namespace: suite.ns.name });
    const event = await waitForEvent(
      'PersistentVolume',
      pv.metadata!.name!,
      '',
      'VolumeFailedDelete',
      /no longer exists/,
    );
    expect(event.type).toBe('Warning');
    expect(event.message).toContain('hpp-doomed');
    expect(event.message).toContain('node-gone-policy=keep');
    expect((await readVolume(pv.metadata!.name!))?.status?.phase).toBe('Released');
    expect(suite.helpers.seen.has(`hostpath-delete-${pv.metadata!.name}`)).toBe(false);

    // No head-of-line blocking: another claim provisions meanwhile.
    await createClaim(suite.ns.name, claim('other'));
    await suite.ns.createPod(consumerPod('other-app', 'other', 'true', { node: 'hpp-plain' }));
    await waitForBound(suite.ns.name, 'other');
    await waitFor('still no delete helper', () => !suite.helpers.seen.has(`hostpath-delete-${pv.metadata!.name}`));

    // Clean up the kept PV by hand (its data is on a node that no longer exists).
    await core.deletePersistentVolume({ name: pv.metadata!.name! });
    await core
      .patchPersistentVolume({
        name: pv.metadata!.name!,
        body: [{ op: 'replace', path: '/metadata/finalizers', value: [] }],
      })
      .catch(() => undefined);
  });
});
