import { describe, expect, it } from '@jest/globals';
import type { V1Node, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { decideClaim } from '../src/domain/claim.js';
import {
  baseDirectoryOnNode,
  effectiveReclaimPolicy,
  parseClassParameters,
  type ClassParameters,
} from '../src/domain/storage-class.js';

const DEFAULT = '/var/snap/microk8s/common/default-storage';
const NAMES = ['microk8s.io/hostpath'];
const wffc: V1StorageClass = {
  metadata: { name: 'microk8s-hostpath' },
  provisioner: 'microk8s.io/hostpath',
  volumeBindingMode: 'WaitForFirstConsumer',
  reclaimPolicy: 'Delete',
};
const immediate: V1StorageClass = { ...wffc, metadata: { name: 'hostpath-immediate' }, volumeBindingMode: 'Immediate' };

function claim(patch: {
  annotations?: Record<string, string>;
  spec?: V1PersistentVolumeClaim['spec'];
  deleting?: boolean;
}): V1PersistentVolumeClaim {
  return {
    metadata: {
      name: 'data',
      namespace: 'default',
      uid: 'u1',
      annotations: { 'volume.kubernetes.io/storage-provisioner': 'microk8s.io/hostpath', ...patch.annotations },
      ...(patch.deleting ? { deletionTimestamp: new Date(0) } : {}),
    },
    spec: {
      storageClassName: 'microk8s-hostpath',
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
      ...patch.spec,
    },
  };
}
/** The claim without `spec.storageClassName`. */
function withoutSpecClass(c: V1PersistentVolumeClaim): V1PersistentVolumeClaim {
  const spec = { ...c.spec };
  delete spec.storageClassName;
  return { ...c, spec };
}
const selected = { 'volume.kubernetes.io/selected-node': 'w1' };

describe('decideClaim', () => {
  const table: [string, V1PersistentVolumeClaim, V1StorageClass | undefined, object][] = [
    [
      'WFFC with a selected node',
      claim({ annotations: selected }),
      wffc,
      { action: 'provision', selectedNode: 'w1', parameters: { baseDirectory: DEFAULT, volumeType: 'hostPath' } },
    ],
    ['WFFC without a selected node waits', claim({}), wffc, { action: 'ignore' }],
    [
      'Immediate has no selected node',
      claim({ spec: { storageClassName: 'hostpath-immediate', resources: { requests: { storage: '1Gi' } } } }),
      immediate,
      { action: 'provision', selectedNode: undefined },
    ],
    [
      'beta provisioner annotation is read too',
      {
        ...claim({ annotations: selected }),
        metadata: {
          name: 'data',
          namespace: 'default',
          annotations: { 'volume.beta.kubernetes.io/storage-provisioner': 'microk8s.io/hostpath', ...selected },
        },
      },
      wffc,
      { action: 'provision', provisionerName: 'microk8s.io/hostpath' },
    ],
    [
      'class named only by the beta annotation (read first, as the PV controller does)',
      withoutSpecClass(
        claim({ annotations: { ...selected, 'volume.beta.kubernetes.io/storage-class': 'microk8s-hostpath' } }),
      ),
      wffc,
      { action: 'provision', selectedNode: 'w1' },
    ],
    [
      'no class by annotation or spec',
      withoutSpecClass(claim({ annotations: selected })),
      wffc,
      { action: 'ignore', why: 'claim names no StorageClass' },
    ],
    [
      'bound',
      claim({ annotations: selected, spec: { volumeName: 'pv1', storageClassName: 'microk8s-hostpath' } }),
      wffc,
      { action: 'ignore' },
    ],
    ['being deleted', claim({ annotations: selected, deleting: true }), wffc, { action: 'ignore' }],
    ['class missing', claim({ annotations: selected }), undefined, { action: 'ignore' }],
    [
      'other provisioner',
      claim({ annotations: selected }),
      { ...wffc, provisioner: 'rancher.io/local-path' },
      { action: 'ignore' },
    ],
    [
      'not annotated for us',
      claim({ annotations: { 'volume.kubernetes.io/storage-provisioner': 'other.io/x', ...selected } }),
      wffc,
      { action: 'ignore' },
    ],
    [
      'block volume',
      claim({
        annotations: selected,
        spec: {
          storageClassName: 'microk8s-hostpath',
          volumeMode: 'Block',
          resources: { requests: { storage: '1Gi' } },
        },
      }),
      wffc,
      {
        action: 'refuse',
        reason: 'block_volume',
        message: 'block volumes (volumeMode: Block) are not supported: hostPath volumes are directories',
      },
    ],
    [
      'selector',
      claim({
        annotations: selected,
        spec: {
          storageClassName: 'microk8s-hostpath',
          selector: { matchLabels: { a: 'b' } },
          resources: { requests: { storage: '1Gi' } },
        },
      }),
      wffc,
      { action: 'refuse', reason: 'selector' },
    ],
    [
      'clone',
      claim({
        annotations: selected,
        spec: {
          storageClassName: 'microk8s-hostpath',
          dataSource: { kind: 'PersistentVolumeClaim', name: 'src' },
          resources: { requests: { storage: '1Gi' } },
        },
      }),
      wffc,
      {
        action: 'refuse',
        reason: 'data_source',
        message: 'claims with a data source (PersistentVolumeClaim src) are not supported: no cloning or snapshots',
      },
    ],
    [
      'populator-owned claim is left alone',
      claim({
        annotations: selected,
        spec: {
          storageClassName: 'microk8s-hostpath',
          dataSourceRef: { apiGroup: 'example.io', kind: 'Sample', name: 's' },
          resources: { requests: { storage: '1Gi' } },
        },
      }),
      wffc,
      { action: 'ignore' },
    ],
    [
      'misspelt pvdir',
      claim({ annotations: selected }),
      { ...wffc, parameters: { pvdir: '/mnt/usb' } },
      {
        action: 'refuse',
        reason: 'bad_class',
        message:
          'StorageClass microk8s-hostpath: unknown parameter "pvdir" (did you mean "pvDir"?); known: pvDir, pvDirFromNode, sharedFileSystem, volumeType, uid, gid, mode',
      },
    ],
    [
      'pvDir escaping with ..',
      claim({ annotations: selected }),
      { ...wffc, parameters: { pvDir: `${DEFAULT}/../../../../etc` } },
      {
        action: 'refuse',
        reason: 'bad_class',
        message: `StorageClass microk8s-hostpath: parameter pvDir "${DEFAULT}/../../../../etc" contains ".."`,
      },
    ],
    [
      'pvDir /',
      claim({ annotations: selected }),
      { ...wffc, parameters: { pvDir: '/' } },
      {
        action: 'refuse',
        reason: 'bad_class',
        message: 'StorageClass microk8s-hostpath: parameter pvDir "/" is the root directory /',
      },
    ],
    [
      'mountOptions',
      claim({ annotations: selected }),
      { ...wffc, mountOptions: ['ro'] },
      {
        action: 'refuse',
        reason: 'bad_class',
        message: 'StorageClass microk8s-hostpath: mountOptions ["ro"] are not supported by hostPath volumes',
      },
    ],
    [
      'pvDir and local volumes',
      claim({ annotations: selected }),
      { ...wffc, parameters: { pvDir: '/mnt/usb', volumeType: 'local' } },
      { action: 'provision', parameters: { baseDirectory: '/mnt/usb', volumeType: 'local' } },
    ],
  ];
  it.each(table)('%s', (_name, c, cls, expected) => {
    expect(decideClaim(c, cls, NAMES, DEFAULT)).toMatchObject(expected);
  });

  it('checks every refusal before the selected node: a bad class is reported while waiting for a consumer', () => {
    expect(decideClaim(claim({}), { ...wffc, parameters: { pvDir: 'rel' } }, NAMES, DEFAULT)).toMatchObject({
      action: 'refuse',
    });
  });
});

describe('parseClassParameters', () => {
  it('lists every problem at once', () => {
    expect(parseClassParameters({ ...wffc, parameters: { a: '1', volumeType: 'nfs', pvDir: 'x' } }, DEFAULT)).toEqual({
      ok: false,
      problems: [
        'unknown parameter "a"; known: pvDir, pvDirFromNode, sharedFileSystem, volumeType, uid, gid, mode',
        'parameter pvDir "x" is not an absolute path',
        'parameter volumeType "nfs" must be "hostPath" or "local"',
      ],
    });
  });
});

describe('parseClassParameters: pvDirFromNode', () => {
  const parse = (parameters: Record<string, string>) => parseClassParameters({ ...wffc, parameters }, DEFAULT);
  const table: [string, Record<string, string>, boolean | string][] = [
    ['unset', {}, false],
    ['"true"', { pvDirFromNode: 'true' }, true],
    ['"false"', { pvDirFromNode: 'false' }, false],
    ['"True"', { pvDirFromNode: 'True' }, 'parameter pvDirFromNode "True" must be "true" or "false"'],
    ['"yes"', { pvDirFromNode: 'yes' }, 'parameter pvDirFromNode "yes" must be "true" or "false"'],
  ];
  it.each(table)('%s', (_name, parameters, expected) => {
    if (typeof expected === 'string') expect(parse(parameters)).toEqual({ ok: false, problems: [expected] });
    else expect(parse(parameters)).toMatchObject({ ok: true, parameters: { baseFromNode: expected } });
  });
});

describe('parseClassParameters: sharedFileSystem', () => {
  const parse = (parameters: Record<string, string>, allowedTopologies?: V1StorageClass['allowedTopologies']) =>
    parseClassParameters({ ...wffc, parameters, ...(allowedTopologies ? { allowedTopologies } : {}) }, DEFAULT);
  const topology = [{ matchLabelExpressions: [{ key: 'example.com/nfs', values: ['yes'] }] }];
  it.each([
    ['"true"', { sharedFileSystem: 'true' }, undefined, { ok: true }],
    ['"false"', { sharedFileSystem: 'false' }, undefined, { ok: true }],
    ['local with allowedTopologies', { sharedFileSystem: 'true', volumeType: 'local' }, topology, { ok: true }],
    [
      'not a boolean',
      { sharedFileSystem: 'nfs' },
      undefined,
      { ok: false, problems: ['parameter sharedFileSystem "nfs" must be "true" or "false"'] },
    ],
    [
      'with pvDirFromNode',
      { sharedFileSystem: 'true', pvDirFromNode: 'true' },
      undefined,
      {
        ok: false,
        problems: [
          'parameters pvDirFromNode and sharedFileSystem exclude each other: a shared file system has one directory for every node',
        ],
      },
    ],
    [
      'local without allowedTopologies',
      { sharedFileSystem: 'true', volumeType: 'local' },
      undefined,
      {
        ok: false,
        problems: [
          'parameter volumeType "local" with sharedFileSystem needs allowedTopologies naming the nodes that mount it (a local PV must have node affinity)',
        ],
      },
    ],
  ])('%s', (_name, parameters, allowedTopologies, expected) => {
    const parsed = parse(parameters, allowedTopologies);
    if (expected.ok) {
      expect(parsed).toMatchObject({
        ok: true,
        parameters: { sharedFileSystem: parameters.sharedFileSystem === 'true' },
      });
    } else expect(parsed).toEqual(expected);
  });
});

describe('baseDirectoryOnNode', () => {
  const node = (annotation?: string): V1Node => ({
    metadata: {
      name: 'gpu-1',
      ...(annotation !== undefined ? { annotations: { 'hostpath-provisioner.io/pv-dir': annotation } } : {}),
    },
  });
  const parameters = (baseFromNode: boolean): ClassParameters => ({
    baseDirectory: '/srv/class',
    baseFromNode,
    sharedFileSystem: false,
    volumeType: 'hostPath',
    ownership: { uid: undefined, gid: undefined, mode: undefined },
  });
  const table: [string, boolean, string | undefined, ReturnType<typeof baseDirectoryOnNode>][] = [
    ['opted in, annotated', true, '/mnt/nvme', { ok: true, path: '/mnt/nvme' }],
    ['opted in, not annotated: the class directory', true, undefined, { ok: true, path: '/srv/class' }],
    ['not opted in: the annotation is not read', false, '/mnt/nvme', { ok: true, path: '/srv/class' }],
    ['not opted in, invalid annotation: not read either', false, 'rel', { ok: true, path: '/srv/class' }],
    [
      'opted in, relative annotation: refused, not replaced by the class directory',
      true,
      'mnt/nvme',
      {
        ok: false,
        reason: 'node gpu-1 has annotation hostpath-provisioner.io/pv-dir "mnt/nvme", which is not an absolute path',
      },
    ],
    [
      'opted in, escaping annotation',
      true,
      '/mnt/../etc',
      {
        ok: false,
        reason: 'node gpu-1 has annotation hostpath-provisioner.io/pv-dir "/mnt/../etc", which contains ".."',
      },
    ],
    [
      'opted in, empty annotation',
      true,
      '',
      { ok: false, reason: 'node gpu-1 has annotation hostpath-provisioner.io/pv-dir "", which is empty' },
    ],
  ];
  it.each(table)('%s', (_name, baseFromNode, annotation, expected) => {
    expect(baseDirectoryOnNode(parameters(baseFromNode), node(annotation))).toEqual(expected);
  });
});

describe('parseClassParameters: uid, gid, mode', () => {
  const parse = (parameters: Record<string, string>) => parseClassParameters({ ...wffc, parameters }, DEFAULT);
  it.each([
    ['none: the addon', {}, { uid: undefined, gid: undefined, mode: undefined }],
    ['all three', { uid: '1000', gid: '2000', mode: '2770' }, { uid: 1000, gid: 2000, mode: 0o2770 }],
    ['root ids', { uid: '0', gid: '0' }, { uid: 0, gid: 0, mode: undefined }],
    ['mode only, three digits', { mode: '750' }, { uid: undefined, gid: undefined, mode: 0o750 }],
  ])('accepts %s', (_name, parameters, ownership) => {
    expect(parse(parameters)).toEqual({
      ok: true,
      parameters: {
        baseDirectory: DEFAULT,
        baseFromNode: false,
        sharedFileSystem: false,
        volumeType: 'hostPath',
        ownership,
      },
    });
  });
  it.each([
    [
      'a negative uid',
      { uid: '-1' },
      'parameter uid "-1" must be a decimal integer from 0 to 4294967294 (a numeric id, not a name)',
    ],
    [
      'a group name',
      { gid: 'staff' },
      'parameter gid "staff" must be a decimal integer from 0 to 4294967294 (a numeric id, not a name)',
    ],
    [
      '(uid_t)-1',
      { uid: '4294967295' },
      'parameter uid "4294967295" must be a decimal integer from 0 to 4294967294 (a numeric id, not a name)',
    ],
    [
      'five octal digits',
      { mode: '02770' },
      'parameter mode "02770" must be an octal mode of at most 4 digits, e.g. "0770" or "2775"',
    ],
    [
      'a symbolic mode',
      { mode: 'g+rwx' },
      'parameter mode "g+rwx" must be an octal mode of at most 4 digits, e.g. "0770" or "2775"',
    ],
    [
      'a non-octal digit',
      { mode: '0778' },
      'parameter mode "0778" must be an octal mode of at most 4 digits, e.g. "0770" or "2775"',
    ],
  ])('refuses %s', (_name, parameters, problem) => {
    expect(parse(parameters)).toEqual({ ok: false, problems: [problem] });
  });
  it('a bad mode refuses the claim before any node is touched, like a bad pvDir', () => {
    expect(decideClaim(claim({}), { ...wffc, parameters: { uid: '1000', mode: '888' } }, NAMES, DEFAULT)).toEqual({
      action: 'refuse',
      reason: 'bad_class',
      message:
        'StorageClass microk8s-hostpath: parameter mode "888" must be an octal mode of at most 4 digits, e.g. "0770" or "2775"',
    });
  });
});

describe('effectiveReclaimPolicy', () => {
  it.each([
    [undefined, undefined, 'Delete'],
    ['Delete', undefined, 'Delete'],
    ['Retain', undefined, 'Retain'],
    ['Delete', 'Retain', 'Retain'],
    ['Retain', 'Delete', 'Retain'],
    [undefined, 'Delete', 'Delete'],
  ] as const)('class %s with PV_RECLAIM_POLICY %s → %s', (cls, env, expected) => {
    expect(effectiveReclaimPolicy(cls, env)).toBe(expected);
  });
});
