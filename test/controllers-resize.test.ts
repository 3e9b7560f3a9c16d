import { beforeEach, describe, expect, it } from '@jest/globals';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { INFEASIBLE_RETRY_SECONDS, ResizeController, ResizeError } from '../controllers/resize.js';
import { apiError, FakeCache, FakeEvents, FakeKube, silentLogger } from './support/fakes.js';

const NAMES = ['microk8s.io/hostpath'];
const ctx = { logger: silentLogger };
const KEY = 'default/data';
const T0 = Date.parse('2026-12-03T20:00:00Z');

const expandable: V1StorageClass = {
  metadata: { name: 'microk8s-hostpath' },
  provisioner: 'microk8s.io/hostpath',
  volumeBindingMode: 'WaitForFirstConsumer',
  allowVolumeExpansion: true,
};

function boundClaim(request: string): V1PersistentVolumeClaim {
  return {
    metadata: { name: 'data', namespace: 'default', uid: 'u1', resourceVersion: '7' },
    spec: {
      storageClassName: 'microk8s-hostpath',
      volumeName: 'pvc-u1',
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: request } },
    },
    status: {
      phase: 'Bound',
      capacity: { storage: '1Gi' },
      accessModes: ['ReadWriteOnce'],
      conditions: [{ type: 'ModifyingVolume', status: 'False', reason: 'kept' }],
    },
  };
}

function ourVolume(capacity = '1Gi', source: 'hostPath' | 'local' = 'hostPath'): V1PersistentVolume {
  const path = '/var/snap/microk8s/common/default-storage/default-data-pvc-u1';
  return {
    metadata: {
      name: 'pvc-u1',
      resourceVersion: '5',
      annotations: { 'pv.kubernetes.io/provisioned-by': 'microk8s.io/hostpath' },
    },
    spec: {
      capacity: { storage: capacity },
      claimRef: { namespace: 'default', name: 'data', uid: 'u1' },
      ...(source === 'hostPath' ? { hostPath: { path } } : { local: { path } }),
    },
    status: { phase: 'Bound' },
  };
}

let cache: FakeCache;
let kube: FakeKube;
let events: FakeEvents;
let now: number;

function setup(request = '2Gi', source: 'hostPath' | 'local' = 'hostPath'): ResizeController {
  now = T0;
  cache = new FakeCache();
  kube = new FakeKube(cache);
  events = new FakeEvents();
  cache.classes.set('microk8s-hostpath', expandable);
  cache.claims.set(KEY, boundClaim(request));
  cache.pvs.set('pvc-u1', ourVolume('1Gi', source));
  return controller();
}

function controller(): ResizeController {
  return new ResizeController({ cache, kube, events, clock: () => now, settings: { provisionerNames: NAMES } });
}

const claimNow = () => cache.claims.get(KEY)!;
const reasons = () => events.recorded.map((e) => e[2]);

describe('ResizeController', () => {
  beforeEach(() => {
    setup();
  });

  it.each(['hostPath', 'local'] as const)(
    'resizes a bound %s claim in one run: start, PV capacity, finish; events Resizing and VolumeResizeSuccessful',
    async (source) => {
      const resize = setup('2Gi', source);
      expect(await resize.reconcile(KEY, ctx)).toBeUndefined();
      expect(kube.calls).toEqual([
        ['patchClaimStatus', KEY],
        ['patchVolume', 'pvc-u1'],
        ['patchClaimStatus', KEY],
      ]);
      expect(kube.patches).toEqual([
        [
          'claim',
          KEY,
          {
            metadata: { resourceVersion: '7' },
            status: {
              conditions: [
                { type: 'ModifyingVolume', status: 'False', reason: 'kept' },
                { type: 'Resizing', status: 'True', lastTransitionTime: '2026-12-03T20:00:00Z' },
              ],
              allocatedResources: { storage: '2Gi' },
              allocatedResourceStatuses: { storage: 'ControllerResizeInProgress' },
            },
          },
        ],
        ['pv', 'pvc-u1', { spec: { capacity: { storage: '2Gi' } } }],
        [
          'claim',
          KEY,
          {
            metadata: { resourceVersion: '101' },
            status: {
              capacity: { storage: '2Gi' },
              conditions: [{ type: 'ModifyingVolume', status: 'False', reason: 'kept' }],
              allocatedResourceStatuses: { storage: null },
            },
          },
        ],
      ]);
      expect(cache.pvs.get('pvc-u1')?.spec?.capacity).toEqual({ storage: '2Gi' });
      expect(claimNow().status).toEqual({
        phase: 'Bound',
        capacity: { storage: '2Gi' },
        accessModes: ['ReadWriteOnce'],
        conditions: [{ type: 'ModifyingVolume', status: 'False', reason: 'kept' }],
        allocatedResources: { storage: '2Gi' },
        allocatedResourceStatuses: {},
      });
      expect(events.recorded).toEqual([
        ['data', 'Normal', 'Resizing', 'External resizer is resizing volume pvc-u1 to 2Gi'],
        [
          'data',
          'Normal',
          'VolumeResizeSuccessful',
          'Resize volume succeeded: pvc-u1 is 2Gi (bookkeeping only: nothing limits how much a hostPath directory holds)',
        ],
      ]);
      // Run again (a resync, the claim's own update events): nothing more.
      kube.calls = [];
      await resize.reconcile(KEY, ctx);
      expect(kube.calls).toEqual([]);
      expect(reasons()).toEqual(['Resizing', 'VolumeResizeSuccessful']);
    },
  );

  it.each<[string, Partial<V1StorageClass> | undefined, (c: V1PersistentVolumeClaim) => void]>([
    ['a class without allowVolumeExpansion', { allowVolumeExpansion: false }, () => undefined],
    ['a class of another provisioner', { provisioner: 'ebs.csi.aws.com' }, () => undefined],
    ['an unbound claim', undefined, (c) => (c.status = { phase: 'Pending' })],
  ])('leaves %s alone', async (_name, classChange, claimChange) => {
    if (classChange) cache.classes.set('microk8s-hostpath', { ...expandable, ...classChange });
    claimChange(claimNow());
    await controller().reconcile(KEY, ctx);
    expect(kube.calls).toEqual([]);
    expect(events.recorded).toEqual([]);
  });

  it('leaves a PV it did not provision alone, even in a class of ours', async () => {
    cache.pvs.set('pvc-u1', { ...ourVolume(), metadata: { name: 'pvc-u1' } });
    await controller().reconcile(KEY, ctx);
    expect(kube.calls).toEqual([]);
  });

  it.each<[string, NonNullable<V1PersistentVolumeClaim['status']>, string, string[]]>([
    [
      'start recorded, PV not patched (killed before the PV write)',
      {
        phase: 'Bound',
        capacity: { storage: '1Gi' },
        allocatedResources: { storage: '2Gi' },
        allocatedResourceStatuses: { storage: 'ControllerResizeInProgress' },
        conditions: [{ type: 'Resizing', status: 'True' }],
      },
      '1Gi',
      ['patchVolume', 'patchClaimStatus'],
    ],
    [
      'PV patched, finish not recorded (killed before the last write)',
      {
        phase: 'Bound',
        capacity: { storage: '1Gi' },
        allocatedResources: { storage: '2Gi' },
        allocatedResourceStatuses: { storage: 'ControllerResizeInProgress' },
        conditions: [{ type: 'Resizing', status: 'True' }],
      },
      '2Gi',
      ['patchClaimStatus'],
    ],
  ])('a new process resumes: %s', async (_name, status, pvCapacity, calls) => {
    claimNow().status = status;
    cache.pvs.set('pvc-u1', ourVolume(pvCapacity));
    await controller().reconcile(KEY, ctx);
    expect(kube.calls.map((c) => c[0])).toEqual(calls);
    expect(claimNow().status?.capacity).toEqual({ storage: '2Gi' });
    expect(claimNow().status?.allocatedResourceStatuses).toEqual({});
    expect(claimNow().status?.conditions).toBeUndefined();
    expect(reasons().at(-1)).toBe('VolumeResizeSuccessful');
  });

  it('a stale claim cache after its own finish: no second resize, no second event', async () => {
    const resize = controller();
    kube.cacheFollowsWrites = false;
    await resize.reconcile(KEY, ctx);
    expect(kube.calls.map((c) => c[0])).toEqual(['patchClaimStatus', 'patchVolume', 'patchClaimStatus']);
    // The informer shows the start patch's update first: the finish is expected, so nothing is done.
    cache.claims.set(KEY, {
      ...claimNow(),
      status: { ...kube.liveClaims.get(KEY)!.status, capacity: { storage: '1Gi' } },
    });
    kube.calls = [];
    await resize.reconcile(KEY, ctx);
    expect(kube.calls).toEqual([]);
    expect(reasons()).toEqual(['Resizing', 'VolumeResizeSuccessful']);
  });

  it('a conflict (the claim changed since the cache saw it) decides again on the live claim', async () => {
    // The cache is behind: the live claim was already resized by a previous leader.
    kube.liveClaims.set(KEY, {
      ...boundClaim('2Gi'),
      metadata: { ...boundClaim('2Gi').metadata, resourceVersion: '9' },
      status: { phase: 'Bound', capacity: { storage: '2Gi' } },
    });
    await controller().reconcile(KEY, ctx);
    expect(kube.calls).toEqual([
      ['patchClaimStatus', KEY],
      ['readClaim', KEY],
    ]);
    expect(events.recorded).toEqual([]);
  });

  it('a PV capacity the API server refuses: VolumeResizeFailed, ControllerResizeInfeasible, slow retry', async () => {
    kube.patchVolume = (name: string) => {
      kube.calls.push(['patchVolume', name]);
      return Promise.reject(apiError(403, 'Forbidden', 'capacity changes are not allowed by policy'));
    };
    const resize = controller();
    await expect(resize.reconcile(KEY, ctx)).rejects.toBeInstanceOf(ResizeError);
    const message =
      'the API server refused capacity 2Gi for volume pvc-u1: 403 Forbidden: capacity changes are not allowed by policy';
    expect(events.recorded).toEqual([
      ['data', 'Normal', 'Resizing', 'External resizer is resizing volume pvc-u1 to 2Gi'],
      ['data', 'Warning', 'VolumeResizeFailed', message],
    ]);
    expect(kube.patches.at(-1)).toEqual([
      'claim',
      KEY,
      {
        status: {
          conditions: [
            { type: 'ModifyingVolume', status: 'False', reason: 'kept' },
            { type: 'Resizing', status: 'True', lastTransitionTime: '2026-12-03T20:00:00Z' },
            {
              type: 'ControllerResizeError',
              status: 'True',
              lastTransitionTime: '2026-12-03T20:00:00Z',
              message: `failed to expand pvc with ${message}`,
            },
          ],
          allocatedResourceStatuses: { storage: 'ControllerResizeInfeasible' },
        },
      },
    ]);
    expect(claimNow().status?.capacity).toEqual({ storage: '1Gi' });
    expect(cache.pvs.get('pvc-u1')?.spec?.capacity).toEqual({ storage: '1Gi' });

    // The work queue's retry: the same size waits for the slow retry.
    kube.calls = [];
    expect(await resize.reconcile(KEY, ctx)).toEqual({ requeueAfterSeconds: INFEASIBLE_RETRY_SECONDS });
    now += 100_000;
    expect(await resize.reconcile(KEY, ctx)).toEqual({ requeueAfterSeconds: INFEASIBLE_RETRY_SECONDS - 100 });
    expect(kube.calls).toEqual([]);
    // Due: it starts over (and fails again, the policy has not changed).
    now += (INFEASIBLE_RETRY_SECONDS - 100) * 1000;
    await expect(resize.reconcile(KEY, ctx)).rejects.toBeInstanceOf(ResizeError);
    expect(kube.calls.map((c) => c[0])).toEqual(['patchClaimStatus', 'patchVolume', 'patchClaimStatus']);
  });

  it('recovers when the user lowers the request after a failure (still above status.capacity)', async () => {
    const original = kube.patchVolume.bind(kube);
    let refuse = true;
    kube.patchVolume = (name: string, patch: object) => {
      const size = (patch as { spec: { capacity: { storage: string } } }).spec.capacity.storage;
      if (refuse && size === '100Gi') {
        kube.calls.push(['patchVolume', name]);
        return Promise.reject(apiError(422, 'Invalid', 'too large for this node'));
      }
      return original(name, patch);
    };
    claimNow().spec!.resources!.requests!['storage'] = '100Gi';
    const resize = controller();
    await expect(resize.reconcile(KEY, ctx)).rejects.toBeInstanceOf(ResizeError);
    expect(claimNow().status?.allocatedResourceStatuses).toEqual({ storage: 'ControllerResizeInfeasible' });
    expect(claimNow().status?.allocatedResources).toEqual({ storage: '100Gi' });

    // The user lowers the request to 3Gi (the API server and then the cache have it): tried at once, no slow retry.
    const lowered = { ...claimNow(), spec: { ...claimNow().spec, resources: { requests: { storage: '3Gi' } } } };
    kube.liveClaims.set(KEY, lowered);
    cache.claims.set(KEY, lowered);
    refuse = false;
    kube.calls = [];
    expect(await resize.reconcile(KEY, ctx)).toBeUndefined();
    expect(kube.calls.map((c) => c[0])).toEqual(['patchClaimStatus', 'patchVolume', 'patchClaimStatus']);
    expect(cache.pvs.get('pvc-u1')?.spec?.capacity).toEqual({ storage: '3Gi' });
    expect(claimNow().status).toMatchObject({
      capacity: { storage: '3Gi' },
      allocatedResources: { storage: '3Gi' },
      allocatedResourceStatuses: {},
      conditions: [{ type: 'ModifyingVolume', status: 'False', reason: 'kept' }],
    });
    expect(reasons()).toEqual(['Resizing', 'VolumeResizeFailed', 'Resizing', 'VolumeResizeSuccessful']);
    expect(resize.remembered()).toBe(0);
  });

  it('a transient PV error leaves the claim in progress and retries with backoff, saying so', async () => {
    let fail = true;
    const original = kube.patchVolume.bind(kube);
    kube.patchVolume = (name: string, patch: object) => {
      if (!fail) return original(name, patch);
      kube.calls.push(['patchVolume', name]);
      return Promise.reject(apiError(500, 'InternalError', 'etcdserver: request timed out'));
    };
    const resize = controller();
    await expect(resize.reconcile(KEY, ctx)).rejects.toThrow('etcdserver: request timed out');
    expect(claimNow().status?.allocatedResourceStatuses).toEqual({ storage: 'ControllerResizeInProgress' });
    expect(events.recorded.at(-1)?.slice(1)).toEqual([
      'Warning',
      'VolumeResizeFailed',
      'resize volume pvc-u1 to 2Gi failed: 500 InternalError: etcdserver: request timed out; retrying',
    ]);
    fail = false;
    kube.calls = [];
    await resize.reconcile(KEY, ctx);
    expect(kube.calls.map((c) => c[0])).toEqual(['patchVolume', 'patchClaimStatus']);
    expect(claimNow().status?.capacity).toEqual({ storage: '2Gi' });
  });

  it('a request raised again during a resize: the first size finishes, then the new one, in the same run', async () => {
    claimNow().status = {
      phase: 'Bound',
      capacity: { storage: '1Gi' },
      allocatedResources: { storage: '2Gi' },
      allocatedResourceStatuses: { storage: 'ControllerResizeInProgress' },
    };
    claimNow().spec!.resources!.requests!['storage'] = '5Gi';
    await controller().reconcile(KEY, ctx);
    expect(kube.patches.map(([kind, , patch]) => `${kind} ${JSON.stringify(patch)}`)).toEqual([
      'pv {"spec":{"capacity":{"storage":"2Gi"}}}',
      expect.stringContaining('"capacity":{"storage":"2Gi"}'),
      expect.stringContaining('"allocatedResources":{"storage":"5Gi"}'),
      'pv {"spec":{"capacity":{"storage":"5Gi"}}}',
      expect.stringContaining('"capacity":{"storage":"5Gi"}'),
    ]);
    expect(reasons()).toEqual(['Resizing', 'VolumeResizeSuccessful', 'Resizing', 'VolumeResizeSuccessful']);
  });

  it('a claim deleted between the cache and the write stops quietly', async () => {
    kube.liveClaims.set(KEY, null);
    await controller().reconcile(KEY, ctx);
    expect(kube.calls).toEqual([['patchClaimStatus', KEY]]);
    expect(events.recorded).toEqual([]);
  });

  it('forgets a deleted claim', async () => {
    kube.patchVolume = () => Promise.reject(apiError(403, 'Forbidden', 'no'));
    const resize = controller();
    await expect(resize.reconcile(KEY, ctx)).rejects.toBeInstanceOf(ResizeError);
    await resize.reconcile(KEY, ctx);
    expect(resize.remembered()).toBe(1);
    resize.forget('u1');
    expect(resize.remembered()).toBe(0);
  });
});
