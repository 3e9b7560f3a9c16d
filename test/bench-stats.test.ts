import { describe, expect, it } from '@jest/globals';
import { countRequests, quantile, spread } from '../bench/stats.js';

describe('quantile (nearest rank)', () => {
  it.each([
    { values: [], q: 0.5, expected: Number.NaN },
    { values: [7], q: 0.99, expected: 7 },
    { values: [3, 1, 2], q: 0.5, expected: 2 },
    { values: [1, 2, 3, 4], q: 0.5, expected: 2 },
    { values: [1, 2, 3, 4], q: 0.75, expected: 3 },
    { values: [1, 2, 3, 4], q: 1, expected: 4 },
    { values: [1, 2, 3, 4], q: 0, expected: 1 },
    { values: Array.from({ length: 200 }, (_, i) => 200 - i), q: 0.99, expected: 198 },
    { values: Array.from({ length: 200 }, (_, i) => i + 1), q: 0.95, expected: 190 },
  ])('$q of $values.length values → $expected', ({ values, q, expected }) => {
    expect(quantile(values, q)).toBe(expected);
  });

  it('refuses q outside [0, 1]', () => {
    expect(() => quantile([1], 1.5)).toThrow(RangeError);
    expect(() => quantile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe('spread', () => {
  it.each([
    { values: [], expected: { median: Number.NaN, min: Number.NaN, max: Number.NaN } },
    { values: [5], expected: { median: 5, min: 5, max: 5 } },
    { values: [9, 1, 5], expected: { median: 5, min: 1, max: 9 } },
    { values: [4, 1, 2, 3], expected: { median: 2.5, min: 1, max: 4 } },
  ])('$values → $expected', ({ values, expected }) => {
    expect(spread(values)).toEqual(expected);
  });
});

describe('countRequests', () => {
  const sa = 'system:serviceaccount:hpp-1:hostpath-provisioner';
  const event = (fields: Record<string, unknown>): string =>
    JSON.stringify({
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      stage: 'ResponseComplete',
      user: { username: sa },
      ...fields,
    });

  it('counts one line per request of the user by verb and resource, subresources apart', () => {
    const lines = [
      event({ verb: 'create', objectRef: { resource: 'pods', namespace: 'hpp-1' } }),
      event({ verb: 'create', objectRef: { resource: 'pods', namespace: 'hpp-1' } }),
      event({ verb: 'get', objectRef: { resource: 'pods', subresource: 'log' } }),
      event({ verb: 'create', objectRef: { resource: 'persistentvolumes' } }),
      // The same request at an earlier stage, another user, a non-resource URL, junk and an empty line.
      event({ verb: 'watch', stage: 'ResponseStarted', objectRef: { resource: 'pods' } }),
      event({ verb: 'create', user: { username: 'admin' }, objectRef: { resource: 'pods' } }),
      event({ verb: 'get', requestURI: '/version' }),
      'not json',
      '',
    ];
    expect(countRequests(lines, sa)).toEqual({
      total: 5,
      byVerbResource: {
        'create persistentvolumes': 1,
        'create pods': 2,
        'get /version': 1,
        'get pods/log': 1,
      },
    });
  });

  it('counts a request that panicked once', () => {
    expect(countRequests([event({ verb: 'list', stage: 'Panic', objectRef: { resource: 'nodes' } })], sa)).toEqual({
      total: 1,
      byVerbResource: { 'list nodes': 1 },
    });
  });
});
