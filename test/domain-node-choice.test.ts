import { describe, expect, it } from '@jest/globals';
import type { V1Node } from '@kubernetes/client-node';
import { RecentFailures } from '../controllers/recent-failures.js';
import {
  chooseNodeForImmediate,
  chooseNodeForSharedDelete,
  describeSkippedNodes,
  isLinuxNode,
  type NodeChoiceInput,
  type SkippedNode,
} from '../src/domain/node-choice.js';

function node(
  name: string,
  opts: { ready?: boolean; os?: string; taint?: string; cordoned?: boolean; zone?: string } = {},
): V1Node {
  return {
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        ...(opts.os !== undefined ? { 'kubernetes.io/os': opts.os } : {}),
        ...(opts.zone ? { zone: opts.zone } : {}),
      },
    },
    spec: {
      ...(opts.cordoned ? { unschedulable: true } : {}),
      ...(opts.taint ? { taints: [{ key: 'dedicated', value: opts.taint, effect: 'NoSchedule' }] } : {}),
    },
    status: { conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }] },
  };
}

describe('isLinuxNode', () => {
  it.each([
    [node('a'), true],
    [node('b', { os: 'linux' }), true],
    [node('c', { os: 'windows' }), false],
    [node('d', { os: '' }), false],
  ])('%#', (n, expected) => {
    expect(isLinuxNode(n)).toBe(expected);
  });
});

describe('chooseNodeForImmediate: Linux only, recent failures skipped, skipped nodes named', () => {
  const table: [string, NodeChoiceInput, { node?: string; reason?: RegExp; skipped: SkippedNode[] }][] = [
    [
      'a Windows node is never a candidate, even as the preferred node',
      { nodes: [node('win', { os: 'windows' }), node('lin')], preferredNode: 'win', volumeCounts: new Map() },
      { node: 'lin', skipped: [{ name: 'win', why: 'not_linux' }] },
    ],
    [
      'only Windows nodes: none fits',
      { nodes: [node('win', { os: 'windows' })], volumeCounts: new Map() },
      { reason: /no Ready, schedulable node running Linux/, skipped: [{ name: 'win', why: 'not_linux' }] },
    ],
    [
      'the preferred node failed recently: the next one is chosen',
      { nodes: [node('m1'), node('w1')], preferredNode: 'm1', volumeCounts: new Map(), excluded: new Set(['m1']) },
      { node: 'w1', skipped: [{ name: 'm1', why: 'recent_failure' }] },
    ],
    [
      'the node with the fewest volumes failed recently: the next fewest is chosen',
      {
        nodes: [node('a'), node('b'), node('c')],
        volumeCounts: new Map([
          ['b', 1],
          ['c', 2],
        ]),
        excluded: new Set(['a']),
      },
      { node: 'b', skipped: [{ name: 'a', why: 'recent_failure' }] },
    ],
    [
      'every candidate failed recently: tried again rather than none',
      { nodes: [node('a'), node('b')], volumeCounts: new Map(), excluded: new Set(['a', 'b']) },
      { node: 'a', skipped: [] },
    ],
    [
      'a recent failure of an untainted node beats a tainted node',
      {
        nodes: [node('gpu', { taint: 'gpu' }), node('w1'), node('w2')],
        volumeCounts: new Map(),
        excluded: new Set(['w1']),
      },
      {
        node: 'w2',
        skipped: [
          { name: 'gpu', why: 'tainted' },
          { name: 'w1', why: 'recent_failure' },
        ],
      },
    ],
    [
      'not Ready, cordoned and outside allowedTopologies are named too, in node order',
      {
        nodes: [
          node('down', { ready: false }),
          node('off', { cordoned: true }),
          node('a', { zone: 'x' }),
          node('b', { zone: 'y' }),
        ],
        allowedTopologies: [{ matchLabelExpressions: [{ key: 'zone', values: ['y'] }] }],
        volumeCounts: new Map(),
      },
      {
        node: 'b',
        skipped: [
          { name: 'down', why: 'not_ready' },
          { name: 'off', why: 'cordoned' },
          { name: 'a', why: 'topology' },
        ],
      },
    ],
  ];
  it.each(table)('%s', (_name, input, expected) => {
    const result = chooseNodeForImmediate(input);
    expect(result.skipped).toEqual(expected.skipped);
    if (expected.node) expect(result.ok && result.node.metadata?.name).toBe(expected.node);
    else expect(!result.ok && result.reason).toMatch(expected.reason!);
  });
});

describe('chooseNodeForSharedDelete', () => {
  const table: [string, V1Node[], string[], string | undefined][] = [
    [
      'free nodes first, then by name',
      [node('b', { taint: 'gpu' }), node('c'), node('a', { cordoned: true })],
      [],
      'c',
    ],
    ['cordoned or tainted when nothing else', [node('b', { taint: 'gpu' }), node('a', { cordoned: true })], [], 'a'],
    ['never NotReady or Windows', [node('a', { ready: false }), node('b', { os: 'windows' })], [], undefined],
    ['a node where it failed comes last', [node('a'), node('b', { taint: 'gpu' })], ['a'], 'b'],
    ['but is tried again when it is the only one', [node('a')], ['a'], 'a'],
  ];
  it.each(table)('%s', (_name, nodes, excluded, expected) => {
    expect(chooseNodeForSharedDelete(nodes, new Set(excluded))?.metadata?.name).toBe(expected);
  });
});

describe('describeSkippedNodes (at most 2 names per reason here)', () => {
  it.each([
    [[], ''],
    [[{ name: 'win', why: 'not_linux' }], 'skipped: win (not Linux)'],
    [
      [
        { name: 'w1', why: 'recent_failure' },
        { name: 'win', why: 'not_linux' },
        { name: 'w2', why: 'recent_failure' },
      ],
      'skipped: w1, w2 (a helper failed there recently); win (not Linux)',
    ],
    [['a', 'b', 'c', 'd'].map((name) => ({ name, why: 'tainted' })), 'skipped: a, b and 2 more (tainted)'],
  ] as [SkippedNode[], string][])('%j', (skipped, expected) => {
    expect(describeSkippedNodes(skipped, 2)).toBe(expected);
  });
});

describe('RecentFailures', () => {
  it('remembers a failed node per class for 600 s, then forgets it', () => {
    let now = 0;
    const failures = new RecentFailures(() => now);
    failures.failed('fast', 'w1');
    failures.failed('slow', 'w2');
    expect([...failures.nodes('fast')]).toEqual(['w1']);
    expect([...failures.nodes('slow')]).toEqual(['w2']);
    now = 599_999;
    expect([...failures.nodes('fast')]).toEqual(['w1']);
    now = 600_000;
    expect([...failures.nodes('fast')]).toEqual([]);
    expect([...failures.nodes('slow')]).toEqual([]);
  });
});
