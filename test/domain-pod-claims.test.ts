import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { claimNamesOfPod } from '../src/domain/pod-claims.js';
import { stripPendingPod } from '../src/kube/transforms.js';

const pod = (volumes: NonNullable<V1Pod['spec']>['volumes']): V1Pod => ({
  metadata: { name: 'web-0', namespace: 'shop' },
  spec: { containers: [], ...(volumes ? { volumes } : {}) },
});

describe('claimNamesOfPod', () => {
  it.each<[string, NonNullable<V1Pod['spec']>['volumes'], string[]]>([
    ['no volumes', undefined, []],
    ['a claim volume', [{ name: 'd', persistentVolumeClaim: { claimName: 'data' } }], ['data']],
    [
      'a generic ephemeral volume: <pod>-<volume>',
      [{ name: 'scratch', ephemeral: { volumeClaimTemplate: { spec: {} } } }],
      ['web-0-scratch'],
    ],
    [
      'other volumes are not claims',
      [
        { name: 'c', configMap: { name: 'x' } },
        { name: 'e', emptyDir: {} },
      ],
      [],
    ],
    [
      'the same claim twice',
      [
        { name: 'a', persistentVolumeClaim: { claimName: 'data' } },
        { name: 'b', persistentVolumeClaim: { claimName: 'data' } },
      ],
      ['data'],
    ],
  ])('%s', (_n, volumes, expected) => {
    expect(claimNamesOfPod(pod(volumes))).toEqual(expected);
  });

  it('still finds an ephemeral claim after the informer transform stripped the pod', () => {
    const stripped = stripPendingPod(pod([{ name: 'scratch', ephemeral: { volumeClaimTemplate: { spec: {} } } }]));
    expect(claimNamesOfPod(stripped)).toEqual(['web-0-scratch']);
  });
});
