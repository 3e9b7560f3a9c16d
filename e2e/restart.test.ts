/**
 * C10: restarts mid-provisioning and bursts. A SIGKILL right after a helper was created, with or without the claim
 * deleted meanwhile, ends with exactly one PV per live claim and no helper left; a burst of claims all bind with
 * unique helper names and identical directory modes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, waitFor, type TestNamespace } from './support/cluster.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  claim,
  consumerPod,
  core,
  createClaim,
  liveHelpers,
  modeOf,
  readClaim,
  readVolume,
  recordHelpers,
  volumeDirOnNode,
  waitForBound,
  type HelperRecorder,
  drainNamespace,
} from './support/volumes.js';

let ns: TestNamespace;
let provisioner: Provisioner | undefined;
let namespace: string;
let helpers: HelperRecorder;

beforeAll(async () => {
  await applyDefaultStorageClass();
  provisioner = await startProvisioner();
  namespace = provisioner.namespace;
  helpers = await recordHelpers(namespace);
  ns = await createTestNamespace('restart');
});

afterAll(async () => {
  // Let the provisioner clean up this file's volumes before it stops.
  if (ns) await drainNamespace(ns);
  helpers?.stop();
  await provisioner?.stop();
});

/** Creates a claim and its pod, then SIGKILLs the provisioner as soon as the create helper exists. */
async function killAfterHelperCreated(name: string): Promise<string> {
  await createClaim(ns.name, claim(name));
  await ns.createPod(consumerPod(`${name}-app`, name, 'echo ok > /data/f', { node: 'hpp-plain' }));
  const helper = await waitFor(
    `create helper for ${name}`,
    () =>
      [...helpers.seen.values()].find(
        (h) => h.metadata?.annotations?.['hostpath-provisioner.io/claim'] === `${ns.name}/${name}`,
      ),
    { intervalMs: 20 },
  );
  await provisioner!.stop('SIGKILL');
  provisioner = undefined;
  return helper.metadata!.annotations!['hostpath-provisioner.io/volume-name']!;
}

describe('restarts', () => {
  it('C10 A: SIGKILL right after the helper was created, then restart: exactly one PV, claim Bound, no helper left', async () => {
    const pvName = await killAfterHelperCreated('killed');
    provisioner = await startProvisioner({ namespace });
    const pv = await waitForBound(ns.name, 'killed');
    expect(pv.metadata!.name).toBe(pvName);
    const ours = (await core.listPersistentVolume()).items.filter(
      (v) => v.spec?.claimRef?.name === 'killed' && v.spec.claimRef.namespace === ns.name,
    );
    expect(ours).toHaveLength(1);
    await ns.waitForPhase('killed-app', ['Succeeded']);
    await waitFor('no helper left', async () => (await liveHelpers(namespace)).length === 0);
  });

  it('C10 B: claim deleted while the provisioner is down: no PV, no helper left', async () => {
    const pvName = await killAfterHelperCreated('orphan');
    await core.deleteNamespacedPod({ name: 'orphan-app', namespace: ns.name, gracePeriodSeconds: 0 });
    await core.deleteNamespacedPersistentVolumeClaim({ name: 'orphan', namespace: ns.name });
    await waitFor('claim gone', () =>
      readClaim(ns.name, 'orphan').then(
        () => false,
        () => true,
      ),
    );
    provisioner = await startProvisioner({ namespace });
    await waitFor('no helper left', async () => (await liveHelpers(namespace)).length === 0);
    // Let the provisioner settle: it must not create a PV for the deleted claim.
    await new Promise((r) => setTimeout(r, 2000));
    expect(await readVolume(pvName)).toBeUndefined();
  });

  it('C10 C: 10 claims and 10 pods at once: all Bound, unique helper names, identical directory modes', async () => {
    const names = Array.from({ length: 10 }, (_, i) => `burst-${i}`);
    await Promise.all(
      names.map(async (name) => {
        await createClaim(ns.name, claim(name));
        await ns.createPod(consumerPod(`${name}-app`, name, 'echo ok > /data/f', { node: 'hpp-plain' }));
      }),
    );
    const pvs = await Promise.all(names.map((name) => waitForBound(ns.name, name, { timeoutMs: 120_000 })));
    expect(new Set(pvs.map((pv) => pv.metadata!.name)).size).toBe(10);
    const helperNames = pvs.map((pv) => `hostpath-create-${pv.metadata!.name}`);
    for (const h of helperNames) expect(helpers.seen.has(h)).toBe(true);
    expect(pvs.map((pv) => modeOf(volumeDirOnNode('hpp-plain', pv)))).toEqual(Array(10).fill(0o777));
    await waitFor('no helper left', async () => (await liveHelpers(namespace)).length === 0);
  });
});
