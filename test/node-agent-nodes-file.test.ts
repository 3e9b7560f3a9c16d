import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { parseNodesFile } from '../e2e/node-agent/nodes-file.js';
import { buildNode, buildNodeLease, goArch, type HostFacts } from '../e2e/node-agent/node-object.js';
import { microTime, rfc3339 } from '../e2e/node-agent/time.js';

const host: HostFacts = {
  address: '127.0.0.1',
  arch: 'amd64',
  kernelVersion: '6.1.0',
  osImage: 'Debian GNU/Linux 12 (bookworm)',
  kubeletVersion: 'v1.37.2',
  bootID: 'boot',
};

describe('nodes file', () => {
  it('parses the default file: plain, NoSchedule, NoExecute, control plane with both, a long name, one to delete', () => {
    const nodes = parseNodesFile(parse(readFileSync('e2e/node-agent/nodes.yaml', 'utf8')));
    expect(nodes.map((n) => [n.name, n.taints])).toEqual([
      ['hpp-plain', []],
      ['hpp-gpu', [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }]],
      ['hpp-noexec', [{ key: 'dedicated', value: 'db', effect: 'NoExecute' }]],
      [
        'hpp-cp',
        [
          { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' },
          { key: 'cp-only', value: 'true', effect: 'NoExecute' },
        ],
      ],
      ['hpp-node-with-a-very-long-name-that-is-longer-than-sixty-three-characters', []],
      ['hpp-doomed', []],
    ]);
  });

  it('applies defaults and turns numeric quantities into strings', () => {
    expect(parseNodesFile([{ name: 'n1', capacity: { cpu: 2 } }])).toEqual([
      { name: 'n1', labels: {}, taints: [], capacity: { cpu: '2' }, unpullableImages: [] },
    ]);
  });

  it.each([
    [[], /root/],
    [[{ name: 'Bad_Name' }], /0\.name: must be a DNS-1123 subdomain/],
    [[{ name: 'a', taints: [{ key: 'k', effect: 'NoRun' }] }], /0\.taints\.0\.effect/],
    [[{ name: 'a' }, { name: 'a' }], /duplicate node a/],
    [[{ name: 'a', colour: 'red' }], /colour/],
  ])('rejects %j', (data, message) => {
    expect(() => parseNodesFile(data)).toThrow(message);
  });
});

describe('node objects', () => {
  const spec = parseNodesFile([
    { name: 'n1', labels: { role: 'x' }, taints: [{ key: 'k', effect: 'NoSchedule' }], capacity: { cpu: '2' } },
  ])[0]!;
  const now = new Date('2026-01-02T03:04:05.678Z');

  it('builds a Node with well-known labels, taints and a healthy status', () => {
    const node = buildNode(spec, host, 10250, now);
    expect(node.metadata.labels).toEqual({
      'kubernetes.io/hostname': 'n1',
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'amd64',
      'beta.kubernetes.io/os': 'linux',
      'beta.kubernetes.io/arch': 'amd64',
      role: 'x',
    });
    expect(node.spec.taints).toEqual([{ key: 'k', effect: 'NoSchedule' }]);
    expect(node.status.capacity).toEqual({ cpu: '2', memory: '8Gi', pods: '110', 'ephemeral-storage': '100Gi' });
    expect(node.status.allocatable).toEqual(node.status.capacity);
    expect(node.status.conditions.map((c) => [c.type, c.status])).toEqual([
      ['MemoryPressure', 'False'],
      ['DiskPressure', 'False'],
      ['PIDPressure', 'False'],
      ['NetworkUnavailable', 'False'],
      ['Ready', 'True'],
    ]);
    expect(node.status.conditions[4]).toMatchObject({
      reason: 'KubeletReady',
      lastHeartbeatTime: '2026-01-02T03:04:05Z',
    });
    expect(node.status.addresses).toEqual([
      { type: 'InternalIP', address: '127.0.0.1' },
      { type: 'Hostname', address: 'n1' },
    ]);
    expect(node.status.daemonEndpoints).toEqual({ kubeletEndpoint: { Port: 10250 } });
    expect(node.status.nodeInfo).toMatchObject({
      kubeletVersion: 'v1.37.2',
      architecture: 'amd64',
      operatingSystem: 'linux',
    });
  });

  it('builds the node Lease owned by the Node with a microsecond renewTime', () => {
    expect(buildNodeLease('n1', 'uid-1', now)).toEqual({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: 'n1',
        namespace: 'kube-node-lease',
        ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'uid-1' }],
      },
      spec: { holderIdentity: 'n1', leaseDurationSeconds: 40, renewTime: '2026-01-02T03:04:05.678000Z' },
    });
  });

  it('formats times like the API server expects', () => {
    expect(rfc3339(now)).toBe('2026-01-02T03:04:05Z');
    expect(microTime(now)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(goArch('x64')).toBe('amd64');
    expect(goArch('arm64')).toBe('arm64');
  });
});
