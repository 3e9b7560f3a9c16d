import { describe, expect, it } from '@jest/globals';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import {
  decideResize,
  failResize,
  mergeResizeConditions,
  resizeRequested,
  rfc3339,
  type ResizeDecision,
  type ResizeInput,
} from '../src/domain/resize.js';

const NOW = '2026-12-03T20:00:00Z';
const NAMES = ['microk8s.io/hostpath'];
const BOUND_AT = new Date('2026-12-01T10:00:00Z');

const expandable: V1StorageClass = {
  metadata: { name: 'microk8s-hostpath' },
  provisioner: 'microk8s.io/hostpath',
  allowVolumeExpansion: true,
};

type ClaimStatus = NonNullable<V1PersistentVolumeClaim['status']>;

function claim(request: string, status: Partial<ClaimStatus> = {}): V1PersistentVolumeClaim {
  return {
    metadata: { name: 'data', namespace: 'default', uid: 'u1', resourceVersion: '41' },
    spec: {
      storageClassName: 'microk8s-hostpath',
      volumeName: 'pvc-u1',
      resources: { requests: { storage: request } },
    },
    status: { phase: 'Bound', capacity: { storage: '1Gi' }, ...status },
  };
}

function volume(capacity: string): V1PersistentVolume {
  return {
    metadata: { name: 'pvc-u1', annotations: { 'pv.kubernetes.io/provisioned-by': 'microk8s.io/hostpath' } },
    spec: {
      capacity: { storage: capacity },
      claimRef: { namespace: 'default', name: 'data', uid: 'u1' },
      hostPath: { path: '/var/snap/microk8s/common/default-storage/default-data-pvc-u1' },
    },
  };
}

function decide(over: Partial<ResizeInput>): ResizeDecision {
  return decideResize({
    claim: claim('2Gi'),
    volume: volume('1Gi'),
    storageClass: expandable,
    provisionerNames: NAMES,
    finalError: false,
    retryInfeasible: false,
    now: NOW,
    ...over,
  });
}

const resizing = { type: 'Resizing', status: 'True', lastTransitionTime: NOW };
const startAt = (size: string) => ({
  action: 'start',
  size,
  patch: {
    metadata: { resourceVersion: '41' },
    status: {
      conditions: [resizing],
      allocatedResources: { storage: size },
      allocatedResourceStatuses: { storage: 'ControllerResizeInProgress' },
    },
  },
});
const inProgress = (allocated: string): Partial<ClaimStatus> => ({
  allocatedResources: { storage: allocated },
  allocatedResourceStatuses: { storage: 'ControllerResizeInProgress' },
  conditions: [{ type: 'Resizing', status: 'True', lastTransitionTime: BOUND_AT }],
});
const infeasible = (allocated: string): Partial<ClaimStatus> => ({
  allocatedResources: { storage: allocated },
  allocatedResourceStatuses: { storage: 'ControllerResizeInfeasible' },
  conditions: [
    { type: 'Resizing', status: 'True', lastTransitionTime: BOUND_AT },
    {
      type: 'ControllerResizeError',
      status: 'True',
      lastTransitionTime: BOUND_AT,
      message: 'failed to expand pvc with x',
    },
  ],
});

describe('decideResize: which claims', () => {
  it.each<[string, Partial<ResizeInput>, string]>([
    [
      'a claim being deleted',
      { claim: { ...claim('2Gi'), metadata: { ...claim('2Gi').metadata, deletionTimestamp: BOUND_AT } } },
      'claim is being deleted',
    ],
    ['a Pending claim', { claim: { ...claim('2Gi'), status: { phase: 'Pending' } } }, 'claim is not bound'],
    [
      'a claim without a volume',
      { claim: { ...claim('2Gi'), spec: { storageClassName: 'microk8s-hostpath' } } },
      'claim is not bound',
    ],
    ['a missing class', { storageClass: undefined }, 'StorageClass "microk8s-hostpath" not found'],
    [
      "another provisioner's class",
      { storageClass: { ...expandable, provisioner: 'ebs.csi.aws.com' } },
      'StorageClass microk8s-hostpath belongs to ebs.csi.aws.com',
    ],
    [
      'a class without allowVolumeExpansion',
      { storageClass: { metadata: { name: 'microk8s-hostpath' }, provisioner: 'microk8s.io/hostpath' } },
      'StorageClass microk8s-hostpath does not allow volume expansion',
    ],
    [
      'a class with allowVolumeExpansion false',
      { storageClass: { ...expandable, allowVolumeExpansion: false } },
      'StorageClass microk8s-hostpath does not allow volume expansion',
    ],
    ['a PV not in the cache', { volume: undefined }, 'volume pvc-u1 not known yet'],
    [
      'a PV we did not provision',
      { volume: { ...volume('1Gi'), metadata: { name: 'pvc-u1' } } },
      'volume pvc-u1 is not ours',
    ],
    [
      'a PV bound to another claim',
      {
        volume: {
          ...volume('1Gi'),
          spec: { ...volume('1Gi').spec, claimRef: { namespace: 'default', name: 'data', uid: 'u0' } },
        },
      },
      'volume pvc-u1 is not bound to this claim',
    ],
    ['a request equal to the capacity', { claim: claim('1Gi') }, 'no resize requested'],
    ['a request equal to the capacity in other units', { claim: claim('1024Mi') }, 'no resize requested'],
    ['a request below the capacity', { claim: claim('512Mi') }, 'no resize requested'],
  ])('nothing for %s', (_name, over, why) => {
    expect(decide(over)).toEqual({ action: 'none', why });
  });
});

describe('decideResize: the steps of one resize', () => {
  it('starts: allocatedResources, ControllerResizeInProgress, condition Resizing, guarded by resourceVersion', () => {
    expect(decide({})).toEqual(startAt('2Gi'));
  });

  it('keeps the conditions that are not about resizing, drops old resize ones', () => {
    const c = claim('2Gi', {
      conditions: [
        { type: 'ModifyingVolume', status: 'True', lastTransitionTime: BOUND_AT, reason: 'r' },
        { type: 'FileSystemResizePending', status: 'True', lastTransitionTime: BOUND_AT },
      ],
    });
    expect(decide({ claim: c })).toEqual({
      ...startAt('2Gi'),
      patch: {
        ...startAt('2Gi').patch,
        status: {
          ...startAt('2Gi').patch.status,
          conditions: [
            { type: 'ModifyingVolume', status: 'True', lastTransitionTime: '2026-12-01T10:00:00Z', reason: 'r' },
            resizing,
          ],
        },
      },
    });
  });

  it('expands the PV once the start is recorded', () => {
    expect(decide({ claim: claim('2Gi', inProgress('2Gi')) })).toEqual({
      action: 'expand',
      size: '2Gi',
      volume: 'pvc-u1',
      patch: { spec: { capacity: { storage: '2Gi' } } },
    });
  });

  it('finishes once the PV has the size: capacity, resize conditions and status removed, others kept', () => {
    const c = claim('2Gi', {
      ...inProgress('2Gi'),
      conditions: [
        { type: 'Resizing', status: 'True', lastTransitionTime: BOUND_AT },
        { type: 'ModifyingVolume', status: 'True' },
      ],
    });
    expect(decide({ claim: c, volume: volume('2Gi') })).toEqual({
      action: 'finish',
      size: '2Gi',
      patch: {
        metadata: { resourceVersion: '41' },
        status: {
          capacity: { storage: '2Gi' },
          conditions: [{ type: 'ModifyingVolume', status: 'True' }],
          allocatedResourceStatuses: { storage: null },
        },
      },
    });
  });

  it('finishing the only condition removes the list', () => {
    const d = decide({ claim: claim('2Gi', inProgress('2Gi')), volume: volume('2Gi') });
    expect(d.action === 'finish' && d.patch.status.conditions).toBeNull();
  });

  it('after the finish there is nothing to do', () => {
    const done = claim('2Gi', { capacity: { storage: '2Gi' }, allocatedResources: { storage: '2Gi' } });
    expect(decide({ claim: done, volume: volume('2Gi') })).toEqual({ action: 'none', why: 'no resize requested' });
  });

  it('a claim without a resourceVersion gets unguarded patches', () => {
    const c = claim('2Gi');
    delete c.metadata!.resourceVersion;
    const d = decide({ claim: c });
    expect(d.action === 'start' && d.patch.metadata).toBeUndefined();
  });
});

describe('decideResize: a restart in the middle resumes from the status fields', () => {
  it.each<[string, Partial<ClaimStatus>, string, string, string]>([
    ['start recorded, PV not patched', inProgress('2Gi'), '1Gi', 'expand', '2Gi'],
    ['PV patched, finish not recorded', inProgress('2Gi'), '2Gi', 'finish', '2Gi'],
    ['PV patched beyond the size', inProgress('2Gi'), '5Gi', 'finish', '2Gi'],
    [
      'an allocated size but no status (older API server)',
      { allocatedResources: { storage: '2Gi' } },
      '2Gi',
      'start',
      '2Gi',
    ],
  ])('%s → %s', (_name, status, pv, action, size) => {
    const d = decide({ claim: claim('2Gi', status), volume: volume(pv) });
    expect([d.action, 'size' in d ? d.size : undefined]).toEqual([action, size]);
  });

  it('an uncertain attempt at a larger size resumes at that size, even after the request was lowered', () => {
    // external-resizer: ControllerResizeInProgress without a final error keeps allocatedResources.
    const d = decide({ claim: claim('3Gi', inProgress('100Gi')), volume: volume('1Gi') });
    expect(d).toMatchObject({ action: 'expand', size: '100Gi' });
  });

  it('after a final error in this process the lowered request wins', () => {
    const d = decide({ claim: claim('3Gi', inProgress('100Gi')), volume: volume('1Gi'), finalError: true });
    expect(d).toEqual(startAt('3Gi'));
  });

  it('a request raised during a resize: the resize in progress finishes first, then the new size starts', () => {
    const d = decide({ claim: claim('5Gi', inProgress('2Gi')), volume: volume('2Gi') });
    expect(d).toMatchObject({ action: 'finish', size: '2Gi' });
    const finished = claim('5Gi', { capacity: { storage: '2Gi' }, allocatedResources: { storage: '2Gi' } });
    expect(decide({ claim: finished, volume: volume('2Gi') })).toEqual(startAt('5Gi'));
  });

  it('an allocated size at or below the capacity is a finished resize, not one to resume', () => {
    const c = claim('5Gi', { capacity: { storage: '2Gi' }, allocatedResources: { storage: '2Gi' } });
    expect(decide({ claim: c, volume: volume('10Gi') })).toEqual(startAt('5Gi'));
  });
});

describe('decideResize: recovery from a failed expansion (RecoverVolumeExpansionFailure)', () => {
  it('an infeasible size is not retried at once', () => {
    expect(decide({ claim: claim('100Gi', infeasible('100Gi')) })).toEqual({
      action: 'wait',
      size: '100Gi',
      why: 'expansion to 100Gi was infeasible; retried slowly',
    });
  });

  it('the slow retry starts over, dropping the error condition', () => {
    expect(decide({ claim: claim('100Gi', infeasible('100Gi')), retryInfeasible: true })).toEqual(startAt('100Gi'));
  });

  it('a request lowered after the failure (still above the capacity) starts at once at the lowered size', () => {
    expect(decide({ claim: claim('3Gi', infeasible('100Gi')) })).toEqual(startAt('3Gi'));
  });

  it('a request raised after the failure starts at the new size', () => {
    expect(decide({ claim: claim('200Gi', infeasible('100Gi')) })).toEqual(startAt('200Gi'));
  });
});

describe('decideResize: node-side states another controller set', () => {
  it.each<[string, string, string, string]>([
    ['NodeResizePending', '2Gi', '2Gi', 'none'],
    ['NodeResizeInProgress', '2Gi', '2Gi', 'none'],
    ['NodeResizePending', '2Gi', '1Gi', 'start'],
    ['NodeResizeInfeasible', '2Gi', '2Gi', 'start'],
  ])('%s, allocated %s, PV %s → %s', (status, allocated, pv, action) => {
    const c = claim('2Gi', {
      allocatedResources: { storage: allocated },
      allocatedResourceStatuses: { storage: status },
    });
    expect(decide({ claim: c, volume: volume(pv) }).action).toBe(action);
  });

  it('a pending file system resize without a recorded status is left to the kubelet', () => {
    const c = claim('2Gi', { conditions: [{ type: 'FileSystemResizePending', status: 'True' }] });
    expect(decide({ claim: c, volume: volume('2Gi') })).toEqual({ action: 'none', why: 'waiting for the node ()' });
  });
});

describe('failResize', () => {
  it('marks the claim ControllerResizeInfeasible with a ControllerResizeError, keeping Resizing, unguarded', () => {
    expect(failResize(claim('2Gi', inProgress('2Gi')), 'volume_refused', 'denied by policy', NOW)).toEqual({
      action: 'fail',
      reason: 'volume_refused',
      message: 'denied by policy',
      patch: {
        status: {
          conditions: [
            { type: 'Resizing', status: 'True', lastTransitionTime: '2026-12-01T10:00:00Z' },
            {
              type: 'ControllerResizeError',
              status: 'True',
              lastTransitionTime: NOW,
              message: 'failed to expand pvc with denied by policy',
            },
          ],
          allocatedResourceStatuses: { storage: 'ControllerResizeInfeasible' },
        },
      },
    });
  });

  it('replaces an earlier error condition', () => {
    const f = failResize(claim('100Gi', infeasible('100Gi')), 'volume_refused', 'again', NOW);
    expect(f.patch.status.conditions?.map((c) => [c.type, c.message])).toEqual([
      ['Resizing', undefined],
      ['ControllerResizeError', 'failed to expand pvc with again'],
    ]);
  });
});

describe('mergeResizeConditions', () => {
  const old = [
    { type: 'A', status: 'True' },
    { type: 'Resizing', status: 'True' },
    { type: 'B', status: 'False' },
    { type: 'NodeResizeError', status: 'True' },
  ];
  it.each<[boolean, string[]]>([
    [false, ['A', 'Resizing:new', 'B', 'ControllerResizeError']],
    [true, ['A', 'Resizing:new', 'B', 'NodeResizeError', 'ControllerResizeError']],
  ])('keepOldResizeConditions %s', (keep, expected) => {
    const merged = mergeResizeConditions(
      old,
      [
        { type: 'Resizing', status: 'True', message: 'new' },
        { type: 'ControllerResizeError', status: 'True' },
      ],
      keep,
    );
    expect(merged?.map((c) => (c.message ? `${c.type}:${c.message}` : c.type))).toEqual(expected);
  });
});

describe('resizeRequested', () => {
  it.each<[string, V1PersistentVolumeClaim, boolean]>([
    ['a larger request', claim('2Gi'), true],
    ['an equal request', claim('1Gi'), false],
    ['a Pending claim', { ...claim('2Gi'), status: { phase: 'Pending' } }, false],
    ['no capacity yet', { ...claim('2Gi'), status: { phase: 'Bound' } }, true],
  ])('%s → %s', (_name, c, expected) => {
    expect(resizeRequested(c)).toBe(expected);
  });
});

describe('rfc3339', () => {
  it.each<[Date | string, string]>([
    [new Date('2026-12-03T20:00:00Z'), '2026-12-03T20:00:00Z'],
    [new Date('2026-12-03T20:00:00.250Z'), '2026-12-03T20:00:00.250Z'],
    ['2026-12-03T20:00:00Z', '2026-12-03T20:00:00Z'],
  ])('%s → %s', (t, expected) => {
    expect(rfc3339(t)).toBe(expected);
  });
});
