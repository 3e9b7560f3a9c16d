import { describe, expect, it } from '@jest/globals';
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { claimClassName, volumeClassName } from '../src/domain/class-name.js';

const BETA = 'volume.beta.kubernetes.io/storage-class';

describe('claimClassName (GetPersistentVolumeClaimClass)', () => {
  const table: [string, V1PersistentVolumeClaim, string][] = [
    ['spec only', { spec: { storageClassName: 'fast' } }, 'fast'],
    [
      'beta annotation only',
      { metadata: { annotations: { [BETA]: 'microk8s-hostpath' } }, spec: {} },
      'microk8s-hostpath',
    ],
    [
      'the beta annotation wins over the spec',
      { metadata: { annotations: { [BETA]: 'old' } }, spec: { storageClassName: 'new' } },
      'old',
    ],
    [
      'an empty beta annotation still wins (asks for no class)',
      { metadata: { annotations: { [BETA]: '' } }, spec: { storageClassName: 'new' } },
      '',
    ],
    ['neither', { metadata: { annotations: { other: 'x' } }, spec: {} }, ''],
    ['no spec, no metadata', {}, ''],
  ];
  it.each(table)('%s', (_name, claim, expected) => {
    expect(claimClassName(claim)).toBe(expected);
  });
});

describe('volumeClassName (GetPersistentVolumeClass)', () => {
  const table: [string, V1PersistentVolume, string][] = [
    ['spec only', { spec: { storageClassName: 'fast' } }, 'fast'],
    [
      'beta annotation only',
      { metadata: { annotations: { [BETA]: 'microk8s-hostpath' } }, spec: {} },
      'microk8s-hostpath',
    ],
    [
      'the beta annotation wins over the spec',
      { metadata: { annotations: { [BETA]: 'old' } }, spec: { storageClassName: 'new' } },
      'old',
    ],
    ['neither', {}, ''],
  ];
  it.each(table)('%s', (_name, pv, expected) => {
    expect(volumeClassName(pv)).toBe(expected);
  });
});
