import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { HelperRunner } from '../controllers/helper-runner.js';
import { deletedFailure } from '../src/domain/helper-status.js';
import { FakeCache, FakeKube, FakeMetrics, silentLogger } from './support/fakes.js';

const evicted = (pod: V1Pod): V1Pod => ({
  ...pod,
  spec: { ...pod.spec!, nodeName: 'w1' },
  status: {
    phase: 'Pending',
    conditions: [
      {
        type: 'DisruptionTarget',
        status: 'True',
        reason: 'DeletionByTaintManager',
        message: 'Taint manager: deleting due to NoExecute taint',
      },
    ],
  },
});

describe('deletedFailure', () => {
  it('names the eviction and its reason when the pod carries a DisruptionTarget condition', () => {
    expect(deletedFailure(evicted({ metadata: { name: 'h' }, spec: { containers: [] } }))).toEqual({
      state: 'failed',
      reason: 'evicted',
      message:
        'the helper pod was evicted from node w1 before it finished (DeletionByTaintManager: Taint manager: deleting due to NoExecute taint)',
    });
  });

  it('says deleted otherwise', () => {
    expect(deletedFailure(undefined)).toMatchObject({ reason: 'failed', message: expect.stringMatching(/deleted/) });
    expect(deletedFailure({ status: { conditions: [{ type: 'DisruptionTarget', status: 'False' }] } }).reason).toBe(
      'failed',
    );
  });
});

describe('HelperRunner', () => {
  it('reports a helper evicted while running as evicted, with the taint manager message, and deletes nothing twice', async () => {
    const cache = new FakeCache();
    const kube = new FakeKube(cache);
    const metrics = new FakeMetrics();
    const runner = new HelperRunner({
      cache,
      kube,
      metrics,
      settings: {
        namespace: 'kube-system',
        image: 'busybox',
        priorityClassName: '',
        timeoutSeconds: 5,
        maxPerNode: 10,
      },
      clock: () => 0,
    });
    kube.onPodCreated = (pod) => {
      const gone = evicted(pod);
      cache.helperMap.delete(pod.metadata!.name!);
      runner.onHelperEvent(gone, true);
    };
    const result = await runner.run(
      {
        operation: 'create',
        volumeName: 'pvc-u1',
        node: { metadata: { name: 'w1' } },
        baseDirectory: '/var/hpp',
        directoryName: 'default-data-pvc-u1',
        tolerations: [],
      },
      silentLogger,
    );
    expect(result).toEqual({
      ok: false,
      podName: 'hostpath-create-pvc-u1',
      reason: 'evicted',
      message: expect.stringContaining('DeletionByTaintManager') as unknown as string,
    });
  });
});
