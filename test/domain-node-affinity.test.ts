import { describe, expect, it } from '@jest/globals';
import type { V1Node, V1NodeSelectorRequirement, V1Pod } from '@kubernetes/client-node';
import { nodeSelectionMismatch, requirementMatches } from '../src/domain/node-affinity.js';

const labels = { 'kubernetes.io/hostname': 'w1', gpu: 'true', cores: '16' };

describe('requirementMatches', () => {
  it.each<[string, V1NodeSelectorRequirement, boolean]>([
    ['In, value listed', { key: 'gpu', operator: 'In', values: ['true', 'yes'] }, true],
    ['In, value not listed', { key: 'gpu', operator: 'In', values: ['false'] }, false],
    ['In, key missing', { key: 'zone', operator: 'In', values: ['a'] }, false],
    ['NotIn, value not listed', { key: 'gpu', operator: 'NotIn', values: ['false'] }, true],
    ['NotIn, value listed', { key: 'gpu', operator: 'NotIn', values: ['true'] }, false],
    ['NotIn, key missing', { key: 'zone', operator: 'NotIn', values: ['a'] }, true],
    ['Exists', { key: 'gpu', operator: 'Exists' }, true],
    ['Exists, key missing', { key: 'zone', operator: 'Exists' }, false],
    ['DoesNotExist', { key: 'zone', operator: 'DoesNotExist' }, true],
    ['DoesNotExist, key present', { key: 'gpu', operator: 'DoesNotExist' }, false],
    ['Gt', { key: 'cores', operator: 'Gt', values: ['8'] }, true],
    ['Gt, equal', { key: 'cores', operator: 'Gt', values: ['16'] }, false],
    ['Lt', { key: 'cores', operator: 'Lt', values: ['32'] }, true],
    ['Gt, not an integer label', { key: 'gpu', operator: 'Gt', values: ['1'] }, false],
    ['Gt, two values', { key: 'cores', operator: 'Gt', values: ['1', '2'] }, false],
    ['unknown operator', { key: 'gpu', operator: 'Like', values: ['t*'] }, false],
  ])('%s', (_name, req, expected) => {
    expect(requirementMatches(req, labels)).toBe(expected);
  });
});

describe('nodeSelectionMismatch', () => {
  const node: V1Node = { metadata: { name: 'w1', labels } };
  const pod = (spec: Partial<NonNullable<V1Pod['spec']>>): V1Pod => ({ spec: { containers: [], ...spec } });
  const required = (...terms: object[]) => ({
    affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } },
  });
  it.each<[string, V1Pod, string | undefined]>([
    ['no node selection', pod({}), undefined],
    ['nodeSelector met', pod({ nodeSelector: { gpu: 'true', 'kubernetes.io/hostname': 'w1' } }), undefined],
    ['nodeSelector unmet', pod({ nodeSelector: { gpu: 'false', zone: 'a' } }), 'nodeSelector gpu=false, zone=a'],
    [
      'one term of two matches',
      pod(
        required(
          { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] },
          { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['w1'] }] },
        ),
      ),
      undefined,
    ],
    [
      'a term needs all its requirements',
      pod(
        required({
          matchExpressions: [
            { key: 'gpu', operator: 'Exists' },
            { key: 'zone', operator: 'In', values: ['a'] },
          ],
        }),
      ),
      'required node affinity',
    ],
    [
      'matchFields on another node',
      pod(required({ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['w2'] }] })),
      'required node affinity',
    ],
    ['an empty term matches nothing', pod(required({})), 'required node affinity'],
    [
      'preferred affinity is not a requirement',
      pod({
        affinity: {
          nodeAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [
              { weight: 1, preference: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] } },
            ],
          },
        },
      }),
      undefined,
    ],
  ])('%s', (_name, p, expected) => {
    expect(nodeSelectionMismatch(p, node)).toBe(expected);
  });
});
