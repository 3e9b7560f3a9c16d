/**
 * H1 of the 2026-12-03 review, on the real control plane: hundreds of claims the provisioner refuses (Block volume
 * mode, a selector, a data source, an unknown StorageClass parameter) are present when a leader starts, and another
 * burst arrives while it leads. Each refusal is an Event; before leader election had its own client and Events their
 * own bounded budget, the renewal queued behind them and the leader exited 12 s after taking the Lease. Now the Lease
 * is renewed every retry period throughout, the process stays up, and a valid claim created in the middle binds.
 * Default timings (lease 15 s, renew deadline 10 s, retry 2 s) and the default client rate limit (20 QPS, burst 40).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { createTestNamespace, waitFor, type TestNamespace } from './support/cluster.js';
import { leaderGauge, readLeaseRaw } from './support/faults.js';
import { sumOf } from './support/metrics.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  applyStorageClass,
  claim,
  consumerPod,
  core,
  createClaim,
  drainNamespace,
  storage,
  waitForBound,
} from './support/volumes.js';

/** Refused claims present before the leader starts, and created while it leads. */
const BEFORE = 400;
const DURING = 200;
/** How long the Lease is watched: long enough for several renew deadlines and the whole second burst. */
const OBSERVE_SECONDS = 80;
const RENEW_DEADLINE_SECONDS = 10;

const IMMEDIATE = 'avail-immediate';
const UNKNOWN_PARAMETER = 'avail-unknown-parameter';

let ns: TestNamespace;
let provisioner: Provisioner | undefined;

/** A claim of each refused kind, by index: Block, selector, data source (all on an Immediate class), bad class. */
function refusedClaim(i: number, prefix: string): V1PersistentVolumeClaim {
  const name = `${prefix}${i}`;
  switch (i % 4) {
    case 0:
      return claim(name, { className: IMMEDIATE, volumeMode: 'Block' });
    case 1: {
      const c = claim(name, { className: IMMEDIATE });
      c.spec!.selector = { matchLabels: { tier: 'gold' } };
      return c;
    }
    case 2: {
      const c = claim(name, { className: IMMEDIATE });
      c.spec!.dataSource = { kind: 'PersistentVolumeClaim', name: 'source' };
      return c;
    }
    default:
      return claim(name, { className: UNKNOWN_PARAMETER });
  }
}

/** Creates `count` refused claims, a few at a time (the API server on this machine is the bottleneck). */
async function createRefused(count: number, prefix: string): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = next++; i < count; i = next++) await createClaim(ns.name, refusedClaim(i, prefix));
    }),
  );
}

beforeAll(async () => {
  await applyDefaultStorageClass();
  const base = { provisioner: 'microk8s.io/hostpath', reclaimPolicy: 'Delete', volumeBindingMode: 'Immediate' };
  await applyStorageClass({ metadata: { name: IMMEDIATE }, ...base });
  await applyStorageClass({ metadata: { name: UNKNOWN_PARAMETER }, ...base, parameters: { pvdir: '/srv/typo' } });
  ns = await createTestNamespace('avail');
  await createRefused(BEFORE, 'r');
  // The PV controller asks for provisioning (annotation) before the leader starts, so all of them are work at once.
  await waitFor(
    `the PV controller annotated the ${BEFORE} claims`,
    async () =>
      (await core.listNamespacedPersistentVolumeClaim({ namespace: ns.name })).items.filter(
        (c) => c.metadata?.annotations?.['volume.kubernetes.io/storage-provisioner'] === 'microk8s.io/hostpath',
      ).length === BEFORE,
    { timeoutMs: 120_000, intervalMs: 3000 },
  );
  provisioner = await startProvisioner();
}, 300_000);

afterAll(async () => {
  if (ns) await drainNamespace(ns);
  await provisioner?.stop();
  for (const name of [IMMEDIATE, UNKNOWN_PARAMETER]) await storage.deleteStorageClass({ name }).catch(() => undefined);
}, 120_000);

describe('availability under a storm of refused claims', () => {
  it(
    `${BEFORE} refused claims at leader start and ${DURING} more while it leads: the Lease is renewed throughout ${OBSERVE_SECONDS} s, the leader stays up, a valid claim binds`,
    async () => {
      const p = provisioner!;
      await waitFor('leadership', async () => (await leaderGauge(p)) === 1, { timeoutMs: 30_000 });
      const first = await readLeaseRaw(p.namespace);
      const holder = String(first.spec?.holderIdentity);
      const transitions = first.spec?.leaseTransitions;
      const started = Date.now();
      const elapsed = (): number => (Date.now() - started) / 1000;

      let burst: Promise<void> | undefined;
      let valid: Promise<number> | undefined;
      let worstAge = 0;
      const renewTimes = new Set<string>();
      while (elapsed() < OBSERVE_SECONDS) {
        if (burst === undefined && elapsed() > 15) burst = createRefused(DURING, 'during');
        if (valid === undefined && elapsed() > 30) {
          valid = (async () => {
            const t = Date.now();
            await createClaim(ns.name, claim('valid'));
            await ns.createPod(consumerPod('valid-app', 'valid', 'echo ok > /data/f', { node: 'hpp-plain' }));
            await waitForBound(ns.name, 'valid', { timeoutMs: 90_000 });
            return (Date.now() - t) / 1000;
          })();
        }
        const lease = await readLeaseRaw(p.namespace);
        const renewTime = String(lease.spec?.renewTime);
        const age = (Date.now() - Date.parse(renewTime)) / 1000;
        worstAge = Math.max(worstAge, age);
        renewTimes.add(renewTime);
        expect(lease.spec?.holderIdentity).toBe(holder);
        expect(age).toBeLessThan(RENEW_DEADLINE_SECONDS);
        expect(p.child.exitCode).toBeNull();
        await new Promise((r) => setTimeout(r, 4000));
      }
      await burst;
      const bindSeconds = await valid;

      const metrics = await p.metrics();
      // Every refused claim was reconciled (and its refusal recorded) while the Lease was being renewed.
      expect(sumOf(metrics, 'controller_persistentvolumeclaim_provision_failed_total')).toBeGreaterThanOrEqual(
        BEFORE + DURING,
      );
      expect(renewTimes.size).toBeGreaterThan(OBSERVE_SECONDS / 8);
      expect((await readLeaseRaw(p.namespace)).spec?.leaseTransitions).toBe(transitions);
      expect(await leaderGauge(p)).toBe(1);
      expect(p.child.exitCode).toBeNull();
      expect(bindSeconds).toBeLessThan(60);
      process.stdout.write(
        `availability: worst renewTime age ${worstAge.toFixed(1)} s, valid claim bound in ${bindSeconds?.toFixed(1)} s, ` +
          `events dropped ${sumOf(metrics, 'hostpath_provisioner_events_dropped_total')}\n`,
      );
    },
    (OBSERVE_SECONDS + 150) * 1000,
  );
});
