import { describe, expect, it } from '@jest/globals';
import { toleratesTaint, untoleratedNoExecuteTaints, type Taint } from '../e2e/node-agent/tolerations.js';

const db: Taint = { key: 'dedicated', value: 'db', effect: 'NoExecute' };
const gpu: Taint = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' };

describe('toleratesTaint', () => {
  it.each([
    [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoExecute' }, true],
    [{ key: 'dedicated', value: 'db' }, true], // default operator Equal, empty effect matches all
    [{ key: 'dedicated', operator: 'Equal', value: 'gpu' }, false],
    [{ key: 'dedicated', operator: 'Exists' }, true],
    [{ operator: 'Exists' }, true], // empty key + Exists tolerates everything
    [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }, false],
    [{ key: 'other', operator: 'Exists' }, false],
    [{ key: 'dedicated', operator: 'Lt', value: 'db' }, false],
  ])('%j tolerates dedicated=db:NoExecute: %s', (toleration, expected) => {
    expect(toleratesTaint(toleration, db)).toBe(expected);
  });

  it('compares a missing value as empty', () => {
    expect(toleratesTaint({ key: 'k' }, { key: 'k', effect: 'NoExecute' })).toBe(true);
    expect(toleratesTaint({ key: 'k', value: 'v' }, { key: 'k', effect: 'NoExecute' })).toBe(false);
  });
});

describe('untoleratedNoExecuteTaints', () => {
  it('ignores NoSchedule taints and returns the untolerated NoExecute ones', () => {
    expect(untoleratedNoExecuteTaints(undefined, [gpu, db])).toEqual([db]);
    expect(
      untoleratedNoExecuteTaints([{ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }], [gpu, db]),
    ).toEqual([]);
    expect(untoleratedNoExecuteTaints([], undefined)).toEqual([]);
  });
});
