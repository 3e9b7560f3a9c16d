import { describe, expect, it } from '@jest/globals';
import type { V1Taint, V1Toleration } from '@kubernetes/client-node';
import {
  dedupeTolerations,
  helperTolerations,
  tolerationForTaint,
  toleratesTaint,
  untoleratedTaints,
} from '../src/domain/tolerations.js';

describe('tolerationForTaint', () => {
  const table: [string, V1Taint, V1Toleration][] = [
    [
      'custom NoSchedule with value',
      { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' },
      { key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' },
    ],
    [
      'NoExecute with value',
      { key: 'cp-only', value: 'true', effect: 'NoExecute' },
      { key: 'cp-only', operator: 'Equal', value: 'true', effect: 'NoExecute' },
    ],
    [
      'PreferNoSchedule',
      { key: 'soft', value: 'x', effect: 'PreferNoSchedule' },
      { key: 'soft', operator: 'Equal', value: 'x', effect: 'PreferNoSchedule' },
    ],
    [
      'control-plane (empty value) → Exists',
      { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' },
      { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
    ],
    [
      'explicit empty value → Exists',
      { key: 'node.kubernetes.io/unschedulable', value: '', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
    ],
    [
      'disk pressure',
      { key: 'node.kubernetes.io/disk-pressure', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' },
    ],
    [
      'not-ready NoExecute gets no tolerationSeconds',
      { key: 'node.kubernetes.io/not-ready', effect: 'NoExecute', timeAdded: new Date(0) },
      { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
    ],
  ];
  it.each(table)('%s', (_name, taint, expected) => {
    expect(tolerationForTaint(taint)).toEqual(expected);
  });
});

describe('toleratesTaint (k8s Toleration.ToleratesTaint)', () => {
  const taint: V1Taint = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' };
  const table: [string, V1Toleration, boolean][] = [
    ['Equal, same value and effect', { key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }, true],
    ['operator defaults to Equal', { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }, true],
    ['Equal, other value', { key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }, false],
    ['Exists on the key', { key: 'dedicated', operator: 'Exists' }, true],
    ['empty effect matches every effect', { key: 'dedicated', operator: 'Equal', value: 'gpu' }, true],
    ['other effect', { key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }, false],
    ['empty key with Exists matches all', { operator: 'Exists' }, true],
    ['empty key with Equal matches nothing', { operator: 'Equal', value: 'gpu' }, false],
    ['other key', { key: 'other', operator: 'Exists' }, false],
  ];
  it.each(table)('%s', (_name, toleration, expected) => {
    expect(toleratesTaint(toleration, taint)).toBe(expected);
  });
});

describe('helperTolerations', () => {
  const gpu: V1Taint = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' };
  const cpOnly: V1Taint = { key: 'cp-only', value: 'true', effect: 'NoExecute' };
  const cp: V1Taint = { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' };
  const table: [string, Parameters<typeof helperTolerations>, V1Toleration[]][] = [
    ['no taints, no consumers', ['node-taints', [], []], []],
    [
      'exactly the node taints',
      ['node-taints', [cp, cpOnly], []],
      [
        { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
        { key: 'cp-only', operator: 'Equal', value: 'true', effect: 'NoExecute' },
      ],
    ],
    [
      'consumer duplicates of the node taint are dropped',
      ['node-taints', [gpu], [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }]],
      [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }],
    ],
    [
      'consumer tolerations matching a node taint are added without tolerationSeconds; others are left out',
      [
        'node-taints',
        [cpOnly],
        [
          { key: 'cp-only', operator: 'Equal', value: 'true', effect: 'NoExecute', tolerationSeconds: 60 },
          { key: 'cp-only', operator: 'Exists' },
          { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
          { key: 'extra', operator: 'Exists' },
        ],
      ],
      [
        { key: 'cp-only', operator: 'Equal', value: 'true', effect: 'NoExecute' },
        { key: 'cp-only', operator: 'Exists' },
      ],
    ],
    [
      'a plain node gets none of the consumer tolerations',
      ['node-taints', [], [{ key: 'cp-only', operator: 'Exists' }, { operator: 'Exists' }]],
      [],
    ],
    [
      'duplicate taints on the node',
      ['node-taints', [gpu, { ...gpu }], []],
      [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }],
    ],
    ['policy all', ['all', [gpu], [{ key: 'x', operator: 'Exists' }]], [{ operator: 'Exists' }]],
    ['policy none', ['none', [gpu], [{ key: 'x', operator: 'Exists' }]], []],
  ];
  it.each(table)('%s', (_name, args, expected) => {
    expect(helperTolerations(...args)).toEqual(expected);
  });

  it('tolerates every NoSchedule and NoExecute taint of the node it was made from', () => {
    const taints: V1Taint[] = [gpu, cpOnly, cp, { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }];
    expect(untoleratedTaints(taints, helperTolerations('node-taints', taints))).toEqual([]);
    expect(untoleratedTaints(taints, [])).toHaveLength(4);
  });
});

describe('dedupeTolerations', () => {
  it('treats a missing operator as Equal and keeps the first', () => {
    expect(
      dedupeTolerations([
        { key: 'a', value: 'b', effect: 'NoSchedule' },
        { key: 'a', operator: 'Equal', value: 'b', effect: 'NoSchedule' },
      ]),
    ).toEqual([{ key: 'a', value: 'b', effect: 'NoSchedule' }]);
  });
});
