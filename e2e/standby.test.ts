/**
 * Bounded memory on a standby (review M8): a replica that does not hold the Lease keeps warm caches but enqueues
 * nothing — its queues never run, so every key would stay there until it led. Hundreds of claims come and go while it
 * waits; its work queue depth stays 0, and once it takes over it still serves a new claim.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, waitFor, type TestNamespace } from './support/cluster.js';
import { FAST_LEASE_ARGS, roleOf, waitForOneLeader } from './support/faults.js';
import { sumOf } from './support/metrics.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import { applyStorageClass, claim, core, createClaim, drainNamespace, storage } from './support/volumes.js';

const CLASS = 'hpp-standby-immediate';
const CLAIMS = 300;

let ns: TestNamespace;
const replicas: Provisioner[] = [];

beforeAll(async () => {
  await applyDefaultStorageClass();
  await applyStorageClass({
    metadata: { name: CLASS },
    provisioner: 'microk8s.io/hostpath',
    volumeBindingMode: 'Immediate',
    reclaimPolicy: 'Delete',
  });
  const first = await startProvisioner({ args: FAST_LEASE_ARGS });
  replicas.push(first, await startProvisioner({ namespace: first.namespace, args: FAST_LEASE_ARGS }));
  ns = await createTestNamespace('standby');
});

afterAll(async () => {
  if (ns) await drainNamespace(ns);
  for (const p of replicas) await p.stop();
  await storage.deleteStorageClass({ name: CLASS }).catch(() => undefined);
});

describe('a standby replica', () => {
  it(`enqueues nothing while ${CLAIMS} claims come and go`, async () => {
    const leader = await waitForOneLeader(replicas);
    const standby = replicas.find((p) => p !== leader)!;
    expect(await roleOf(standby)).toBe('standby');
    // Refused at once by the leader (block volumes), so the burst costs no helpers.
    for (let i = 0; i < CLAIMS; i += 25) {
      await Promise.all(
        Array.from({ length: Math.min(25, CLAIMS - i) }, (_, j) =>
          createClaim(ns.name, claim(`c-${i + j}`, { className: CLASS, volumeMode: 'Block' })),
        ),
      );
    }
    await waitFor('every claim created', async () => {
      const claims = await core.listNamespacedPersistentVolumeClaim({ namespace: ns.name });
      return claims.items.length === CLAIMS;
    });
    await core.deleteCollectionNamespacedPersistentVolumeClaim({ namespace: ns.name });
    await waitFor(
      'the claims gone',
      async () => (await core.listNamespacedPersistentVolumeClaim({ namespace: ns.name })).items.length === 0,
    );
    const metrics = await standby.metrics();
    expect(sumOf(metrics, 'hostpath_provisioner_workqueue_depth', { queue: 'claims' })).toBe(0);
    expect(sumOf(metrics, 'hostpath_provisioner_workqueue_depth', { queue: 'volumes' })).toBe(0);
    expect(sumOf(metrics, 'hostpath_provisioner_leader')).toBe(0);
  });

  it('still serves a claim once it takes over', async () => {
    const leader = await waitForOneLeader(replicas);
    await leader.stop('SIGKILL');
    const next = await waitForOneLeader(replicas.filter((p) => p !== leader));
    await createClaim(ns.name, claim('after', { className: CLASS }));
    await waitFor('the claim Bound', async () => {
      const c = await core.readNamespacedPersistentVolumeClaim({ name: 'after', namespace: ns.name });
      return c.status?.phase === 'Bound';
    });
    expect(await roleOf(next)).toBe('leader');
  });
});
