/**
 * Observability on the real control plane: provision and delete volumes (some failing on purpose), then check from
 * a real scrape of /metrics that counters and histogram counts equal what happened, and that the events users read
 * in `kubectl describe` carry the expected reasons and counts.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { provisionerSuite } from './support/suite.js';
import { waitFor } from './support/cluster.js';
import { sumOf } from './support/metrics.js';
import {
  applyStorageClass,
  claim,
  consumerPod,
  core,
  createClaim,
  eventsFor,
  storage,
  volumeDirOnNode,
  waitForBound,
  waitForEvent,
  waitForVolumeGone,
} from './support/volumes.js';

const id = randomBytes(3).toString('hex');
const good = `metrics-good-${id}`;
const bad = `metrics-bad-${id}`;
const base = {
  provisioner: 'microk8s.io/hostpath',
  volumeBindingMode: 'WaitForFirstConsumer',
  reclaimPolicy: 'Delete',
};

async function eventCount(kind: string, name: string, namespace: string, reason: string): Promise<number> {
  return (await eventsFor(kind, name, namespace))
    .filter((e) => e.reason === reason)
    .reduce((n, e) => n + (e.count ?? 1), 0);
}

const suite = provisionerSuite('metrics', {
  setup: async () => {
    await applyStorageClass({ metadata: { name: good }, ...base });
    await applyStorageClass({ metadata: { name: bad }, ...base, parameters: { size: 'large' } });
  },
  provisioner: { args: ['--retry-base-delay', '0.5', '--retry-max-delay', '2'] },
  teardown: async () => {
    await storage.deleteStorageClass({ name: good }).catch(() => undefined);
    await storage.deleteStorageClass({ name: bad }).catch(() => undefined);
  },
});

describe('metrics and events', () => {
  it('counters, histograms and events equal what happened', async () => {
    const names = ['m0', 'm1', 'm2', 'm3'];
    for (const name of names) {
      await createClaim(suite.ns.name, claim(name, { className: good }));
      await suite.ns.createPod(consumerPod(`${name}-app`, name, 'echo x > /data/f', { node: 'hpp-plain' }));
    }
    await createClaim(suite.ns.name, claim('refused', { className: bad }));
    await suite.ns.createPod(consumerPod('refused-app', 'refused', 'true', { node: 'hpp-plain' }));
    const pvs = await Promise.all(names.map((n) => waitForBound(suite.ns.name, n)));
    await waitForEvent(
      'PersistentVolumeClaim',
      'refused',
      suite.ns.name,
      'ProvisioningFailed',
      /unknown parameter "size"/,
    );

    let text = await suite.provisioner.metrics();
    expect(sumOf(text, 'controller_persistentvolumeclaim_provision_total', { class: good })).toBe(4);
    expect(sumOf(text, 'controller_persistentvolumeclaim_provision_failed_total', { class: good })).toBe(0);
    expect(sumOf(text, 'controller_persistentvolumeclaim_provision_duration_seconds_count', { class: good })).toBe(4);
    expect(sumOf(text, 'hostpath_provisioner_provision_latency_seconds_count', { class: good })).toBe(4);
    const createHelpers = [...suite.helpers.seen.keys()].filter((n) => n.startsWith('hostpath-create-')).length;
    expect(
      sumOf(text, 'hostpath_provisioner_helper_pods_total', { operation: 'provision', outcome: 'succeeded' }),
    ).toBe(createHelpers);
    expect(
      sumOf(text, 'hostpath_provisioner_phase_duration_seconds_count', { operation: 'provision', phase: 'pv_create' }),
    ).toBe(createHelpers);
    // Every refusal is one failed provision and one more count on the same aggregated event.
    // (Events are recorded asynchronously: wait until the event count has caught up with the counter.)
    const refusals = await waitFor('refusal event count to equal the failed-provision counter', async () => {
      const failed = sumOf(
        await suite.provisioner.metrics(),
        'controller_persistentvolumeclaim_provision_failed_total',
        {
          class: bad,
        },
      );
      const counted = await eventCount('PersistentVolumeClaim', 'refused', suite.ns.name, 'ProvisioningFailed');
      return failed >= 1 && failed === counted ? failed : false;
    });
    expect(refusals).toBeGreaterThanOrEqual(1);
    expect(sumOf(text, 'controller_persistentvolumeclaim_provision_total', { class: bad })).toBe(0);
    for (const name of names) {
      // Events are written asynchronously; the claim may be Bound a moment before its event is stored.
      await waitFor(
        `ProvisioningSucceeded on ${name}`,
        async () => (await eventCount('PersistentVolumeClaim', name, suite.ns.name, 'ProvisioningSucceeded')) === 1,
      );
      expect(await eventCount('PersistentVolumeClaim', name, suite.ns.name, 'ProvisioningSucceeded')).toBe(1);
      expect(await eventCount('PersistentVolumeClaim', name, suite.ns.name, 'Provisioning')).toBe(1);
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
        await core.deleteNamespacedPod({ name: `${name}-app`, namespace: suite.ns.name, gracePeriodSeconds: 0 });
        await core.deleteNamespacedPersistentVolumeClaim({ name, namespace: suite.ns.name });
      }
      await Promise.all(pvs.slice(0, 3).map((pv) => waitForVolumeGone(pv.metadata!.name!)));
      await waitFor('two failed deletes', async () => {
        const t = await suite.provisioner.metrics();
        return sumOf(t, 'controller_persistentvolume_delete_failed_total', { class: good }) >= 2;
      });
    } finally {
      execFileSync('chattr', ['-i', `${stuckDir}/sub/pinned`]);
    }
    await waitForVolumeGone(pvs[3]!.metadata!.name!);
    text = await suite.provisioner.metrics();
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
