import { describe, expect, it } from '@jest/globals';
import type { V1Node, V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import {
  buildVolume,
  countVolumes,
  decideVolume,
  isSharedVolume,
  volumeHostname,
  volumeNode,
  volumeOnNode,
  volumePath,
} from '../src/domain/volume.js';

const claim: V1PersistentVolumeClaim = {
  metadata: { name: 'data', namespace: 'default', uid: 'u1' },
  spec: {
    storageClassName: 'microk8s-hostpath',
    accessModes: ['ReadWriteMany'],
    resources: { requests: { storage: '1Gi' } },
  },
};

describe('buildVolume', () => {
  it('builds the addon-shaped hostPath PV with a finalizer for Delete', () => {
    expect(
      buildVolume({
        claim,
        volumeName: 'pvc-u1',
        path: '/var/snap/microk8s/common/default-storage/default-data-pvc-u1',
        nodeHostname: 'w1.example',
        reclaimPolicy: 'Delete',
        volumeType: 'hostPath',
        provisionerName: 'microk8s.io/hostpath',
        identity: 'm1',
      }),
    ).toEqual({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: {
        name: 'pvc-u1',
        annotations: { 'pv.kubernetes.io/provisioned-by': 'microk8s.io/hostpath', hostPathProvisionerIdentity: 'm1' },
        finalizers: ['external-provisioner.volume.kubernetes.io/finalizer'],
      },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteMany'],
        persistentVolumeReclaimPolicy: 'Delete',
        storageClassName: 'microk8s-hostpath',
        volumeMode: 'Filesystem',
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: 'default', name: 'data', uid: 'u1' },
        nodeAffinity: {
          required: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['w1.example'] }] },
            ],
          },
        },
        hostPath: { path: '/var/snap/microk8s/common/default-storage/default-data-pvc-u1', type: 'DirectoryOrCreate' },
      },
    });
  });

  it('gives the PV the class the claim names by the beta annotation (read before the spec)', () => {
    const spec = { ...claim.spec };
    delete spec.storageClassName;
    const beta: V1PersistentVolumeClaim = {
      ...claim,
      metadata: { ...claim.metadata, annotations: { 'volume.beta.kubernetes.io/storage-class': 'old-style' } },
      spec,
    };
    const pv = buildVolume({
      claim: beta,
      volumeName: 'pvc-u1',
      path: '/var/snap/microk8s/common/default-storage/default-data-pvc-u1',
      nodeHostname: 'w1.example',
      reclaimPolicy: 'Delete',
      volumeType: 'hostPath',
      provisionerName: 'microk8s.io/hostpath',
      identity: 'm1',
    });
    expect(pv.spec?.storageClassName).toBe('old-style');
  });

  it('builds a local Retain PV without a finalizer, defaulting access modes', () => {
    const pv = buildVolume({
      claim: { ...claim, spec: { ...claim.spec, accessModes: [] } },
      volumeName: 'pvc-u1',
      path: '/mnt/usb/default-data-pvc-u1',
      nodeHostname: 'w1',
      reclaimPolicy: 'Retain',
      volumeType: 'local',
      provisionerName: 'microk8s.io/hostpath',
      identity: 'm1',
    });
    expect(pv.metadata?.finalizers).toBeUndefined();
    expect(pv.spec?.local).toEqual({ path: '/mnt/usb/default-data-pvc-u1' });
    expect(pv.spec?.hostPath).toBeUndefined();
    expect(pv.spec?.accessModes).toEqual(['ReadWriteOnce']);
    expect(pv.spec?.persistentVolumeReclaimPolicy).toBe('Retain');
  });

  describe('on a shared file system', () => {
    const input = {
      claim,
      volumeName: 'pvc-u1',
      path: '/mnt/nfs/default-data-pvc-u1',
      nodeHostname: 'w1',
      reclaimPolicy: 'Delete' as const,
      volumeType: 'hostPath' as const,
      provisionerName: 'microk8s.io/hostpath',
      identity: 'm1',
    };
    const node = (name: string, labels: Record<string, string> = {}): V1Node => ({
      metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
    });

    it('without allowedTopologies: no node affinity, marked shared, on no one node and on every node', () => {
      const pv = buildVolume({ ...input, nodeHostname: '', shared: {} });
      expect(pv.spec?.nodeAffinity).toBeUndefined();
      expect(pv.metadata?.annotations).toEqual({
        'pv.kubernetes.io/provisioned-by': 'microk8s.io/hostpath',
        hostPathProvisionerIdentity: 'm1',
        'hostpath-provisioner.io/shared-file-system': 'true',
      });
      expect(isSharedVolume(pv)).toBe(true);
      // Not taken for an old addon PV without affinity (that one lives on its identity's node).
      expect(volumeNode(pv)).toBeUndefined();
      expect([volumeOnNode(pv, node('w1')), volumeOnNode(pv, node('m1'))]).toEqual([true, true]);
    });

    it('with allowedTopologies: pinned to the nodes with those labels, each term an In expression', () => {
      const pv = buildVolume({
        ...input,
        shared: {
          allowedTopologies: [
            { matchLabelExpressions: [{ key: 'example.com/nfs', values: ['a', 'b'] }] },
            { matchLabelExpressions: [] },
          ],
        },
      });
      expect(pv.spec?.nodeAffinity).toEqual({
        required: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'example.com/nfs', operator: 'In', values: ['a', 'b'] }] }],
        },
      });
      expect(volumeHostname(pv)).toBeUndefined();
      expect([
        volumeOnNode(pv, node('w1', { 'example.com/nfs': 'b' })),
        volumeOnNode(pv, node('w2', { 'example.com/nfs': 'c' })),
        volumeOnNode(pv, node('w3')),
      ]).toEqual([true, false, false]);
    });
  });

  it('refuses an empty node (the addon pinned PVs to "")', () => {
    expect(() =>
      buildVolume({
        claim,
        volumeName: 'pvc-u1',
        path: '/x/y',
        nodeHostname: '',
        reclaimPolicy: 'Delete',
        volumeType: 'hostPath',
        provisionerName: 'microk8s.io/hostpath',
        identity: 'm1',
      }),
    ).toThrow('empty node name');
  });
});

const ours = (
  patch: Partial<V1PersistentVolume['spec']> & {
    phase?: string;
    finalizers?: string[];
    deleting?: boolean;
    by?: string;
  },
): V1PersistentVolume => ({
  metadata: {
    name: 'pvc-u1',
    annotations: {
      'pv.kubernetes.io/provisioned-by': patch.by ?? 'microk8s.io/hostpath',
      hostPathProvisionerIdentity: 'old-node',
    },
    ...(patch.finalizers ? { finalizers: patch.finalizers } : {}),
    ...(patch.deleting ? { deletionTimestamp: new Date(0) } : {}),
  },
  spec: {
    persistentVolumeReclaimPolicy: patch.persistentVolumeReclaimPolicy ?? 'Delete',
    hostPath: { path: '/base/default-data-pvc-u1' },
    nodeAffinity: patch.nodeAffinity ?? {
      required: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['w1'] }] }],
      },
    },
  },
  ...(patch.phase ? { status: { phase: patch.phase } } : {}),
});
const F = 'external-provisioner.volume.kubernetes.io/finalizer';

describe('decideVolume', () => {
  const table: [string, V1PersistentVolume, string][] = [
    ['not ours', ours({ by: 'rancher.io/local-path', phase: 'Released' }), 'ignore'],
    ["Released, Delete (the addon's PV with another identity)", ours({ phase: 'Released' }), 'delete'],
    ['Released, Delete, finalizer', ours({ phase: 'Released', finalizers: [F] }), 'delete'],
    ['Bound without finalizer (made by the addon)', ours({ phase: 'Bound' }), 'ensure-finalizer'],
    ['Bound with finalizer', ours({ phase: 'Bound', finalizers: [F] }), 'ignore'],
    ['deleted by hand while Bound waits', ours({ phase: 'Bound', finalizers: [F], deleting: true }), 'ignore'],
    ['deleted by hand while Available', ours({ phase: 'Available', finalizers: [F], deleting: true }), 'delete'],
    ['being deleted after our cleanup removed the finalizer', ours({ phase: 'Released', deleting: true }), 'ignore'],
    [
      'Retain Released is never cleaned',
      ours({ phase: 'Released', persistentVolumeReclaimPolicy: 'Retain' }),
      'ignore',
    ],
    [
      'Retain deleted by hand releases our finalizer only',
      ours({ persistentVolumeReclaimPolicy: 'Retain', finalizers: [F], deleting: true }),
      'release-finalizer',
    ],
  ];
  it.each(table)('%s', (_name, pv, action) => {
    expect(decideVolume(pv, ['microk8s.io/hostpath']).action).toBe(action);
  });
});

describe('volumeHostname and volumePath', () => {
  it('reads the single hostname of the affinity', () => {
    expect(volumeHostname(ours({}))).toBe('w1');
    expect(volumePath(ours({}))).toBe('/base/default-data-pvc-u1');
  });
  it.each([
    ['empty value (the addon bug)', ['']],
    ['several values', ['a', 'b']],
  ])('refuses %s', (_n, values) => {
    const pv = ours({
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values }] }],
        },
      },
    });
    expect(volumeHostname(pv)).toBeUndefined();
  });
});

describe('volumeNode', () => {
  const affinity = (values: string[]): V1PersistentVolume['spec'] => ({
    nodeAffinity: {
      required: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values }] }],
      },
    },
  });
  const identity = { annotations: { hostPathProvisionerIdentity: 'm1' } };
  it.each([
    [
      'node affinity wins over the identity annotation',
      { metadata: identity, spec: affinity(['w1-host']) },
      { hostname: 'w1-host' },
    ],
    [
      'no node affinity (old addon PV): the identity names the node',
      { metadata: identity, spec: {} },
      { nodeName: 'm1' },
    ],
    ['an affinity we cannot read is not second-guessed', { metadata: identity, spec: affinity(['a', 'b']) }, undefined],
    [
      'no affinity, empty identity',
      { metadata: { annotations: { hostPathProvisionerIdentity: '' } }, spec: {} },
      undefined,
    ],
    ['no affinity, no identity', { spec: {} }, undefined],
  ] as [string, V1PersistentVolume, object | undefined][])('%s', (_name, pv, expected) => {
    expect(volumeNode(pv)).toEqual(expected);
  });
});

describe('countVolumes', () => {
  const pv = (name: string, by: string | undefined, className: string, hostname?: string): V1PersistentVolume => ({
    metadata: { name, annotations: by === undefined ? {} : { 'pv.kubernetes.io/provisioned-by': by } },
    spec: {
      storageClassName: className,
      ...(hostname === undefined
        ? {}
        : {
            nodeAffinity: {
              required: {
                nodeSelectorTerms: [
                  { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [hostname] }] },
                ],
              },
            },
          }),
    },
  });
  it.each<[string, V1PersistentVolume[], ReturnType<typeof countVolumes>]>([
    ['no volumes', [], []],
    [
      'counts ours by node and class, skips others',
      [
        pv('a', 'microk8s.io/hostpath', 'fast', 'n1'),
        pv('b', 'microk8s.io/hostpath', 'fast', 'n1'),
        pv('c', 'microk8s.io/hostpath', 'slow', 'n1'),
        pv('d', 'microk8s.io/hostpath', 'fast', 'n2'),
        pv('e', 'rancher.io/local-path', 'fast', 'n1'),
        pv('f', undefined, 'fast', 'n1'),
      ],
      [
        { node: 'n1', class: 'fast', count: 2 },
        { node: 'n1', class: 'slow', count: 1 },
        { node: 'n2', class: 'fast', count: 1 },
      ],
    ],
    [
      'a volume without a pinned node',
      [pv('a', 'microk8s.io/hostpath', 'fast')],
      [{ node: 'unknown', class: 'fast', count: 1 }],
    ],
  ])('%s', (_name, volumes, expected) => {
    expect(countVolumes(volumes, ['microk8s.io/hostpath'])).toEqual(expected);
  });
});
