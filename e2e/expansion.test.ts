/**
 * Volume expansion on the real control plane (kube-apiserver with its default admission plugins, including
 * PersistentVolumeClaimResize, and kube-controller-manager with every controller, the expand controller among them):
 * a larger request of a bound claim with a running pod completes for hostPath and `local` classes with
 * `allowVolumeExpansion: true` — PV `spec.capacity`, claim `status.capacity`, no resize condition or status left,
 * events Resizing and VolumeResizeSuccessful — and is refused by the API server without it. A provisioner frozen
 * (SIGSTOP) at a step of the resize, then SIGKILLed, is replaced by one that completes it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  PatchStrategy,
  setHeaderOptions,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
} from '@kubernetes/client-node';
import { apiStatus, createTestNamespace, waitFor, type TestNamespace } from './support/cluster.js';
import { actWhen, FAST_LEASE_ARGS, pause, resume, roleOf } from './support/faults.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  applyStorageClass,
  claim,
  consumerPod,
  core,
  createClaim,
  drainNamespace,
  eventsFor,
  modeOf,
  readClaim,
  readVolume,
  storage,
  volumeDirOnNode,
  waitForBound,
  waitForEvent,
} from './support/volumes.js';

const NODE = 'hpp-plain';
const HOSTPATH_CLASS = 'hpp-expand';
const LOCAL_CLASS = 'hpp-expand-local';
/**
 * One request every 2 s: a provisioner this slow is frozen between two steps of a resize, not after them (a watch
 * event comes well within 2 s), and still syncs its six informers in about 12 s on a cluster that other test files
 * left busy (at one request every 5 s, the start alone took most of a case's time on the CI machine).
 */
const SLOW_ARGS = [...FAST_LEASE_ARGS, '--kube-api-qps', '0.5', '--kube-api-burst', '1'];
/** A case replaces the provisioner twice and waits for a resize at the slow provisioner's pace. */
const CRASH_CASE_TIMEOUT_MS = 300_000;
const RESIZE_CONDITIONS = ['Resizing', 'FileSystemResizePending', 'ControllerResizeError', 'NodeResizeError'];
const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

let ns: TestNamespace;
let provisioner: Provisioner | undefined;
let namespace: string;

beforeAll(async () => {
  await applyDefaultStorageClass();
  for (const [name, volumeType] of [
    [HOSTPATH_CLASS, 'hostPath'],
    [LOCAL_CLASS, 'local'],
  ] as const) {
    await applyStorageClass({
      metadata: { name },
      provisioner: 'microk8s.io/hostpath',
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Delete',
      allowVolumeExpansion: true,
      parameters: { volumeType },
    });
  }
  provisioner = await startProvisioner({ args: FAST_LEASE_ARGS });
  namespace = provisioner.namespace;
  ns = await createTestNamespace('expansion');
});

afterAll(async () => {
  if (provisioner) {
    resume(provisioner);
    if (ns) await drainNamespace(ns);
    await provisioner.stop();
  } else await ns?.cleanup();
  for (const name of [HOSTPATH_CLASS, LOCAL_CLASS]) {
    await storage.deleteStorageClass({ name }).catch(() => undefined);
  }
});

// A failed case must not leave the provisioner frozen for the next one.
afterEach(() => {
  if (provisioner) resume(provisioner);
});

/** A claim of `className` with a pod on NODE that writes a file and keeps running; returns the bound PV. */
async function boundClaimWithPod(name: string, className: string): Promise<V1PersistentVolume> {
  await createClaim(ns.name, claim(name, { className, size: '1Gi' }));
  await ns.createPod(consumerPod(`${name}-app`, name, 'echo before > /data/f; sleep 3600', { node: NODE }));
  await ns.waitForPhase(`${name}-app`, ['Running']);
  const pv = await waitForBound(ns.name, name);
  // Running says the container started, not that its shell has written the file yet.
  await waitFor(`the file written by ${name}-app`, () => modeOf(join(volumeDirOnNode(NODE, pv), 'f')) !== undefined);
  return pv;
}

/** Raises (or lowers) the claim's request, as `kubectl patch --type merge` does. */
function request(name: string, size: string): Promise<V1PersistentVolumeClaim> {
  return core.patchNamespacedPersistentVolumeClaim(
    { name, namespace: ns.name, body: { spec: { resources: { requests: { storage: size } } } } },
    MERGE_PATCH,
  );
}

/** Waits for the claim's status.capacity to be `size`; returns the claim. */
function waitForCapacity(name: string, size: string): Promise<V1PersistentVolumeClaim> {
  return waitFor(
    `claim ${name} status.capacity ${size}`,
    async () => {
      const c = await readClaim(ns.name, name);
      return c.status?.capacity?.['storage'] === size ? c : undefined;
    },
    { timeoutMs: 60_000 },
  );
}

/** What a finished resize leaves: the sizes, no resize condition, no resize status, events said. */
async function expectResized(name: string, pvName: string, size: string): Promise<void> {
  const c = await waitForCapacity(name, size);
  expect((await readVolume(pvName))?.spec?.capacity?.['storage']).toBe(size);
  expect((c.status?.conditions ?? []).filter((x) => RESIZE_CONDITIONS.includes(x.type))).toEqual([]);
  expect(c.status?.allocatedResourceStatuses?.['storage']).toBeUndefined();
  expect(c.status?.allocatedResources?.['storage']).toBe(size);
  await waitForEvent('PersistentVolumeClaim', name, ns.name, 'Resizing', new RegExp(`${pvName} to ${size}`));
  await waitForEvent('PersistentVolumeClaim', name, ns.name, 'VolumeResizeSuccessful', new RegExp(size));
  const reasons = (await eventsFor('PersistentVolumeClaim', name, ns.name)).map((e) => e.reason);
  expect(reasons).not.toContain('VolumeResizeFailed');
}

describe('volume expansion', () => {
  it.each([
    ['hostPath', HOSTPATH_CLASS],
    ['local', LOCAL_CLASS],
  ])('a %s claim with a running pod grows: PV and claim capacity, no resize condition left', async (type, cls) => {
    const name = `grow-${type.toLowerCase()}`;
    const pv = await boundClaimWithPod(name, cls);
    expect(type === 'local' ? pv.spec?.local?.path : pv.spec?.hostPath?.path).toBeDefined();
    await request(name, '2Gi');
    await expectResized(name, pv.metadata!.name!, '2Gi');
    // Nothing on the node changed: the pod runs on, its data in place.
    expect((await ns.waitForPhase(`${name}-app`, ['Running'])).status?.phase).toBe('Running');
    expect(readFileSync(join(volumeDirOnNode(NODE, pv), 'f'), 'utf8')).toBe('before\n');
    // kube-controller-manager's expand controller leaves it to us: it only says it waits for an external controller.
    const expanding = (await eventsFor('PersistentVolumeClaim', name, ns.name)).filter(
      (e) => e.reason === 'ExternalExpanding',
    );
    for (const e of expanding) expect(e.message).toMatch(/waiting for an external controller/);
    // And again: a second raise completes the same way.
    await request(name, '3Gi');
    await expectResized(name, pv.metadata!.name!, '3Gi');
  });

  it('a class without allowVolumeExpansion: the API server refuses the larger request', async () => {
    const pv = await boundClaimWithPod('fixed', 'microk8s-hostpath');
    let status: number | undefined;
    let message = '';
    try {
      await request('fixed', '2Gi');
    } catch (err) {
      status = apiStatus(err);
      message = JSON.stringify((err as { body?: unknown }).body ?? '');
    }
    expect(status).toBe(403);
    expect(message).toMatch(/storageclass that provisions the pvc must support resize/);
    expect((await readClaim(ns.name, 'fixed')).status?.capacity?.['storage']).toBe('1Gi');
    expect((await readVolume(pv.metadata!.name!))?.spec?.capacity?.['storage']).toBe('1Gi');
  });

  it('a request may not go below status.capacity (only a failed expansion may be lowered, above it)', async () => {
    await waitForCapacity('grow-hostpath', '3Gi');
    await expect(request('grow-hostpath', '1Gi')).rejects.toMatchObject({ code: 422 });
  });
});

describe('a restart of the provisioner in the middle of a resize', () => {
  /** Whether the running provisioner is the slow one: a case that failed midway leaves it for the next. */
  let slow = false;

  /** Replaces the running provisioner by a slow one (its requests 2 s apart) and waits until it leads. */
  async function slowProvisioner(): Promise<void> {
    await provisioner!.stop();
    slow = true;
    provisioner = await startProvisioner({ namespace, args: SLOW_ARGS });
    await waitFor('the slow provisioner to lead', async () => (await roleOf(provisioner!)) === 'leader', {
      timeoutMs: 120_000,
    });
  }

  /** SIGKILLs the frozen provisioner and starts one at the usual speed (it waits for the Lease to expire). */
  async function killAndRestart(): Promise<void> {
    await provisioner!.stop('SIGKILL');
    provisioner = await startProvisioner({ namespace, args: FAST_LEASE_ARGS });
    slow = false;
  }

  // Each case starts from a provisioner at the usual speed, even after a case that failed while the slow one ran.
  beforeEach(async () => {
    if (slow) await killAndRestart();
  });

  it(
    'frozen once the claim says ControllerResizeInProgress (the PV not patched yet), killed: the next one completes',
    async () => {
      const pv = await boundClaimWithPod('crash-start', HOSTPATH_CLASS);
      await slowProvisioner();
      const frozen = await actWhen<V1PersistentVolumeClaim>(
        `/api/v1/namespaces/${ns.name}/persistentvolumeclaims`,
        {},
        (type, c) =>
          type === 'MODIFIED' &&
          c.metadata?.name === 'crash-start' &&
          c.status?.allocatedResourceStatuses?.['storage'] === 'ControllerResizeInProgress',
        () => pause(provisioner!),
      );
      try {
        await request('crash-start', '2Gi');
        const seen = await frozen.ready;
        expect(seen.status?.allocatedResources?.['storage']).toBe('2Gi');
        expect(seen.status?.conditions?.map((c) => c.type)).toContain('Resizing');
      } finally {
        frozen.stop();
      }
      expect((await readVolume(pv.metadata!.name!))?.spec?.capacity?.['storage']).toBe('1Gi');
      await killAndRestart();
      await expectResized('crash-start', pv.metadata!.name!, '2Gi');
    },
    CRASH_CASE_TIMEOUT_MS,
  );

  it(
    'frozen once the PV has the new capacity (the claim not finished yet), killed: the next one completes',
    async () => {
      const pv = await boundClaimWithPod('crash-finish', HOSTPATH_CLASS);
      await slowProvisioner();
      const frozen = await actWhen<V1PersistentVolume>(
        '/api/v1/persistentvolumes',
        {},
        (type, v) =>
          type === 'MODIFIED' && v.metadata?.name === pv.metadata?.name && v.spec?.capacity?.['storage'] === '2Gi',
        () => pause(provisioner!),
      );
      try {
        await request('crash-finish', '2Gi');
        await frozen.ready;
      } finally {
        frozen.stop();
      }
      const midway = await readClaim(ns.name, 'crash-finish');
      expect(midway.status?.capacity?.['storage']).toBe('1Gi');
      expect(midway.status?.allocatedResourceStatuses?.['storage']).toBe('ControllerResizeInProgress');
      await killAndRestart();
      await expectResized('crash-finish', pv.metadata!.name!, '2Gi');
      writeFileSync(join(volumeDirOnNode(NODE, pv), 'after'), 'still writable\n');
    },
    CRASH_CASE_TIMEOUT_MS,
  );
});
