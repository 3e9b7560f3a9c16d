/**
 * Leader election on the real control plane: replicas sharing a namespace share the Lease `microk8s.io-hostpath`;
 * exactly one leads and only it creates helpers; a killed leader is replaced within the lease duration and the new
 * leader finishes the pending work; SIGTERM releases the Lease; a leader that lost the Lease exits.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, waitFor, type TestNamespace } from './support/cluster.js';
import {
  FAST_LEASE_ARGS,
  LEASE_NAME,
  leaderGauge,
  logLines,
  pause,
  readLease,
  readLeaseRaw,
  resume,
  roleOf,
  waitForOneLeader,
  watchObjects,
} from './support/faults.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  claim,
  consumerPod,
  core,
  createClaim,
  liveHelpers,
  volumeDirOnNode,
  waitForBound,
  drainNamespace,
} from './support/volumes.js';
import { existsSync } from 'node:fs';

/** Lease duration passed in FAST_LEASE_ARGS, seconds. */
const LEASE_SECONDS = 6;

let ns: TestNamespace;
let namespace: string;
const replicas: Provisioner[] = [];

async function replica(): Promise<Provisioner> {
  const p = await startProvisioner({ ...(namespace ? { namespace } : {}), args: FAST_LEASE_ARGS });
  namespace = p.namespace;
  replicas.push(p);
  return p;
}

function alive(p: Provisioner): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/** PVs bound to a claim of the test namespace. */
async function volumesOf(claimName: string) {
  return (await core.listPersistentVolume()).items.filter(
    (v) => v.spec?.claimRef?.namespace === ns.name && v.spec.claimRef.name === claimName,
  );
}

beforeAll(async () => {
  await applyDefaultStorageClass();
  ns = await createTestNamespace('leader');
});

afterAll(async () => {
  for (const p of replicas) if (alive(p)) resume(p);
  // Let a live replica clean up this file's volumes before they stop.
  if (ns && replicas.some(alive)) await drainNamespace(ns);
  else await ns?.cleanup();
  for (const p of replicas) if (alive(p)) await p.stop('SIGKILL');
});

describe('leader election', () => {
  let leader: Provisioner;
  let standby: Provisioner;

  it('two replicas: exactly one leads (readyz, metric, Lease), only the leader creates helpers, Lease times in microseconds', async () => {
    const a = await replica();
    const b = await replica();
    leader = await waitForOneLeader([a, b]);
    standby = leader === a ? b : a;
    expect(await roleOf(standby)).toBe('standby');
    expect(await leaderGauge(leader)).toBe(1);
    expect(await leaderGauge(standby)).toBe(0);

    const raw = await readLeaseRaw(namespace);
    expect(String(raw.spec?.holderIdentity)).toContain(`_${leader.child.pid}_`);
    expect(raw.spec?.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(raw.spec?.acquireTime).toMatch(/\.\d{6}Z$/);
    expect(raw.spec?.leaseDurationSeconds).toBe(LEASE_SECONDS);
    // The Lease keeps being renewed (the API server accepts the MicroTime writes).
    const first = String(raw.spec?.renewTime);
    await waitFor('a renewal', async () => String((await readLeaseRaw(namespace)).spec?.renewTime) !== first);

    await createClaim(ns.name, claim('one'));
    await ns.createPod(consumerPod('one-app', 'one', 'echo ok > /data/f', { node: 'hpp-plain' }));
    const pv = await waitForBound(ns.name, 'one');
    await ns.waitForPhase('one-app', ['Succeeded']);
    expect(existsSync(volumeDirOnNode('hpp-plain', pv))).toBe(true);
    expect(logLines(leader, /^created helper pod$/).length).toBeGreaterThanOrEqual(1);
    expect(logLines(standby, /^created helper pod$/)).toHaveLength(0);
    expect(logLines(standby, /^provisioned volume$/)).toHaveLength(0);
    for (const p of [leader, standby]) expect(logLines(p, /Lease attempt failed|could not release/)).toHaveLength(0);
  });

  it('kill -9 of the leader: the standby takes over within the lease duration and finishes the pending work', async () => {
    // The leader is frozen first, so the claim below is pending work it cannot touch.
    pause(leader);
    await createClaim(ns.name, claim('pending'));
    await ns.createPod(consumerPod('pending-app', 'pending', 'echo ok > /data/f', { node: 'hpp-plain' }));
    await waitFor('selected node on the claim', async () => {
      const c = await core.readNamespacedPersistentVolumeClaim({ name: 'pending', namespace: ns.name });
      return c.metadata?.annotations?.['volume.kubernetes.io/selected-node'] === 'hpp-plain';
    });
    const killedAt = Date.now();
    await leader.stop('SIGKILL');
    await waitFor('the standby to lead', async () => (await roleOf(standby)) === 'leader', {
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    const takeover = (Date.now() - killedAt) / 1000;
    // Expiry is judged from when the standby last saw a renewal (≤ lease duration), plus one jittered retry.
    expect(takeover).toBeLessThan(LEASE_SECONDS + 1 * 2.2 + 1);
    const pv = await waitForBound(ns.name, 'pending');
    await ns.waitForPhase('pending-app', ['Succeeded']);
    expect(await volumesOf('pending')).toHaveLength(1);
    expect(existsSync(volumeDirOnNode('hpp-plain', pv))).toBe(true);
    expect(logLines(standby, /^created helper pod$/).length).toBeGreaterThanOrEqual(1);
    await waitFor('no helper left', async () => (await liveHelpers(namespace)).length === 0);
    leader = standby;
  });

  it('SIGTERM of the leader releases the Lease (holder cleared) and the standby takes over at once', async () => {
    standby = await replica();
    expect(await waitForOneLeader([leader, standby])).toBe(leader);
    const holders: string[] = [];
    const w = await watchObjects(
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      { fieldSelector: `metadata.name=${LEASE_NAME}` },
      (_type, lease: { spec?: { holderIdentity?: string } }) => {
        const h = lease.spec?.holderIdentity ?? '';
        if (holders[holders.length - 1] !== h) holders.push(h);
      },
    );
    try {
      const stoppedAt = Date.now();
      expect(await leader.stop('SIGTERM')).toBe(0);
      expect(logLines(leader, /^released the Lease$/)).toHaveLength(1);
      await waitFor('the standby to lead', async () => (await roleOf(standby)) === 'leader', { intervalMs: 100 });
      // Well under the lease duration: the released Lease (holder '', duration 1 s) is taken on the next retry.
      expect((Date.now() - stoppedAt) / 1000).toBeLessThan(LEASE_SECONDS);
      await waitFor('the watch to see the new holder', () =>
        holders[holders.length - 1]?.includes(`_${standby.child.pid}_`),
      );
      expect(holders.slice(-2)).toEqual(['', expect.stringContaining(`_${standby.child.pid}_`)]);
      const lease = await readLease(namespace);
      expect(lease?.spec?.leaseTransitions).toBeGreaterThanOrEqual(2);
    } finally {
      w.stop();
    }
    leader = standby;
  });

  it('a leader frozen past its lease loses it to the standby and exits when it resumes, without acting', async () => {
    standby = await replica();
    expect(await waitForOneLeader([leader, standby])).toBe(leader);
    pause(leader);
    await waitFor('the standby to lead', async () => (await roleOf(standby)) === 'leader', { timeoutMs: 30_000 });
    const helpersBefore = logLines(leader, /^created helper pod$/).length;
    resume(leader);
    const code = await Promise.race([
      leader.exited,
      new Promise<string>((r) => setTimeout(() => r('still running'), 15_000)),
    ]);
    expect(code).toBe(1);
    expect(logLines(leader, /lost the Lease|leadership lost/).length).toBeGreaterThanOrEqual(1);
    expect(logLines(leader, /^created helper pod$/)).toHaveLength(helpersBefore);
    expect(await roleOf(standby)).toBe('leader');
  });
});
