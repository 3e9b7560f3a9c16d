/**
 * Observability on the real control plane: provision and delete volumes (some failing on purpose), then check from
 * a real scrape of /metrics that counters and histogram counts equal what happened, and that the events users read
 * in `kubectl describe` carry the expected reasons and counts.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, waitFor, type TestNamespace } from './support/cluster.js';
import { sumOf } from './support/metrics.js';
import { startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  applyStorageClass,
  claim,
  consumerPod,
  core,
  createClaim,
  eventsFor,
  recordHelpers,
  storage,
  volumeDirOnNode,
  waitForBound,
  waitForEvent,
  waitForVolumeGone,
  type HelperRecorder,
} from './support/volumes.js';

let ns: TestNamespace;
let provisioner: Provisioner;
let helpers: HelperRecorder;
const id = randomBytes(3).toString('hex');
const good = `metrics-good-${id}`;
const bad = `metrics-bad-${id}`;

beforeAll(async () => {
  const base = {
    provisioner: 'microk8s.io/hostpath',
    volumeBindingMode: 'WaitForFirstConsumer',
    reclaimPolicy: 'Delete',
  };
  await applyStorageClass({ metadata: { name: good }, ...base });
  await applyStorageClass({ metadata: { name: bad }, ...base, parameters: { size: 'large' } });
  provisioner = await startProvisioner({ args: ['--retry-base-delay', '0.5', '--retry-max-delay', '2'] });
  helpers = await recordHelpers(provisioner.namespace);
  ns = await createTestNamespace('metrics');
});

afterAll(async () => {
  helpers?.stop();
  await provisioner?.stop();
  await ns?.cleanup();
  await storage.deleteStorageClass({ name: good }).catch(() => undefined);
  await storage.deleteStorageClass({ name: bad }).catch(() => undefined);
});

async function eventCount(kind: string, name: string, namespace: string, reason: string): Promise<number> {
  return (await eventsFor(kind, name, namespace))
    .filter((e) => e.reason === reason)
    .reduce((n, e) => n + (e.count ?? 1), 0);
}

describe('metrics and events', () => {
  it('counters, histograms and events equal what happened', async () => {
    const names = ['m0', 'm1', 'm2', 'm3'];
    for (const name of names) {
      await createClaim(ns.name, claim(name, { className: good }));
      await ns.createPod(consumerPod(`${name}-app`, name, 'echo x > /data/f', { node: 'hpp-plain' }));
    }
    await createClaim(ns.name, claim('refused', { className: bad }));
    await ns.createPod(consumerPod('refused-app', 'refused', 'true', { node: 'hpp-plain' }));
    const pvs = await Promise.all(names.map((n) => waitForBound(ns.name, n)));
    await waitForEvent('PersistentVolumeClaim', 'refused', ns.name, 'ProvisioningFailed', /unknown parameter "size"/);

    let text = await provisioner.metrics();
    expect(sumOf(text, 'controller_persistentvolumeclaim_provision_total', { class: good })).toBe(4);
    expect(sumOf(text, 'controller_persistentvolumeclaim_provision_failed_total', { class: good })).toBe(0);
    expect(sumOf(text, 'controller_persistentvolumeclaim_provision_duration_seconds_count', { class: good })).toBe(4);
    expect(sumOf(text, 'hostpath_provisioner_provision_latency_seconds_count', { class: good })).toBe(4);
    const createHelpers = [...helpers.seen.keys()].filter((n) => n.startsWith('hostpath-create-')).length;
    expect(
      sumOf(text, 'hostpath_provisioner_helper_pods_total', { operation: 'provision', outcome: 'succeeded' }),
    ).toBe(createHelpers);
    expect(
      sumOf(text, 'hostpath_provisioner_phase_duration_seconds_count', { operation: 'provision', phase: 'pv_create' }),
    ).toBe(createHelpers);
    // Every refusal is one failed provision and one more count on the same aggregated event.
    // (Events are recorded asynchronously: wait until the event count has caught up with the counter.)
    const refusals = await waitFor('refusal event count to equal the failed-provision counter', async () => {
      const failed = sumOf(await provisioner.metrics(), 'controller_persistentvolumeclaim_provision_failed_total', {
        class: bad,
      });
      const counted = await eventCount('PersistentVolumeClaim', 'refused', ns.name, 'ProvisioningFailed');
      return failed >= 1 && failed === counted ? failed : false;
    });
    expect(refusals).toBeGreaterThanOrEqual(1);
    expect(sumOf(text, 'controller_persistentvolumeclaim_provision_total', { class: bad })).toBe(0);
    for (const name of names) {
      expect(await eventCount('PersistentVolumeClaim', name, ns.name, 'ProvisioningSucceeded')).toBe(1);
      expect(await eventCount('PersistentVolumeClaim', name, ns.name, 'Provisioning')).toBe(1);
    }
    expect(sumOf(text, 'hostpath_provisioner_leader')).toBe(1);
    expect(sumOf(text, 'hostpath_provisioner_build_info')).toBe(1);

    // Deletion: three succeed at once; one is blocked by an immutable file, fails, and succeeds once it is released.
    const stuckDir = volumeDirOnNode('hpp-plain', pvs[3]!);
    mkdirSync(`${stuckDir}/sub`, { recursive: true });
    writeFileSync(`${stuckDir}/sub/pinned`, 'x');
    execFileSync('chattr', ['+i', `${stuckDir}/sub/pinned`]);
    try {
      for (const name of names) {
        await core.deleteNamespacedPod({ name: `${name}-app`, namespace: ns.name, gracePeriodSeconds: 0 });
        await core.deleteNamespacedPersistentVolumeClaim({ name, namespace: ns.name });
      }
      await Promise.all(pvs.slice(0, 3).map((pv) => waitForVolumeGone(pv.metadata!.name!)));
      await waitFor('two failed deletes', async () => {
        const t = await provisioner.metrics();
        return sumOf(t, 'controller_persistentvolume_delete_failed_total', { class: good }) >= 2;
      });
    } finally {
      execFileSync('chattr', ['-i', `${stuckDir}/sub/pinned`]);
    }
    await waitForVolumeGone(pvs[3]!.metadata!.name!);
    text = await provisioner.metrics();
    expect(sumOf(text, 'controller_persistentvolume_delete_total', { class: good })).toBe(4);
    const failedDeletes = sumOf(text, 'controller_persistentvolume_delete_failed_total', { class: good });
    expect(failedDeletes).toBeGreaterThanOrEqual(2);
    expect(sumOf(text, 'controller_persistentvolume_delete_duration_seconds_count', { class: good })).toBe(
      4 + failedDeletes,
    );
    await waitFor(
      'VolumeFailedDelete event count to equal the failed-delete counter',
      async () =>
        (await eventCount('PersistentVolume', pvs[3]!.metadata!.name!, '', 'VolumeFailedDelete')) === failedDeletes,
    );
    expect(sumOf(text, 'hostpath_provisioner_helper_pods_total', { operation: 'delete', outcome: 'failed' })).toBe(
      failedDeletes,
    );
  });
});
