/**
 * C05: the node is deleted before the volume. No helper is created for a node that does not exist; a Warning on the
 * PV says the data cannot be cleaned; the PV stays Released (node-gone-policy keep); other claims keep provisioning.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, restartNodeAgent, waitFor, type TestNamespace } from './support/cluster.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  claim,
  consumerPod,
  core,
  createClaim,
  readVolume,
  recordHelpers,
  waitForBound,
  waitForEvent,
  type HelperRecorder,
} from './support/volumes.js';

let ns: TestNamespace;
let provisioner: Provisioner;
let helpers: HelperRecorder;
let deletedNode = false;

beforeAll(async () => {
  await applyDefaultStorageClass();
  provisioner = await startProvisioner();
  helpers = await recordHelpers(provisioner.namespace);
  ns = await createTestNamespace('nodegone');
});

afterAll(async () => {
  helpers?.stop();
  await provisioner?.stop();
  await ns?.cleanup();
  if (deletedNode) await restartNodeAgent();
});

describe('node gone', () => {
  it('C05 node deleted before the volume: no helper, a Warning on the PV, the PV kept, others unaffected', async () => {
    await createClaim(ns.name, claim('doomed'));
    await ns.createPod(consumerPod('doomed-app', 'doomed', 'echo x > /data/f', { node: 'hpp-doomed' }));
    const pv = await waitForBound(ns.name, 'doomed');
    await ns.waitForPhase('doomed-app', ['Succeeded']);
    await core.deleteNamespacedPod({ name: 'doomed-app', namespace: ns.name, gracePeriodSeconds: 0 });
    await ns.waitForPodGone('doomed-app');

    deletedNode = true;
    await core.deleteNode({ name: 'hpp-doomed' });
    await core.deleteNamespacedPersistentVolumeClaim({ name: 'doomed', namespace: ns.name });
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
    expect(helpers.seen.has(`hostpath-delete-${pv.metadata!.name}`)).toBe(false);

    // No head-of-line blocking: another claim provisions meanwhile.
    await createClaim(ns.name, claim('other'));
    await ns.createPod(consumerPod('other-app', 'other', 'true', { node: 'hpp-plain' }));
    await waitForBound(ns.name, 'other');
    await waitFor('still no delete helper', () => !helpers.seen.has(`hostpath-delete-${pv.metadata!.name}`));

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
