import { describe, expect, it } from '@jest/globals';
import type {
  V1Container,
  V1Node,
  V1PersistentVolumeClaim,
  V1Pod,
  V1ResourceQuota,
  V1ResourceQuotaSpec,
  V1StorageClass,
} from '@kubernetes/client-node';
import {
  diagnoseClaim,
  diagnoseClasses,
  diagnoseHelperNamespace,
  diagnoseHelperPriorityClass,
  diagnoseHelperQuotas,
  diagnoseLease,
  diagnoseNode,
  diagnoseProvisionerPods,
  diagnoseNamedClaim,
  diagnoseReadiness,
  diagnoseReleasedVolume,
  doctorExitCode,
  quotaCountsPod,
  podSetting,
  provisionerSettings,
  readinessTarget,
  versionFromMetrics,
  type ClaimFacts,
  type Finding,
  type ReadinessOutcome,
} from '../src/domain/diagnosis.js';

const NAMES = ['microk8s.io/hostpath'];
const BASE = '/var/snap/microk8s/common/default-storage';
const wfc: V1StorageClass = {
  metadata: { name: 'microk8s-hostpath', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
  provisioner: 'microk8s.io/hostpath',
  volumeBindingMode: 'WaitForFirstConsumer',
};
const node = (name: string, taints: V1Node['spec'] = {}, ready = 'True'): V1Node => ({
  metadata: { name },
  spec: taints,
  status: { conditions: [{ type: 'Ready', status: ready }] },
});
const nodes = new Map([
  ['w1', node('w1')],
  ['db', node('db', { taints: [{ key: 'dedicated', value: 'db', effect: 'NoExecute' }] })],
]);
const pvc = (annotations: Record<string, string> = {}, className = 'microk8s-hostpath'): V1PersistentVolumeClaim => ({
  metadata: {
    name: 'data',
    namespace: 'default',
    uid: 'u1',
    annotations: { 'volume.kubernetes.io/storage-provisioner': 'microk8s.io/hostpath', ...annotations },
  },
  spec: { storageClassName: className, resources: { requests: { storage: '1Gi' } } },
  status: { phase: 'Pending' },
});
const pod = (name: string, spec: Partial<NonNullable<V1Pod['spec']>> = {}, status: V1Pod['status'] = {}): V1Pod => ({
  metadata: { name, namespace: 'default' },
  spec: { containers: [], volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'data' } }], ...spec },
  status,
});
const facts = (patch: Partial<ClaimFacts>): ClaimFacts => ({
  claim: pvc(),
  storageClass: wfc,
  consumers: [],
  nodes,
  helper: undefined,
  events: [],
  provisionerNames: NAMES,
  defaultBaseDirectory: BASE,
  ...patch,
});

describe('diagnoseClaim', () => {
  it.each<[string, Partial<ClaimFacts>, string | undefined, string | undefined]>([
    [
      'Bound',
      { claim: { ...pvc(), spec: { volumeName: 'pvc-u1' }, status: { phase: 'Bound' } } },
      'Bound to pvc-u1',
      undefined,
    ],
    [
      'class missing',
      { storageClass: undefined },
      'names StorageClass microk8s-hostpath, which does not exist',
      'create it, or re-create the claim with an existing class (e.g. microk8s-hostpath)',
    ],
    [
      'no consumer yet',
      {},
      'WaitForFirstConsumer: no pod uses this claim yet, so no node is chosen',
      'create the pod that mounts it (or use a class with volumeBindingMode Immediate)',
    ],
    [
      'pinned by nodeName',
      { consumers: [pod('web-0', { nodeName: 'w1' })] },
      'pod web-0 sets spec.nodeName, which bypasses the scheduler: no node is ever selected for the claim',
      'use a nodeSelector on kubernetes.io/hostname instead of spec.nodeName',
    ],
    [
      'unschedulable pod',
      {
        consumers: [
          pod(
            'web-0',
            {},
            {
              conditions: [
                { type: 'PodScheduled', status: 'False', message: '0/2 nodes are available: 2 Insufficient cpu.' },
              ],
            },
          ),
        ],
      },
      'pod web-0 cannot be scheduled: 0/2 nodes are available: 2 Insufficient cpu.',
      'fix what the scheduler names (resources, node selector, taints); the claim follows the pod',
    ],
    [
      'selected node gone',
      { claim: pvc({ 'volume.kubernetes.io/selected-node': 'gone' }), consumers: [pod('web-0')] },
      'selected node gone does not exist',
      'the provisioner hands the claim back to the scheduler; if it stays, remove the annotation',
    ],
    [
      'hand annotation, no pod',
      { claim: pvc({ 'volume.kubernetes.io/selected-node': 'db' }) },
      'selected node db but no Pending pod mounts the claim: the annotation alone is not trusted',
      'create the pod, or remove the annotation volume.kubernetes.io/selected-node',
    ],
    [
      'pod whose nodeSelector excludes the selected node',
      {
        claim: pvc({ 'volume.kubernetes.io/selected-node': 'db' }),
        consumers: [pod('web-0', { nodeSelector: { gpu: 'true' } })],
      },
      'pod web-0 has nodeSelector gpu=true that selected node db does not match',
      "fix the pod's nodeSelector or node affinity, or remove the annotation volume.kubernetes.io/selected-node",
    ],
    [
      'untolerated taint',
      { claim: pvc({ 'volume.kubernetes.io/selected-node': 'db' }), consumers: [pod('web-0')] },
      'node db has taint dedicated=db:NoExecute that pod web-0 does not tolerate',
      'add the toleration to the pod, or let the scheduler choose another node',
    ],
    [
      'helper image',
      {
        claim: pvc({ 'volume.kubernetes.io/selected-node': 'w1' }),
        consumers: [pod('web-0')],
        helper: {
          metadata: { name: 'hostpath-create-pvc-u1' },
          spec: { nodeName: 'w1', containers: [] },
          status: {
            phase: 'Pending',
            containerStatuses: [
              {
                name: 'helper',
                image: 'busybox:x',
                imageID: '',
                ready: false,
                restartCount: 0,
                state: { waiting: { reason: 'ErrImagePull' } },
              },
            ],
          },
        },
      },
      'helper pod hostpath-create-pvc-u1: image busybox:x cannot be pulled: ErrImagePull',
      'make the helper image pullable on that node, or set BUSYBOX_IMAGE to one it can pull',
    ],
    [
      'latest failure event',
      {
        claim: pvc({ 'volume.kubernetes.io/selected-node': 'w1' }),
        consumers: [pod('web-0')],
        events: [
          {
            metadata: {},
            involvedObject: {},
            reason: 'ProvisioningFailed',
            message: 'old',
            lastTimestamp: new Date(1),
          },
          {
            metadata: {},
            involvedObject: {},
            reason: 'ProvisioningFailed',
            message: 'the API server refused the helper pod: forbidden',
            lastTimestamp: new Date(2),
          },
        ],
      },
      'last ProvisioningFailed: the API server refused the helper pod: forbidden',
      'allow the helper in its namespace (label it pod-security.kubernetes.io/enforce=privileged) or adjust the admission policy',
    ],
  ])('%s', (_n, patch, summary, fix) => {
    const f = diagnoseClaim(facts(patch));
    expect(f?.summary).toBe(summary);
    expect(f?.fix).toBe(fix);
  });

  it('says nothing about claims of another provisioner', () => {
    expect(diagnoseClaim(facts({ storageClass: { ...wfc, provisioner: 'other.io/x' } }))).toBeUndefined();
  });
});

describe('diagnoseClasses', () => {
  it('flags no class of ours, bad parameters and two defaults', () => {
    expect(diagnoseClasses([], NAMES, BASE).map((f) => f.subject)).toEqual(['StorageClasses', 'default StorageClass']);
    const bad: V1StorageClass = { metadata: { name: 'bad' }, provisioner: NAMES[0]!, parameters: { pvDir: 'rel' } };
    const second = { ...wfc, metadata: { ...wfc.metadata, name: 'second' } };
    const findings = diagnoseClasses([wfc, bad, second], NAMES, BASE);
    expect(findings.map((f) => [f.subject, f.status])).toEqual([
      ['StorageClass microk8s-hostpath', 'ok'],
      ['StorageClass bad', 'attention'],
      ['StorageClass second', 'ok'],
      ['default StorageClass', 'attention'],
    ]);
  });

  it('says where a class with pvDirFromNode puts volumes', () => {
    const perNode = { ...wfc, parameters: { pvDir: '/srv/data', pvDirFromNode: 'true' } };
    expect(diagnoseClasses([perNode], NAMES, BASE)[0]).toEqual({
      subject: 'StorageClass microk8s-hostpath',
      status: 'ok',
      summary: "WaitForFirstConsumer, reclaim Delete, base /srv/data (or the node's hostpath-provisioner.io/pv-dir)",
    });
    const shared = { ...wfc, parameters: { pvDir: '/mnt/nfs', sharedFileSystem: 'true' } };
    expect(diagnoseClasses([shared], NAMES, BASE)[0]?.summary).toBe(
      'WaitForFirstConsumer, reclaim Delete, base /mnt/nfs (a shared file system: volumes on no one node)',
    );
  });
});

describe('diagnoseNode, diagnoseLease, diagnoseReleasedVolume, doctorExitCode', () => {
  it('reads a node', () => {
    expect(diagnoseNode(nodes.get('db')!, 'node-taints')).toEqual({
      subject: 'node db',
      status: 'ok',
      summary: 'Ready; taints dedicated=db:NoExecute; a delete helper would carry 1 toleration(s)',
    });
    expect(diagnoseNode(node('x', {}, 'False'), 'node-taints').status).toBe('attention');
    expect(diagnoseNode(nodes.get('db')!, 'none').status).toBe('attention');
  });

  it('reads a node’s own base directory (pv-dir annotation), and says when it is invalid', () => {
    const annotated = (dir: string): V1Node => ({
      ...node('gpu-1'),
      metadata: { name: 'gpu-1', annotations: { 'hostpath-provisioner.io/pv-dir': dir } },
    });
    expect(diagnoseNode(annotated('/mnt/nvme'), 'node-taints')).toEqual({
      subject: 'node gpu-1',
      status: 'ok',
      summary:
        'Ready; no taints; own base /mnt/nvme (classes with pvDirFromNode); a delete helper would carry 0 toleration(s)',
    });
    expect(diagnoseNode(annotated('/mnt/../etc'), 'node-taints')).toEqual({
      subject: 'node gpu-1',
      status: 'attention',
      summary:
        'Ready; no taints; node gpu-1 has annotation hostpath-provisioner.io/pv-dir "/mnt/../etc", which contains "..": claims of classes with pvDirFromNode are refused here',
      fix: 'kubectl annotate --overwrite node gpu-1 hostpath-provisioner.io/pv-dir=<absolute clean path>',
    });
  });

  it('reads the Lease', () => {
    const lease = (renewed: number) => ({
      spec: { holderIdentity: 'p-1', renewTime: new Date(renewed), leaseDurationSeconds: 15 },
    });
    expect(diagnoseLease(undefined, 0).status).toBe('attention');
    expect(diagnoseLease(lease(100_000), 105_000)).toEqual({
      subject: 'provisioner',
      status: 'ok',
      summary: 'leader p-1, Lease renewed 5s ago',
    });
    expect(diagnoseLease(lease(100_000), 160_000).status).toBe('attention');
  });

  it('says why a Released volume stays', () => {
    const pv = {
      metadata: {
        name: 'pvc-u1',
        annotations: { 'pv.kubernetes.io/provisioned-by': 'microk8s.io/hostpath' },
        creationTimestamp: new Date(0),
      },
      spec: {
        persistentVolumeReclaimPolicy: 'Delete',
        nodeAffinity: {
          required: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['gone'] }] },
            ],
          },
        },
      },
      status: { phase: 'Released' },
    };
    expect(diagnoseReleasedVolume(pv, nodes, [], NAMES, 600_000)?.summary).toBe(
      'Released, but node gone no longer exists (10 min old): the data cannot be removed',
    );
    expect(diagnoseReleasedVolume({ ...pv, status: { phase: 'Bound' } }, nodes, [], NAMES, 0)).toBeUndefined();
  });

  it('exits 1 when anything needs attention', () => {
    expect(doctorExitCode([{ subject: 'a', status: 'ok', summary: '' }])).toBe(0);
    expect(
      doctorExitCode([
        { subject: 'a', status: 'ok', summary: '' },
        { subject: 'b', status: 'attention', summary: '' },
      ]),
    ).toBe(1);
  });
});

describe('diagnoseHelperNamespace, diagnoseProvisionerPods', () => {
  it.each([
    ['privileged', 'ok'],
    [undefined, 'ok'],
    ['baseline', 'attention'],
    ['restricted', 'attention'],
  ] as const)('Pod Security enforce %s: %s', (level, status) => {
    const labels: Record<string, string> = level ? { 'pod-security.kubernetes.io/enforce': level } : {};
    expect(diagnoseHelperNamespace({ metadata: { name: 'hpp', labels } }).status).toBe(status);
  });

  it('counts Ready provisioner pods and names their image', () => {
    const pod = (ready: string): V1Pod => ({
      metadata: { name: 'p' },
      spec: { containers: [{ name: 'c', image: 'hostpath-provisioner:0.1.0' }] },
      status: { conditions: [{ type: 'Ready', status: ready }] },
    });
    expect(diagnoseProvisionerPods([])).toBeUndefined();
    expect(diagnoseProvisionerPods([pod('True'), pod('False')])).toEqual({
      subject: 'provisioner pods',
      status: 'ok',
      summary: '1/2 pod(s) Ready, image hostpath-provisioner:0.1.0',
    });
    expect(diagnoseProvisionerPods([pod('False')])?.status).toBe('attention');
  });
});

describe('readinessTarget, diagnoseReadiness', () => {
  const provisioner = (patch: { ip?: string; container?: Partial<V1Container> }): V1Pod => ({
    metadata: { name: 'hpp-1', namespace: 'hpp' },
    spec: { containers: [{ name: 'hostpath-provisioner', ...patch.container }] },
    status: patch.ip ? { podIP: patch.ip } : {},
  });
  const metricsPort = { ports: [{ name: 'metrics', containerPort: 9090 }] };

  it.each<[string, Parameters<typeof provisioner>[0], string | undefined]>([
    [
      'the Deployment as shipped',
      {
        ip: '10.1.0.5',
        container: { ...metricsPort, readinessProbe: { httpGet: { path: '/readyz', port: 'metrics' } } },
      },
      'http://10.1.0.5:9090/readyz',
    ],
    [
      'no probe: the metrics port and /readyz',
      { ip: '10.1.0.5', container: metricsPort },
      'http://10.1.0.5:9090/readyz',
    ],
    [
      'a numbered probe port',
      { ip: '10.1.0.5', container: { readinessProbe: { httpGet: { path: 'ready', port: 8080 } } } },
      'http://10.1.0.5:8080/ready',
    ],
    ['IPv6 pod IP', { ip: 'fd00::5', container: metricsPort }, 'http://[fd00::5]:9090/readyz'],
    ['no pod IP yet', { container: metricsPort }, undefined],
    ['no such port', { ip: '10.1.0.5' }, undefined],
    [
      'HTTPS probe',
      {
        ip: '10.1.0.5',
        container: { ...metricsPort, readinessProbe: { httpGet: { port: 'metrics', scheme: 'HTTPS' } } },
      },
      undefined,
    ],
  ])('%s', (_n, patch, url) => {
    expect(readinessTarget(provisioner(patch))?.url).toBe(url);
  });

  const target = { pod: 'hpp-1', namespace: 'hpp', url: 'http://10.1.0.5:9090/readyz' };
  it.each<[string, ReadinessOutcome, Finding]>([
    [
      'ready leader',
      { kind: 'answer', statusCode: 200, body: 'ok: leader\n' },
      {
        subject: 'provisioner pod hpp-1',
        status: 'ok',
        summary: 'http://10.1.0.5:9090/readyz answers 200: ok: leader',
      },
    ],
    [
      'ready standby with its version',
      { kind: 'answer', statusCode: 200, body: 'ok: standby\n', version: '0.1.0' },
      {
        subject: 'provisioner pod hpp-1',
        status: 'ok',
        summary: 'http://10.1.0.5:9090/readyz answers 200: ok: standby; version 0.1.0',
      },
    ],
    [
      'not ready',
      { kind: 'answer', statusCode: 503, body: 'not ready (standby): caches not synced\n' },
      {
        subject: 'provisioner pod hpp-1',
        status: 'attention',
        summary: 'http://10.1.0.5:9090/readyz answers 503: not ready (standby): caches not synced: not ready',
        fix: 'kubectl -n hpp logs hpp-1',
      },
    ],
    [
      'not ready, empty body',
      { kind: 'answer', statusCode: 500, body: '' },
      {
        subject: 'provisioner pod hpp-1',
        status: 'attention',
        summary: 'http://10.1.0.5:9090/readyz answers 500: not ready',
        fix: 'kubectl -n hpp logs hpp-1',
      },
    ],
    [
      'unreachable is info, not attention',
      { kind: 'error', message: 'no answer within 2 s' },
      {
        subject: 'provisioner pod hpp-1',
        status: 'info',
        summary: 'http://10.1.0.5:9090/readyz unreachable from here (no answer within 2 s); readiness not checked',
      },
    ],
  ])('%s', (_n, outcome, finding) => {
    expect(diagnoseReadiness(target, outcome)).toEqual(finding);
  });

  it('does not count info findings for the exit code', () => {
    expect(doctorExitCode([{ subject: 'a', status: 'info', summary: '' }])).toBe(0);
  });
});

describe('diagnoseHelperPriorityClass', () => {
  const classes = { items: [{ metadata: { name: 'system-node-critical' }, value: 2000001000 }] };
  it.each<[string, string, Parameters<typeof diagnoseHelperPriorityClass>[1], Finding]>([
    [
      'exists',
      'system-node-critical',
      classes,
      {
        subject: 'PriorityClass system-node-critical',
        status: 'ok',
        summary: 'exists (value 2000001000): delete helpers are admitted with it',
      },
    ],
    [
      'missing',
      'helpers-high',
      classes,
      {
        subject: 'PriorityClass helpers-high',
        status: 'attention',
        summary: 'does not exist: the API server refuses every delete helper, so Released volumes are not cleaned up',
        fix: "create it, or run the provisioner with --helper-priority-class naming an existing class ('' for none); if it runs with another class, tell doctor with --helper-priority-class",
      },
    ],
    [
      'none configured',
      '',
      classes,
      { subject: 'helper priority class', status: 'ok', summary: 'none: delete helpers run at the default priority' },
    ],
    [
      'not allowed to read',
      'system-node-critical',
      { unreadable: 'priorityclasses is forbidden' },
      {
        subject: 'PriorityClass system-node-critical',
        status: 'info',
        summary: 'could not check that it exists: priorityclasses is forbidden',
      },
    ],
  ])('%s', (_n, name, read, finding) => {
    expect(diagnoseHelperPriorityClass(name, read)).toEqual(finding);
  });
});

describe('quotaCountsPod, diagnoseHelperQuotas', () => {
  const quota = (
    name: string,
    hard: Record<string, string>,
    used: Record<string, string>,
    scope: Partial<V1ResourceQuotaSpec> = {},
  ): V1ResourceQuota => ({ metadata: { name }, spec: { hard, ...scope }, status: { hard, used } });
  const critical = {
    scopeSelector: {
      matchExpressions: [{ scopeName: 'PriorityClass', operator: 'In', values: ['system-node-critical'] }],
    },
  };

  it.each<[string, V1ResourceQuota[], readonly [string, string, string?][]]>([
    ['no quota', [], [['ResourceQuotas in hpp', 'ok', 'none limits the number of helper pods']]],
    [
      'room left',
      [quota('q', { pods: '10' }, { pods: '9' })],
      [['ResourceQuotas in hpp', 'ok', '1 limit(s) the number of helper pods, none is full']],
    ],
    [
      'pods full',
      [quota('q', { pods: '10', 'requests.cpu': '1' }, { pods: '10', 'requests.cpu': '100m' })],
      [['ResourceQuota hpp/q', 'attention', 'helpers cannot be created: quota q is full (pods 10/10 used)']],
    ],
    [
      'count/pods over (hard lowered below use)',
      [quota('q', { 'count/pods': '2' }, { 'count/pods': '3' })],
      [['ResourceQuota hpp/q', 'attention', 'helpers cannot be created: quota q is full (count/pods 3/2 used)']],
    ],
    [
      'hard 0 and no status yet',
      [{ metadata: { name: 'zero' }, spec: { hard: { pods: '0' } } }],
      [['ResourceQuota hpp/zero', 'attention', 'helpers cannot be created: quota zero is full (pods 0/0 used)']],
    ],
    [
      'only cpu limited',
      [quota('q', { 'requests.cpu': '1' }, { 'requests.cpu': '1' })],
      [['ResourceQuotas in hpp', 'ok', 'none limits the number of helper pods']],
    ],
    [
      'full, but scoped to BestEffort pods (helpers request cpu and memory)',
      [quota('q', { pods: '1' }, { pods: '1' }, { scopes: ['BestEffort'] })],
      [['ResourceQuotas in hpp', 'ok', 'none limits the number of helper pods']],
    ],
    [
      'full, scoped to the critical class: only delete helpers',
      [quota('crit', { pods: '5' }, { pods: '5' }, critical)],
      [['ResourceQuota hpp/crit', 'attention', 'delete helpers cannot be created: quota crit is full (pods 5/5 used)']],
    ],
  ])('%s', (_n, items, expected) => {
    expect(
      diagnoseHelperQuotas('hpp', { items }, 'system-node-critical').map((f) => [f.subject, f.status, f.summary]),
    ).toEqual(expected);
  });

  it('names the fix of a full quota, and says when it could not read', () => {
    expect(diagnoseHelperQuotas('hpp', { items: [quota('q', { pods: '1' }, { pods: '1' })] }, '')[0]?.fix).toBe(
      'raise its pods (kubectl -n hpp edit resourcequota q) or remove pods it counts',
    );
    expect(diagnoseHelperQuotas('hpp', { unreadable: 'resourcequotas is forbidden' }, '')).toEqual([
      {
        subject: 'ResourceQuotas in hpp',
        status: 'info',
        summary: 'could not check whether helpers fit: resourcequotas is forbidden',
      },
    ]);
  });

  it.each<[string, Partial<V1ResourceQuotaSpec>, Partial<NonNullable<V1Pod['spec']>>, boolean]>([
    ['unscoped', {}, {}, true],
    ['Terminating, with a deadline', { scopes: ['Terminating'] }, { activeDeadlineSeconds: 120 }, true],
    ['NotTerminating, with a deadline', { scopes: ['NotTerminating'] }, { activeDeadlineSeconds: 120 }, false],
    ['BestEffort, no resources', { scopes: ['BestEffort'] }, {}, true],
    [
      'NotBestEffort, with requests',
      { scopes: ['NotBestEffort'] },
      { containers: [{ name: 'c', resources: { requests: { cpu: '10m' } } }] },
      true,
    ],
    ['PriorityClass In, matching', critical, { priorityClassName: 'system-node-critical' }, true],
    ['PriorityClass In, no class', critical, {}, false],
    [
      'PriorityClass NotIn, no class',
      { scopeSelector: { matchExpressions: [{ scopeName: 'PriorityClass', operator: 'NotIn', values: ['x'] }] } },
      {},
      true,
    ],
    [
      'PriorityClass Exists, no class',
      { scopeSelector: { matchExpressions: [{ scopeName: 'PriorityClass', operator: 'Exists' }] } },
      {},
      false,
    ],
    ['CrossNamespacePodAffinity', { scopes: ['CrossNamespacePodAffinity'] }, {}, false],
    ['all scopes must match', { scopes: ['Terminating', 'BestEffort'] }, { activeDeadlineSeconds: 1 }, true],
  ])('quota scope %s', (_n, scope, spec, counted) => {
    expect(quotaCountsPod({ spec: scope }, { spec: { containers: [], ...spec } })).toBe(counted);
  });
});

describe('versionFromMetrics', () => {
  it.each<[string, string, string | undefined]>([
    ['the series', 'hostpath_provisioner_build_info{version="0.1.0",node_version="v24.22.3"} 1\n', '0.1.0'],
    [
      'labels in another order',
      'x 1\nhostpath_provisioner_build_info{node_version="v24",version="1.2.3-rc.1"} 1',
      '1.2.3-rc.1',
    ],
    ['no such series', 'process_cpu_seconds_total 3\n', undefined],
    ['an empty version', 'hostpath_provisioner_build_info{version=""} 1', undefined],
    ['another metric with a version label', 'other_build_info{version="9"} 1', undefined],
    ['a long value is cut', `hostpath_provisioner_build_info{version="${'v'.repeat(100)}"} 1`, 'v'.repeat(64)],
  ])('%s', (_n, text, version) => {
    expect(versionFromMetrics(text)).toBe(version);
  });
});

describe('podSetting, provisionerSettings (what the provisioner runs with)', () => {
  const pod = (container: Partial<V1Container>, phase = 'Running', serviceAccountName?: string): V1Pod => ({
    metadata: { name: 'hpp-1' },
    spec: {
      ...(serviceAccountName ? { serviceAccountName } : {}),
      containers: [{ name: 'sidecar' }, { name: 'hostpath-provisioner', ...container }],
    },
    status: { phase },
  });
  it.each<[string, Partial<V1Container>, string | undefined]>([
    ['nothing given', {}, undefined],
    ['env value', { env: [{ name: 'PV_DIR', value: '/data' }] }, '/data'],
    [
      'env valueFrom cannot be resolved',
      { env: [{ name: 'PV_DIR', valueFrom: { fieldRef: { fieldPath: 'x' } } }] },
      undefined,
    ],
    ['flag and value', { args: ['run', '--pv-dir', '/flag'] }, '/flag'],
    ['flag=value', { args: ['run', '--pv-dir=/eq'] }, '/eq'],
    ['the flag wins over env', { args: ['--pv-dir', '/flag'], env: [{ name: 'PV_DIR', value: '/env' }] }, '/flag'],
    ['the last flag wins', { command: ['node', 'main.js', '--pv-dir', '/a'], args: ['--pv-dir=/b'] }, '/b'],
    ['a flag without value is ignored', { args: ['run', '--pv-dir'] }, undefined],
    ['an empty env value', { env: [{ name: 'PV_DIR', value: '' }] }, ''],
  ])('%s', (_n, container, expected) => {
    expect(podSetting(pod(container), '--pv-dir', 'PV_DIR')).toBe(expected);
  });

  const defaults = {
    provisionerNames: ['microk8s.io/hostpath'],
    pvDir: '/var/snap/microk8s/common/default-storage',
    tolerationPolicy: 'node-taints' as const,
    helperPriorityClass: 'system-node-critical',
    serviceAccount: 'hostpath-provisioner',
  };
  it('no pods: the defaults', () => {
    expect(provisionerSettings({}, [], defaults)).toEqual(defaults);
  });
  it("the microk8s overlay's pod: its ServiceAccount and env", () => {
    const p = pod(
      {
        env: [
          { name: 'PV_DIR', value: '/var/snap/microk8s/common/default-storage' },
          { name: 'HELPER_PRIORITY_CLASS', value: '' },
          { name: 'TOLERATION_POLICY', value: 'none' },
          { name: 'PROVISIONER_NAMES', value: 'microk8s.io/hostpath, example.com/hp' },
        ],
      },
      'Running',
      'microk8s-hostpath',
    );
    expect(provisionerSettings({}, [p], defaults)).toEqual({
      provisionerNames: ['microk8s.io/hostpath', 'example.com/hp'],
      pvDir: '/var/snap/microk8s/common/default-storage',
      tolerationPolicy: 'none',
      helperPriorityClass: '',
      serviceAccount: 'microk8s-hostpath',
    });
  });
  it('what the user told doctor wins; a Running pod is preferred; invalid values fall back to the defaults', () => {
    const pending = pod({ args: ['--pv-dir', '/pending'] }, 'Pending', 'other');
    const running = pod({ args: ['--pv-dir', '/running', '--toleration-policy', 'bogus', '--provisioner-names', ','] });
    expect(
      provisionerSettings({ serviceAccount: 'told', helperPriorityClass: 'x' }, [pending, running], defaults),
    ).toEqual({ ...defaults, pvDir: '/running', serviceAccount: 'told', helperPriorityClass: 'x' });
  });
});

describe('diagnoseNamedClaim (doctor --claim NAME)', () => {
  const claims = [
    { metadata: { name: 'bound' }, spec: { volumeName: 'pvc-1' }, status: { phase: 'Bound' } },
    { metadata: { name: 'pending' }, status: { phase: 'Pending' } },
  ];
  it.each<[string, string, Finding | undefined]>([
    [
      'a mistyped name',
      'nope',
      {
        subject: 'claim shop/nope',
        status: 'attention',
        summary: 'not found',
        fix: 'check the name and namespace: kubectl -n shop get pvc',
      },
    ],
    ['a Bound claim', 'bound', { subject: 'claim shop/bound', status: 'ok', summary: 'Bound to pvc-1' }],
    ['a Pending claim: diagnoseClaim speaks of it', 'pending', undefined],
  ])('%s', (_n, name, finding) => {
    expect(diagnoseNamedClaim('shop', name, claims)).toEqual(finding);
  });
});
