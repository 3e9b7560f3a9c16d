/**
 * Informer resilience: kube-apiserver is restarted (every watch and connection breaks, etcd keeps every object) in the
 * middle of a burst of 30 claims, half of them created while it is down or just back. All bind, one PV each, each
 * directory exists with mode 0777, no helper is left, and the provisioner never exits.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, restartApiServer, waitFor, type TestNamespace } from './support/cluster.js';
import { logOf } from './support/faults.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  claim,
  consumerPod,
  core,
  createClaim,
  liveHelpers,
  modeOf,
  volumeDirOnNode,
  waitForBound,
  drainNamespace,
} from './support/volumes.js';

let ns: TestNamespace;
let provisioner: Provisioner;

beforeAll(async () => {
  await applyDefaultStorageClass();
  // A renew deadline longer than the outage: this test is about informers, not about losing the Lease (a leader that
  // cannot renew for the renew deadline exits, as client-go's does, and its Deployment restarts it).
  provisioner = await startProvisioner({ args: ['--lease-duration', '90', '--renew-deadline', '60'] });
  ns = await createTestNamespace('apirestart');
});

afterAll(async () => {
  // Let the provisioner clean up this file's volumes before it stops.
  if (ns) await drainNamespace(ns);
  await provisioner?.stop();
});

/** Creates the claim and its consumer, retrying while the API server is unreachable. */
async function createWithRetry(name: string): Promise<void> {
  await waitFor(
    `claim ${name} created`,
    async () => {
      try {
        await createClaim(ns.name, claim(name));
      } catch (err) {
        if ((err as { code?: number }).code !== 409) throw err;
      }
      return true;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  await waitFor(
    `pod ${name}-app created`,
    async () => {
      try {
        await ns.createPod(consumerPod(`${name}-app`, name, 'echo ok > /data/f', { node: 'hpp-plain' }));
      } catch (err) {
        if ((err as { code?: number }).code !== 409) throw err;
      }
      return true;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
}

describe('informer resilience', () => {
  it('kube-apiserver restarted during a burst of 30 claims: all Bound, one PV each, nothing left behind', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `burst-${i}`);
    await Promise.all(names.slice(0, 15).map(createWithRetry));
    const restart = restartApiServer(3);
    // The other half while the API server is going down, down, and coming back.
    await new Promise((r) => setTimeout(r, 500));
    await Promise.all(names.slice(15).map(createWithRetry));
    await restart;

    const pvs = await Promise.all(names.map((n) => waitForBound(ns.name, n, { timeoutMs: 150_000 })));
    expect(new Set(pvs.map((pv) => pv.metadata?.name)).size).toBe(30);
    const all = (await core.listPersistentVolume()).items.filter((v) => v.spec?.claimRef?.namespace === ns.name);
    expect(all).toHaveLength(30);
    expect(pvs.map((pv) => modeOf(volumeDirOnNode('hpp-plain', pv)))).toEqual(Array(30).fill(0o777));
    await waitFor('no helper left', async () => (await liveHelpers(provisioner.namespace)).length === 0, {
      timeoutMs: 60_000,
    });
    expect(provisioner.child.exitCode).toBeNull();
    // The informers saw their watches break (and, as every claim above bound, came back by themselves).
    const broken = logOf(provisioner)
      .split('\n')
      .filter((l) => l.includes('"informer":"persistentvolumeclaims"') && l.includes('"level":"warn"'));
    expect(broken.length).toBeGreaterThan(0);
  });
});
