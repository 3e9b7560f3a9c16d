import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { backoffSeconds } from '../src/runtime/backoff.js';

describe('backoffSeconds', () => {
  it.each([
    [1, 1],
    [2, 2],
    [3, 4],
    [9, 256],
    [10, 300],
    [1000, 300],
    [0, 1],
    [-5, 1],
  ])('attempt %d without jitter is %d s (base 1, max 300)', (attempt, expected) => {
    expect(backoffSeconds(attempt, 1, 300, () => 0)).toBe(expected);
  });

  it('takes at most 20 % away as jitter, also at the cap', () => {
    expect(backoffSeconds(3, 1, 300, () => 0.999999)).toBeCloseTo(4 * 0.8, 4);
    expect(backoffSeconds(50, 1, 300, () => 0.5)).toBe(270);
  });

  it('rejects a non-positive base or max', () => {
    expect(() => backoffSeconds(1, 0, 10)).toThrow(RangeError);
    expect(() => backoffSeconds(1, 1, Number.NaN)).toThrow(RangeError);
  });

  it('stays within (0.8 d, d] and never exceeds max for any input', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -10, max: 10_000 }),
        fc.double({ min: 0.001, max: 100, noNaN: true }),
        fc.double({ min: 0.001, max: 10_000, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, base, max, r) => {
          const d = Math.min(max, base * 2 ** Math.min(Math.max(1, attempt) - 1, 60));
          const got = backoffSeconds(attempt, base, max, () => r);
          return got <= max && got <= d && got >= 0.8 * d - 1e-9 && got > 0;
        },
      ),
    );
  });
});
