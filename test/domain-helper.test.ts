import { describe, expect, it } from '@jest/globals';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { helperContainer } from './support/pods.js';
import { buildHelperPod, HELPER_SCRIPTS } from '../src/domain/helper-pod.js';
import { classifyHelper, timeoutFailure } from '../src/domain/helper-status.js';
import { chooseNodeForImmediate } from '../src/domain/node-choice.js';

const DEFAULT_CAPS = { drop: ['ALL'], add: ['DAC_OVERRIDE', 'FOWNER'] };

describe('buildHelperPod', () => {
  it('builds a create helper pinned by node affinity with exactly the given tolerations', () => {
    expect(
      buildHelperPod({
        operation: 'create',
        volumeName: 'pvc-u1',
        namespace: 'kube-system',
        nodeName: 'w1',
        baseDirectory: '/var/snap/microk8s/common/default-storage',
        directoryName: 'default-data-pvc-u1',
        image: 'busybox:1.37.0',
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }],
        priorityClassName: 'system-node-critical',
        activeDeadlineSeconds: 120,
        claim: { key: 'default/data', uid: 'u1' },
      }),
    ).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'hostpath-create-pvc-u1',
        namespace: 'kube-system',
        labels: {
          'app.kubernetes.io/managed-by': 'hostpath-provisioner',
          'hostpath-provisioner.io/operation': 'create',
          'hostpath-provisioner.io/volume': 'pvc-u1',
        },
        annotations: {
          'hostpath-provisioner.io/volume-name': 'pvc-u1',
          'hostpath-provisioner.io/path': '/var/snap/microk8s/common/default-storage/default-data-pvc-u1',
          'hostpath-provisioner.io/claim': 'default/data',
          'hostpath-provisioner.io/claim-uid': 'u1',
        },
      },
      spec: {
        restartPolicy: 'Never',
        activeDeadlineSeconds: 120,
        terminationGracePeriodSeconds: 0,
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        priorityClassName: 'system-node-critical',
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['w1'] }] }],
            },
          },
        },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }],
        containers: [
          {
            name: 'helper',
            image: 'busybox:1.37.0',
            imagePullPolicy: 'IfNotPresent',
            command: [
              'sh',
              '-c',
              HELPER_SCRIPTS.create,
              'hostpath-create',
              '/hostpath-base/default-data-pvc-u1',
              '00777',
              '',
              '',
              '',
            ],
            resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
            securityContext: {
              runAsUser: 0,
              runAsGroup: 0,
              privileged: false,
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              seccompProfile: { type: 'RuntimeDefault' },
              capabilities: { drop: ['ALL'], add: ['DAC_OVERRIDE', 'FOWNER'] },
            },
            volumeMounts: [{ name: 'base', mountPath: '/hostpath-base' }],
          },
        ],
        volumes: [
          { name: 'base', hostPath: { path: '/var/snap/microk8s/common/default-storage', type: 'DirectoryOrCreate' } },
        ],
      },
    });
  });

  it('builds a delete helper without priority class or claim annotations; the path is an argument, not script text', () => {
    const pod = buildHelperPod({
      operation: 'delete',
      volumeName: 'pvc-u1',
      namespace: 'hpp',
      nodeName: 'w1',
      baseDirectory: '/mnt/usb',
      directoryName: 'ns-$(reboot)-pvc-u1',
      image: 'busybox',
      tolerations: [],
      priorityClassName: '',
      activeDeadlineSeconds: 60,
    });
    expect(pod.metadata?.name).toBe('hostpath-delete-pvc-u1');
    expect(pod.spec?.priorityClassName).toBeUndefined();
    expect(pod.metadata?.annotations).toEqual({
      'hostpath-provisioner.io/volume-name': 'pvc-u1',
      'hostpath-provisioner.io/path': '/mnt/usb/ns-$(reboot)-pvc-u1',
    });
    const command = pod.spec?.containers[0]?.command ?? [];
    expect(command[2]).toBe(HELPER_SCRIPTS.delete);
    expect(command[2]).not.toContain('reboot');
    expect(command[4]).toBe('/hostpath-base/ns-$(reboot)-pvc-u1');
  });

  it('keeps only the configured capabilities; none at all for an empty list', () => {
    const input = {
      operation: 'delete' as const,
      volumeName: 'pvc-u1',
      namespace: 'hpp',
      nodeName: 'w1',
      baseDirectory: '/mnt/usb',
      directoryName: 'ns-c-pvc-u1',
      image: 'docker.io/library/busybox:1.37.0',
      tolerations: [],
      priorityClassName: '',
      activeDeadlineSeconds: 60,
    };
    const caps = (capabilities?: string[]) =>
      buildHelperPod({ ...input, capabilities }).spec?.containers[0]?.securityContext?.capabilities;
    expect(caps()).toEqual({ drop: ['ALL'], add: ['DAC_OVERRIDE', 'FOWNER'] });
    expect(caps(['DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER'])).toEqual({
      drop: ['ALL'],
      add: ['DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER'],
    });
    expect(caps([])).toEqual({ drop: ['ALL'] });
  });

  describe('ownership of the volume directory (class parameters uid, gid, mode)', () => {
    const create = {
      operation: 'create' as const,
      volumeName: 'pvc-u1',
      namespace: 'hpp',
      nodeName: 'w1',
      baseDirectory: '/mnt/usb',
      directoryName: 'ns-c-pvc-u1',
      image: 'docker.io/library/busybox:1.37.0',
      tolerations: [],
      priorityClassName: '',
      activeDeadlineSeconds: 60,
      claim: { key: 'ns/c', uid: 'u1' },
    };
    const container = (input: Parameters<typeof buildHelperPod>[0]) => buildHelperPod(input).spec!.containers[0]!;
    const none = { uid: undefined, gid: undefined, mode: undefined };
    const table: [
      string,
      Partial<Parameters<typeof buildHelperPod>[0]>,
      string[],
      { drop: string[]; add?: string[] },
    ][] = [
      ['no parameters: chmod 0777, no chown, no check', {}, ['00777', '', '', ''], DEFAULT_CAPS],
      ['the same when ownership is given but empty', { ownership: none }, ['00777', '', '', ''], DEFAULT_CAPS],
      [
        'uid, gid and mode: CHOWN on top of the configured capabilities',
        { ownership: { uid: 1000, gid: 2000, mode: 0o2770 } },
        ['02770', '1000', '2000', '2770'],
        { drop: ['ALL'], add: ['DAC_OVERRIDE', 'FOWNER', 'CHOWN'] },
      ],
      [
        'gid only: CHOWN',
        { ownership: { ...none, gid: 2000 } },
        ['00777', '', '2000', '777'],
        { drop: ['ALL'], add: ['DAC_OVERRIDE', 'FOWNER', 'CHOWN'] },
      ],
      [
        'uid 0 still chowns: CHOWN',
        { ownership: { ...none, uid: 0 } },
        ['00777', '0', '', '777'],
        { drop: ['ALL'], add: ['DAC_OVERRIDE', 'FOWNER', 'CHOWN'] },
      ],
      ['mode only: no CHOWN', { ownership: { ...none, mode: 0o750 } }, ['00750', '', '', '750'], DEFAULT_CAPS],
      [
        'an empty --helper-capabilities: CHOWN alone',
        { ownership: { uid: 1000, gid: 2000, mode: undefined }, capabilities: [] },
        ['00777', '1000', '2000', '777'],
        { drop: ['ALL'], add: ['CHOWN'] },
      ],
      [
        'CHOWN already configured: not twice',
        { ownership: { uid: 1000, gid: 2000, mode: undefined }, capabilities: ['CHOWN', 'DAC_OVERRIDE'] },
        ['00777', '1000', '2000', '777'],
        { drop: ['ALL'], add: ['CHOWN', 'DAC_OVERRIDE'] },
      ],
      ['no chown, no capability configured: none', { capabilities: [] }, ['00777', '', '', ''], { drop: ['ALL'] }],
    ];
    it.each(table)('%s', (_name, patch, args, capabilities) => {
      const c = container({ ...create, ...patch });
      expect(c.command).toEqual([
        'sh',
        '-c',
        HELPER_SCRIPTS.create,
        'hostpath-create',
        '/hostpath-base/ns-c-pvc-u1',
        ...args,
      ]);
      expect(c.securityContext?.capabilities).toEqual(capabilities);
    });

    it('delete and list helpers never get CHOWN or the ownership arguments, whatever they are given', () => {
      const ownership = { uid: 1000, gid: 2000, mode: 0o2770 };
      for (const operation of ['delete', 'list'] as const) {
        const c = container({ ...create, operation, ownership, directoryName: operation === 'list' ? '' : 'd' });
        expect(c.securityContext?.capabilities).toEqual(DEFAULT_CAPS);
        // The list helper's only extra argument is du's time limit.
        expect(c.command).toHaveLength(operation === 'list' ? 6 : 5);
        expect(c.command?.[2]).toBe(HELPER_SCRIPTS[operation]);
      }
    });

    it('the scripts contain no $( — the kubelet would expand $(NAME) in a command', () => {
      for (const script of Object.values(HELPER_SCRIPTS)) expect(script).not.toContain('$(');
    });
  });

  it('a list helper carries no priority class and mounts its base with type Directory (never creates it)', () => {
    const pod = buildHelperPod({
      operation: 'list',
      volumeName: 'w1-1234abcd',
      namespace: 'hpp',
      nodeName: 'w1',
      baseDirectory: '/var/snap/microk8s/common/default-storage',
      directoryName: '',
      image: 'docker.io/library/busybox:1.37.0',
      tolerations: [],
      priorityClassName: 'system-node-critical',
      activeDeadlineSeconds: 60,
    });
    expect(pod.spec?.priorityClassName).toBeUndefined();
    expect(pod.spec?.volumes).toEqual([
      { name: 'base', hostPath: { path: '/var/snap/microk8s/common/default-storage', type: 'Directory' } },
    ]);
  });
});

function pod(status: NonNullable<V1Pod['status']>, nodeName?: string): V1Pod {
  return { metadata: { name: 'h' }, spec: { containers: [], ...(nodeName ? { nodeName } : {}) }, status };
}

describe('classifyHelper', () => {
  const table: [string, V1Pod, object][] = [
    ['succeeded', pod({ phase: 'Succeeded' }, 'w1'), { state: 'succeeded' }],
    [
      'exit 1',
      pod(
        {
          phase: 'Failed',
          containerStatuses: [helperContainer({ terminated: { exitCode: 1, reason: 'Error' } })],
        },
        'w1',
      ),
      { state: 'failed', reason: 'failed', exitCode: 1, message: 'exited with code 1 (Error)' },
    ],
    [
      'rejected at admission',
      pod({ phase: 'Failed', reason: 'UnexpectedAdmissionError', message: 'Predicate TaintToleration failed' }, 'w1'),
      {
        state: 'failed',
        reason: 'admission',
        message: 'rejected by the node: UnexpectedAdmissionError: Predicate TaintToleration failed',
      },
    ],
    [
      'image pull back-off',
      pod(
        {
          phase: 'Pending',
          containerStatuses: [
            helperContainer(
              { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "busybox:does-not-exist"' } },
              'busybox:does-not-exist',
            ),
          ],
        },
        'w1',
      ),
      {
        state: 'failed',
        reason: 'image_pull',
        message:
          'image busybox:does-not-exist cannot be pulled: ImagePullBackOff: Back-off pulling image "busybox:does-not-exist"',
      },
    ],
    [
      'unschedulable with the scheduler message',
      pod({
        phase: 'Pending',
        conditions: [
          {
            type: 'PodScheduled',
            status: 'False',
            reason: 'Unschedulable',
            message: '0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}.',
          },
        ],
      }),
      {
        state: 'unscheduled',
        message: 'Unschedulable: 0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}.',
      },
    ],
    ['not looked at yet', pod({}), { state: 'unscheduled', message: 'waiting for the scheduler' }],
    [
      'creating',
      pod(
        {
          phase: 'Pending',
          containerStatuses: [helperContainer({ waiting: { reason: 'ContainerCreating' } })],
        },
        'w1',
      ),
      { state: 'running', message: 'on node w1: ContainerCreating' },
    ],
  ];
  it.each(table)('%s', (_name, p, expected) => {
    expect(classifyHelper(p)).toEqual(expected);
  });

  it('turns a timeout into unschedulable with the scheduler message, or a plain timeout', () => {
    expect(timeoutFailure({ state: 'unscheduled', message: 'Unschedulable: 0/3 nodes' }, 120)).toEqual({
      state: 'failed',
      reason: 'unschedulable',
      message: 'not scheduled within 120s: Unschedulable: 0/3 nodes',
    });
    expect(timeoutFailure({ state: 'running', message: 'on node w1: Running' }, 5)).toEqual({
      state: 'failed',
      reason: 'timeout',
      message: 'did not finish within 5s (on node w1: Running)',
    });
  });
});

function node(
  name: string,
  opts: { ready?: boolean; cordoned?: boolean; labels?: Record<string, string> } = {},
): V1Node {
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...opts.labels } },
    spec: opts.cordoned ? { unschedulable: true } : {},
    status: { conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }] },
  };
}

function tainted(name: string, effect: string): V1Node {
  const n = node(name);
  n.spec = { taints: [{ key: 'dedicated', value: name, effect }] };
  return n;
}

describe('chooseNodeForImmediate', () => {
  const nodes = [
    node('m1'),
    node('w1'),
    node('w2', { labels: { zone: 'b' } }),
    node('down', { ready: false }),
    node('cordoned', { cordoned: true }),
  ];
  const table: [string, Parameters<typeof chooseNodeForImmediate>[0], string | null][] = [
    ['prefers the provisioner node', { nodes, preferredNode: 'w1', volumeCounts: new Map([['w1', 9]]) }, 'w1'],
    [
      'fewest volumes, then name',
      {
        nodes,
        volumeCounts: new Map([
          ['m1', 2],
          ['w1', 1],
          ['w2', 1],
        ]),
      },
      'w1',
    ],
    ['skips a not-ready preferred node', { nodes, preferredNode: 'down', volumeCounts: new Map() }, 'm1'],
    [
      'skips a cordoned node',
      { nodes: [node('cordoned', { cordoned: true }), node('z')], volumeCounts: new Map() },
      'z',
    ],
    [
      'allowedTopologies',
      {
        nodes,
        allowedTopologies: [{ matchLabelExpressions: [{ key: 'zone', values: ['b'] }] }],
        preferredNode: 'm1',
        volumeCounts: new Map(),
      },
      'w2',
    ],
    ['no node', { nodes: [node('down', { ready: false })], volumeCounts: new Map() }, null],
    [
      'an untainted node before a tainted preferred one',
      { nodes: [tainted('gpu', 'NoSchedule'), node('w9')], preferredNode: 'gpu', volumeCounts: new Map([['w9', 5]]) },
      'w9',
    ],
    [
      'NoExecute counts as tainted; PreferNoSchedule does not',
      {
        nodes: [tainted('db', 'NoExecute'), tainted('soft', 'PreferNoSchedule')],
        volumeCounts: new Map([['soft', 3]]),
      },
      'soft',
    ],
    [
      'only tainted nodes: still provisioned',
      { nodes: [tainted('gpu', 'NoSchedule')], volumeCounts: new Map() },
      'gpu',
    ],
  ];
  it.each(table)('%s', (_name, input, expected) => {
    const result = chooseNodeForImmediate(input);
    if (expected === null)
      expect(result).toMatchObject({
        ok: false,
        reason: expect.stringContaining('no Ready, schedulable node running Linux'),
      });
    else expect(result.ok && result.node.metadata?.name).toBe(expected);
  });
});
