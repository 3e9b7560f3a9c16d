import { describe, expect, it } from '@jest/globals';
import type { V1Node, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { LAST_APPLIED, stripClaim, stripCommon, stripNode, stripPendingPod } from '../src/kube/transforms.js';

const managedFields = [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:spec': {} } }];

describe('informer transforms', () => {
  it('stripCommon drops managedFields and the last-applied annotation, keeps every other field', () => {
    const claim: V1PersistentVolumeClaim = {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: {
        name: 'data',
        namespace: 'apps',
        uid: 'u1',
        resourceVersion: '7',
        labels: { app: 'db' },
        annotations: {
          [LAST_APPLIED]: '{"apiVersion":"v1"}',
          'volume.kubernetes.io/selected-node': 'n1',
          'volume.kubernetes.io/storage-provisioner': 'microk8s.io/hostpath',
        },
        finalizers: ['kubernetes.io/pvc-protection'],
        managedFields,
      },
      spec: { storageClassName: 'microk8s-hostpath', accessModes: ['ReadWriteOnce'], volumeName: 'pvc-u1' },
      status: { phase: 'Pending' },
    };
    expect(stripCommon(claim)).toEqual({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: {
        name: 'data',
        namespace: 'apps',
        uid: 'u1',
        resourceVersion: '7',
        labels: { app: 'db' },
        annotations: {
          'volume.kubernetes.io/selected-node': 'n1',
          'volume.kubernetes.io/storage-provisioner': 'microk8s.io/hostpath',
        },
        finalizers: ['kubernetes.io/pvc-protection'],
      },
      spec: { storageClassName: 'microk8s-hostpath', accessModes: ['ReadWriteOnce'], volumeName: 'pvc-u1' },
      status: { phase: 'Pending' },
    });
    expect(claim.metadata?.managedFields).toBe(managedFields); // the input is not mutated
    expect(claim.metadata?.annotations?.[LAST_APPLIED]).toBeDefined();
  });

  it('stripCommon leaves objects without metadata or annotations alone', () => {
    expect(stripCommon({ kind: 'X' })).toEqual({ kind: 'X' });
    expect(stripCommon({ metadata: { name: 'a' } })).toEqual({ metadata: { name: 'a' } });
  });

  it('stripNode drops images, volumes in use/attached and config; keeps labels, taints, conditions, addresses', () => {
    const node: V1Node = {
      metadata: { name: 'n1', labels: { 'kubernetes.io/hostname': 'n1' }, managedFields },
      spec: { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }], unschedulable: true },
      status: {
        conditions: [{ type: 'Ready', status: 'True' }],
        addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
        capacity: { pods: '110' },
        allocatable: { pods: '110' },
        nodeInfo: {
          architecture: 'amd64',
          bootID: '',
          containerRuntimeVersion: '',
          kernelVersion: '',
          kubeProxyVersion: '',
          kubeletVersion: 'v1.37.2',
          machineID: '',
          operatingSystem: 'linux',
          osImage: '',
          systemUUID: '',
        },
        images: [{ names: ['busybox:1.37.0'], sizeBytes: 4_000_000 }],
        volumesInUse: ['kubernetes.io/csi/x'],
        volumesAttached: [{ name: 'kubernetes.io/csi/x', devicePath: '' }],
        config: {},
      },
    };
    const out = stripNode(node);
    expect(out.metadata).toEqual({ name: 'n1', labels: { 'kubernetes.io/hostname': 'n1' } });
    expect(out.spec).toEqual(node.spec);
    expect(Object.keys(out.status ?? {}).sort()).toEqual([
      'addresses',
      'allocatable',
      'capacity',
      'conditions',
      'nodeInfo',
    ]);
    expect(node.status?.images).toHaveLength(1);
  });

  it('stripPendingPod keeps only claim volumes, tolerations, node name, node selection and phase', () => {
    const pod: V1Pod = {
      metadata: { name: 'web-0', namespace: 'apps', uid: 'p1', resourceVersion: '9', managedFields },
      spec: {
        containers: [{ name: 'web', image: 'nginx', env: [{ name: 'PASSWORD', value: 'hunter2' }] }],
        volumes: [
          { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
          { name: 'config', configMap: { name: 'web-config' } },
        ],
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }],
        nodeSelector: { disk: 'ssd' },
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }],
            },
            preferredDuringSchedulingIgnoredDuringExecution: [
              { weight: 1, preference: { matchExpressions: [{ key: 'gpu', operator: 'Exists' }] } },
            ],
          },
          podAntiAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname' }],
          },
        },
      },
      status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False' }] },
    };
    expect(stripPendingPod(pod)).toEqual({
      metadata: { name: 'web-0', namespace: 'apps', uid: 'p1', resourceVersion: '9' },
      spec: {
        containers: [],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }],
        nodeSelector: { disk: 'ssd' },
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }],
            },
          },
        },
      },
      status: { phase: 'Pending' },
    });
    expect(stripPendingPod({ metadata: { name: 'x' } })).toEqual({ metadata: { name: 'x' }, spec: { containers: [] } });
  });

  it.each<[string, Record<string, string> | undefined, Record<string, string> | undefined]>([
    ['no annotations', undefined, undefined],
    [
      "the ones read are kept, a user's large one is dropped",
      {
        'volume.kubernetes.io/storage-provisioner': 'microk8s.io/hostpath',
        'volume.beta.kubernetes.io/storage-provisioner': 'microk8s.io/hostpath',
        'volume.beta.kubernetes.io/storage-class': 'fast',
        'volume.kubernetes.io/selected-node': 'w1',
        'junk.example.com/blob': 'x'.repeat(65536),
        'kubectl.kubernetes.io/last-applied-configuration': '{}',
      },
      {
        'volume.kubernetes.io/storage-provisioner': 'microk8s.io/hostpath',
        'volume.beta.kubernetes.io/storage-provisioner': 'microk8s.io/hostpath',
        'volume.beta.kubernetes.io/storage-class': 'fast',
        'volume.kubernetes.io/selected-node': 'w1',
      },
    ],
    ['only others: no annotations field at all', { 'a.example.com/b': 'c' }, undefined],
    [
      'an empty selected node is kept as it is',
      { 'volume.kubernetes.io/selected-node': '' },
      { 'volume.kubernetes.io/selected-node': '' },
    ],
  ])('stripClaim: %s', (_n, annotations, kept) => {
    const claim = {
      metadata: { name: 'c', namespace: 'n', uid: 'u', labels: { app: 'x' }, ...(annotations ? { annotations } : {}) },
      spec: { storageClassName: 'fast', resources: { requests: { storage: '1Gi' } } },
    };
    const before = structuredClone(claim);
    const out = stripClaim(claim);
    expect(out.metadata?.annotations).toEqual(kept);
    expect('annotations' in (out.metadata ?? {})).toBe(kept !== undefined);
    expect({ ...out, metadata: { ...out.metadata, annotations: undefined } }).toEqual({
      ...claim,
      metadata: { ...claim.metadata, annotations: undefined },
    });
    expect(claim).toEqual(before);
  });
});
