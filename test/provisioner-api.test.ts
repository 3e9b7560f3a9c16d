import { describe, expect, it } from '@jest/globals';
import type { CoreV1Api, V1PersistentVolume } from '@kubernetes/client-node';
import { ProvisionerApi } from '../src/kube/provisioner-api.js';

const OURS = 'external-provisioner.volume.kubernetes.io/finalizer';
const PROTECTION = 'kubernetes.io/pv-protection';

function pv(finalizers: string[] | undefined, resourceVersion = '7'): V1PersistentVolume {
  return { metadata: { name: 'pvc-1', resourceVersion, ...(finalizers ? { finalizers } : {}) } };
}

/**
 * A CoreV1Api with the two calls the finalizer edits make: reads answer `reads` in turn, patches are recorded and
 * fail with the status codes in `failures` in turn (then succeed).
 */
function fakeCore(reads: V1PersistentVolume[], failures: number[] = []) {
  const calls: Array<['read'] | ['patch', unknown]> = [];
  const core = {
    readPersistentVolume: () => {
      calls.push(['read']);
      const next = reads.shift();
      return next ? Promise.resolve(next) : Promise.reject(Object.assign(new Error('not found'), { code: 404 }));
    },
    patchPersistentVolume: ({ body }: { body: unknown }) => {
      calls.push(['patch', body]);
      const code = failures.shift();
      return code ? Promise.reject(Object.assign(new Error(`HTTP ${code}`), { code })) : Promise.resolve(pv([]));
    },
  };
  return { api: new ProvisionerApi(core as unknown as CoreV1Api), calls };
}

describe('ProvisionerApi finalizer edits', () => {
  it.each([
    ['first in the list', [OURS, PROTECTION], 0],
    ['after another', [PROTECTION, OURS], 1],
  ])(
    'removes ours by index, guarded by a test of that entry (%s), no read with the object known',
    async (_n, list, i) => {
      const { api, calls } = fakeCore([]);
      await api.removeVolumeFinalizer('pvc-1', OURS, pv(list));
      expect(calls).toEqual([
        [
          'patch',
          [
            { op: 'test', path: `/metadata/finalizers/${i}`, value: OURS },
            { op: 'remove', path: `/metadata/finalizers/${i}` },
          ],
        ],
      ]);
    },
  );

  it('removes every copy of ours, last first, each guarded', async () => {
    const { api, calls } = fakeCore([]);
    await api.removeVolumeFinalizer('pvc-1', OURS, pv([OURS, PROTECTION, OURS]));
    expect(calls).toEqual([
      [
        'patch',
        [
          { op: 'test', path: '/metadata/finalizers/2', value: OURS },
          { op: 'remove', path: '/metadata/finalizers/2' },
          { op: 'test', path: '/metadata/finalizers/0', value: OURS },
          { op: 'remove', path: '/metadata/finalizers/0' },
        ],
      ],
    ]);
  });

  it('removes nothing when ours is not there (read live without a known object)', async () => {
    const { api, calls } = fakeCore([pv([PROTECTION])]);
    await api.removeVolumeFinalizer('pvc-1', OURS);
    expect(calls).toEqual([['read']]);
  });

  it('reads again and retries when the entry moved (422), against the fresh list', async () => {
    const { api, calls } = fakeCore([pv([OURS])], [422]);
    await api.removeVolumeFinalizer('pvc-1', OURS, pv([PROTECTION, OURS]));
    expect(calls).toEqual([
      [
        'patch',
        [
          { op: 'test', path: '/metadata/finalizers/1', value: OURS },
          { op: 'remove', path: '/metadata/finalizers/1' },
        ],
      ],
      ['read'],
      [
        'patch',
        [
          { op: 'test', path: '/metadata/finalizers/0', value: OURS },
          { op: 'remove', path: '/metadata/finalizers/0' },
        ],
      ],
    ]);
  });

  it('a gone PV is success', async () => {
    const { api, calls } = fakeCore([], [404]);
    await api.removeVolumeFinalizer('pvc-1', OURS, pv([OURS]));
    expect(calls).toHaveLength(1);
  });

  it('gives up after five attempts and throws the last answer', async () => {
    const reads = Array.from({ length: 5 }, () => pv([OURS]));
    const { api, calls } = fakeCore(reads, [422, 422, 422, 422, 422]);
    await expect(api.removeVolumeFinalizer('pvc-1', OURS, pv([OURS]))).rejects.toThrow('HTTP 422');
    expect(calls.filter((c) => c[0] === 'patch')).toHaveLength(5);
  });

  it.each([
    [
      'to an existing list: guarded by the list, appended',
      pv([PROTECTION]),
      [
        { op: 'test', path: '/metadata/finalizers', value: [PROTECTION] },
        { op: 'add', path: '/metadata/finalizers/-', value: OURS },
      ],
    ],
    [
      'with no list: guarded by the resourceVersion',
      pv(undefined, '42'),
      [
        { op: 'test', path: '/metadata/resourceVersion', value: '42' },
        { op: 'add', path: '/metadata/finalizers', value: [OURS] },
      ],
    ],
  ])('adds ours %s', async (_n, known, body) => {
    const { api, calls } = fakeCore([]);
    await api.addVolumeFinalizer('pvc-1', OURS, known);
    expect(calls).toEqual([['patch', body]]);
  });

  it('adds nothing when ours is there', async () => {
    const { api, calls } = fakeCore([]);
    await api.addVolumeFinalizer('pvc-1', OURS, pv([OURS, PROTECTION]));
    expect(calls).toEqual([]);
  });
});
