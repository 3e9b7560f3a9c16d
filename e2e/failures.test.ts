/**
 * Helper failures users must see in `kubectl describe pvc` within seconds: an image that cannot be pulled (C07),
 * and a helper that cannot be scheduled. Nothing is left behind and the claim binds once the cause is fixed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, waitFor, type TestNamespace } from './support/cluster.js';
import { logLines } from './support/faults.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  claim,
  consumerPod,
  createClaim,
  liveHelpers,
  readClaim,
  readVolume,
  waitForBound,
  waitForEvent,
  drainNamespace,
} from './support/volumes.js';

let ns: TestNamespace;
let provisioner: Provisioner | undefined;

beforeAll(async () => {
  await applyDefaultStorageClass();
  ns = await createTestNamespace('failures');
});

afterAll(async () => {
  // Let the provisioner clean up this file's volumes before it stops.
  if (ns) await drainNamespace(ns);
  await provisioner?.stop();
});

describe('helper failures', () => {
  it('C07 helper image cannot be pulled: a Warning naming the image, no PV, and it binds once the image is fixed', async () => {
    provisioner = await startProvisioner({ env: { BUSYBOX_IMAGE: 'busybox:does-not-exist' } });
    await createClaim(ns.name, claim('pull'));
    await ns.createPod(consumerPod('pull-app', 'pull', 'true', { node: 'hpp-plain' }));
    const started = Date.now();
    const event = await waitForEvent(
      'PersistentVolumeClaim',
      'pull',
      ns.name,
      'ProvisioningFailed',
      /busybox:does-not-exist/,
    );
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(event.type).toBe('Warning');
    expect(event.message).toMatch(/image_pull/);
    expect(event.message).toMatch(/ErrImagePull|ImagePullBackOff/);
    expect(event.message).toContain('hpp-plain');
    const uid = (await readClaim(ns.name, 'pull')).metadata!.uid!;
    expect(await readVolume(`pvc-${uid}`)).toBeUndefined();
    // Retries make events (aggregated: the count grows), not piles of helpers.
    await waitFor('a retry', async () => {
      const again = await waitForEvent(
        'PersistentVolumeClaim',
        'pull',
        ns.name,
        'ProvisioningFailed',
        /does-not-exist/,
      );
      return (again.count ?? 1) >= 2;
    });
    expect((await liveHelpers(provisioner.namespace)).length).toBeLessThanOrEqual(1);
    // Retried with backoff (1 s, 2 s, 4 s, … with jitter), not in a loop: over 10 s, a handful of helpers at most.
    await new Promise((r) => setTimeout(r, 10_000));
    const made = logLines(provisioner, /^created helper pod$/).filter((l) =>
      String(l['helper']).startsWith('hostpath-create-'),
    );
    expect(made.length).toBeLessThanOrEqual(6);

    const namespace = provisioner.namespace;
    await provisioner.stop();
    provisioner = await startProvisioner({ namespace, env: { BUSYBOX_IMAGE: 'busybox:1.37.0' } });
    await waitForBound(ns.name, 'pull', { timeoutMs: 90_000 });
    await ns.waitForPhase('pull-app', ['Succeeded']);
    await waitFor('no helper left', async () => (await liveHelpers(namespace)).length === 0);
  });
});
