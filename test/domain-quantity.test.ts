import { describe, expect, it } from '@jest/globals';
import { compareQuantities, isQuantity } from '../src/domain/quantity.js';

describe('compareQuantities', () => {
  it.each<[string | undefined, string | undefined, number]>([
    ['1Gi', '1Gi', 0],
    ['1Gi', '1024Mi', 0],
    ['1Gi', '1073741824', 0],
    ['2Gi', '1Gi', 1],
    ['1G', '1Gi', -1],
    ['1G', '1000M', 0],
    ['1.5Gi', '1536Mi', 0],
    ['.5Ki', '512', 0],
    ['1e3', '1k', 0],
    ['1E-3', '1m', 0],
    ['500m', '1', -1],
    ['1500m', '1', 1],
    ['+1Ki', '1024', 0],
    ['-1', '0', -1],
    ['1Ti', '1099511627776', 0],
    ['8Ei', '9223372036854775808', 0],
    ['1Gi', undefined, 1],
    [undefined, undefined, 0],
    [undefined, '1', -1],
    ['garbage', '0', 0],
  ])('%s vs %s → %d', (a, b, sign) => {
    expect(Math.sign(compareQuantities(a, b))).toBe(sign);
  });
});

describe('isQuantity', () => {
  it.each([
    ['1Gi', true],
    ['10', true],
    ['1.5', true],
    ['1e9', true],
    ['', false],
    ['Gi', false],
    ['1GB', false],
    ['1 Gi', false],
    ['1Gi ', false],
  ])('%j → %s', (text, ok) => {
    expect(isQuantity(text)).toBe(ok);
  });
});
