import { beforeEach, describe, expect, it } from '@jest/globals';
import { helperContainer } from './support/pods.js';
import type { V1Node, V1PersistentVolume, V1Pod, V1StorageClass } from '@kubernetes/client-node';
import { DeleteController } from '../controllers/delete.js';
import { HelperRunner } from '../controllers/helper-runner.js';
import { leftoverReason, sweepLeftoverHelpers } from '../controllers/helper-sweep.js';
import { buildHelperPod } from '../src/domain/helper-pod.js';
import { ProvisionController, ProvisioningError } from '../controllers/provision.js';
import type { ReconcileResult } from '../controllers/ports.js';
import { FakeCache, FakeEvents, FakeKube, FakeMetrics, silentLogger } from './support/fakes.js';

const BASE = '/var/snap/microk8s/common/default-storage';
const NAMES = ['microk8s.io/hostpath'];
const ctx = { logger: silentLogger };

const wffc: V1StorageClass = {
  metadata: { name: 'microk8s-hostpath' },
  provisioner: 'microk8s.io/hostpath',
  volumeBindingMode: 'WaitForFirstConsumer',
  reclaimPolicy: 'Delete',
};

function node(name: string, taints: V1Node['spec'] = {}): V1Node {
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': `${name}-host` } },
    spec: taints,
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

function withStatus(pod: V1Pod, status: V1Pod['status'], nodeName = 'w1'): V1Pod {
  return { ...pod, spec: { ...pod.spec!, nodeName }, ...(status ? { status } : {}) };
}

let cache: FakeCache;
let kube: FakeKube;
let events: FakeEvents;
let metrics: FakeMetrics;
let runner: HelperRunner;
let now = 0;

function setup(timeoutSeconds = 5): void {
  now = 0;
  cache = new FakeCache();
  kube = new FakeKube(cache);
  events = new FakeEvents();
  metrics = new FakeMetrics();
  runner = new HelperRunner({
    cache,
    kube,
    metrics,
    settings: {
      namespace: 'kube-system',
      image: 'busybox:1.37.0',
      priorityClassName: 'system-node-critical',
      timeoutSeconds,
      maxPerNode: 10,
    },
    clock: () => now,
  });
  cache.classes.set('microk8s-hostpath', wffc);
  cache.nodeMap.set('w1', node('w1', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] }));
  cache.claims.set('default/data', {
    metadata: {
      name: 'data',
      namespace: 'default',
      uid: 'u1',
      annotations: {
        'volume.kubernetes.io/storage-provisioner': 'microk8s.io/hostpath',
        'volume.kubernetes.io/selected-node': 'w1',
      },
    },
    spec: {
      storageClassName: 'microk8s-hostpath',
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
    },
  });
  cache.pods.push({
    metadata: { name: 'app', namespace: 'default' },
    spec: {
      containers: [],
      volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'data' } }],
      tolerations: [
        { key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' },
        { key: 'dedicated', operator: 'Exists' },
        { key: 'app', operator: 'Exists' },
      ],
    },
  });
}

/** Makes the fake kubelet finish every new helper with `status`. */
function kubelet(status: V1Pod['status'], nodeName = 'w1'): void {
  kube.onPodCreated = (pod) => {
    const updated = withStatus(pod, status, nodeName);
    cache.helperMap.set(pod.metadata!.name!, updated);
    runner.onHelperEvent(updated, false);
  };
}

/**
 * Runs a reconcile again while a helper is in progress, as the work queue would on the helper's status change or
 * after the requeue delay (the fake clock moves on by that delay): the result of the last run, or its error.
 */
async function settle(
  controller: { reconcile(key: string, c: typeof ctx): Promise<ReconcileResult> },
  key: string,
): Promise<ReconcileResult> {
  for (let i = 0; i < 50; i++) {
    const result = await controller.reconcile(key, ctx);
    if (!result || runner.inProgress + runner.backingOff === 0) return result;
    await new Promise((r) => setImmediate(r));
    now += result.requeueAfterSeconds * 1000;
  }
  throw new Error(`${key} did not settle`);
}

function provision() {
  return new ProvisionController({
    cache,
    kube,
    events,
    metrics,
    helpers: runner,
    clock: () => now,
    settings: {
      provisionerNames: NAMES,
      defaultBaseDirectory: BASE,
      identity: 'm1',
      tolerationPolicy: 'node-taints',
      reclaimPolicyOverride: undefined,
    },
  });
}

describe('ProvisionController', () => {
  beforeEach(() => setup());

  it('a hand-annotated claim with no pod waiting for it gets no helper: after a grace, one ProvisioningFailed', async () => {
    cache.pods = [];
    const controller = provision();
    expect(await settle(controller, 'default/data')).toEqual({ requeueAfterSeconds: 2 });
    now = 11_000;
    expect(await settle(controller, 'default/data')).toEqual({ requeueAfterSeconds: 300 });
    await settle(controller, 'default/data'); // a resync: not said or counted again
    expect(kube.calls).toEqual([]);
    expect(events.recorded).toEqual([
      [
        'data',
        'Warning',
        'ProvisioningFailed',
        'no Pending pod mounts this claim: its selected node w1 is used only for a pod waiting for the claim (the annotation volume.kubernetes.io/selected-node alone is not trusted); create the pod, or remove the annotation',
      ],
    ]);
    expect(metrics.seen).toEqual(['provision microk8s-hostpath failed']);
  });

  it('a claim whose pods do not tolerate the selected node gets no helper and an event naming the taints', async () => {
    cache.nodeMap.set(
      'w1',
      node('w1', {
        taints: [
          { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' },
          { key: 'node-role.kubernetes.io/control-plane', effect: 'NoExecute' },
        ],
      }),
    );
    expect(await settle(provision(), 'default/data')).toEqual({ requeueAfterSeconds: 300 });
    expect(kube.calls).toEqual([['getNode', 'w1']]);
    expect(events.recorded.map((e) => e[3])).toEqual([
      'no pod that mounts this claim tolerates the taints of its selected node w1 (node-role.kubernetes.io/control-plane:NoExecute); no helper pod is started there — add the tolerations to the pod, or let the scheduler choose the node',
    ]);
  });

  it('a claim whose pods select other nodes gets no helper and an event naming the pod and its selector', async () => {
    cache.pods[0]!.spec!.nodeSelector = { 'kubernetes.io/hostname': 'w2' };
    expect(await settle(provision(), 'default/data')).toEqual({ requeueAfterSeconds: 300 });
    expect(kube.calls).toEqual([['getNode', 'w1']]);
    expect(events.recorded.map((e) => e[3])).toEqual([
      `no pod that mounts this claim may run on its selected node w1: pod ${cache.pods[0]!.metadata!.name} has nodeSelector kubernetes.io/hostname=w2 that the node does not match; no helper pod is started there — fix the pod's node selection, or let the scheduler choose the node`,
    ]);
  });

  it('a pod bound to another node does not vouch for the selected node', async () => {
    cache.pods[0]!.spec!.nodeName = 'w2';
    const controller = provision();
    now = 11_000;
    await settle(controller, 'default/data'); // starts its grace now
    now = 22_000;
    await settle(controller, 'default/data');
    expect(kube.calls).toEqual([]);
    expect(events.recorded[0]?.[3]).toMatch(/^no Pending pod mounts this claim/);
  });

  it.each([
    ['deleted', null],
    ['re-created (another uid)', { metadata: { name: 'data', namespace: 'default', uid: 'u2' } }],
  ])('no PV when the claim was %s while its helper ran', async (_n, live) => {
    kube.liveClaims.set('default/data', live);
    kubelet({ phase: 'Succeeded' });
    const controller = provision();
    await settle(controller, 'default/data');
    expect(kube.calls.map((c) => c[0])).toEqual(['getNode', 'createPod', 'deletePod', 'readClaim']);
    expect(cache.pvs.size).toBe(0);
    expect(controller.remembered()).toBe(0);
  });

  it('a PV the API server refuses (policy webhook) becomes ProvisioningFailed with its message, retried', async () => {
    kubelet({ phase: 'Succeeded' });
    kube.createVolume = () =>
      Promise.reject(
        Object.assign(new Error('denied'), { code: 403, body: { message: 'hostPath PVs are not allowed' } }),
      );
    await expect(settle(provision(), 'default/data')).rejects.toThrow(ProvisioningError);
    expect(events.recorded.at(-1)?.slice(2)).toEqual([
      'ProvisioningFailed',
      'the API server refused the PersistentVolume pvc-u1: 403: hostPath PVs are not allowed',
    ]);
    expect(metrics.seen.at(-1)).toBe('provision microk8s-hostpath failed');
  });

  it('forgets a deleted claim', async () => {
    cache.pods = [];
    const controller = provision();
    await settle(controller, 'default/data');
    expect(controller.remembered()).toBe(1);
    controller.forget('u1');
    expect(controller.remembered()).toBe(0);
  });

  it('provisions: live node read, helper tolerating the node taints its consumer tolerates, PV, events', async () => {
    kubelet({ phase: 'Succeeded' });
    let helperSpec: V1Pod | undefined;
    const original = kube.onPodCreated;
    kube.onPodCreated = (pod) => {
      helperSpec = pod;
      original(pod);
    };
    await settle(provision(), 'default/data');
    expect(kube.calls).toEqual([
      ['getNode', 'w1'],
      ['createPod', 'hostpath-create-pvc-u1'],
      ['deletePod', 'hostpath-create-pvc-u1'],
      ['readClaim', 'default/data'],
      ['createVolume', 'pvc-u1'],
    ]);
    // Exactly the node's taints the waiting consumer tolerates; not the consumer's other tolerations.
    expect(helperSpec?.spec?.tolerations).toEqual([
      { key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' },
    ]);
    const pv = cache.pvs.get('pvc-u1');
    expect(pv?.spec?.hostPath?.path).toBe(`${BASE}/default-data-pvc-u1`);
    expect(pv?.spec?.nodeAffinity?.required?.nodeSelectorTerms[0]?.matchExpressions?.[0]?.values).toEqual(['w1-host']);
    expect(events.recorded.map((e) => e[2])).toEqual(['Provisioning', 'ProvisioningSucceeded']);
    expect(metrics.seen).toEqual([
      'helper create succeeded',
      'provision microk8s-hostpath ok',
      'latency microk8s-hostpath',
    ]);
  });

  it('reports a failed helper with its exit code and log tail, creates no PV, deletes the helper and retries', async () => {
    kubelet({
      phase: 'Failed',
      containerStatuses: [helperContainer({ terminated: { exitCode: 1, reason: 'Error' } }, 'b')],
    });
    kube.logs.set('hostpath-create-pvc-u1', "mkdir: can't create directory: Read-only file system\n");
    await expect(settle(provision(), 'default/data')).rejects.toBeInstanceOf(ProvisioningError);
    expect(kube.calls.map((c) => c[0])).toEqual(['getNode', 'createPod', 'readPodLog', 'deletePod']);
    expect(cache.pvs.size).toBe(0);
    expect(events.recorded.at(-1)).toEqual([
      'data',
      'Warning',
      'ProvisioningFailed',
      "helper pod hostpath-create-pvc-u1 on node w1 failed (failed): exited with code 1 (Error): mkdir: can't create directory: Read-only file system",
    ]);
    expect(metrics.seen).toEqual(['helper create failed', 'provision microk8s-hostpath failed']);
  });

  it('fails fast on an image that cannot be pulled, naming the image', async () => {
    kubelet({
      phase: 'Pending',
      containerStatuses: [
        helperContainer({ waiting: { reason: 'ErrImagePull', message: 'not found' } }, 'busybox:does-not-exist'),
      ],
    });
    await expect(settle(provision(), 'default/data')).rejects.toThrow(
      'failed (image_pull): image busybox:does-not-exist cannot be pulled: ErrImagePull: not found',
    );
    expect(kube.calls.at(-1)).toEqual(['deletePod', 'hostpath-create-pvc-u1']);
    expect(metrics.seen[0]).toBe('helper create image_pull');
  });

  it('times out an unschedulable helper with the scheduler message', async () => {
    setup(0.05);
    kube.onPodCreated = (pod) => {
      const updated = {
        ...pod,
        status: {
          phase: 'Pending',
          conditions: [
            { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available' },
          ],
        },
      };
      cache.helperMap.set(pod.metadata!.name!, updated);
      runner.onHelperEvent(updated, false);
    };
    await expect(settle(provision(), 'default/data')).rejects.toThrow(
      'failed (unschedulable): not scheduled within 0.05s: Unschedulable: 0/3 nodes are available',
    );
    expect(cache.helperMap.size).toBe(0);
  });

  it('reports a helper pod the API server refuses (quota, invalid spec) on the claim, as an admission failure', async () => {
    kube.createPod = () =>
      Promise.reject(
        Object.assign(new Error('forbidden'), {
          code: 403,
          body: JSON.stringify({
            code: 403,
            reason: 'Forbidden',
            message: 'exceeded quota: noquota, requested: pods=1',
          }),
        }),
      );
    await expect(settle(provision(), 'default/data')).rejects.toBeInstanceOf(ProvisioningError);
    expect(events.recorded.at(-1)).toEqual([
      'data',
      'Warning',
      'ProvisioningFailed',
      'helper pod hostpath-create-pvc-u1 on node w1 failed (admission): the API server refused the helper pod: 403 Forbidden: exceeded quota: noquota, requested: pods=1',
    ]);
    expect(metrics.seen).toEqual(['helper create admission', 'provision microk8s-hostpath failed']);
  });

  it('hands the claim back to the scheduler when the selected node is gone; no helper', async () => {
    cache.nodeMap.clear();
    expect(await settle(provision(), 'default/data')).toEqual({ requeueAfterSeconds: 30 });
    expect(kube.calls).toEqual([
      ['getNode', 'w1'],
      ['removeClaimAnnotation', 'data volume.kubernetes.io/selected-node'],
    ]);
    expect(events.recorded[0]?.[2]).toBe('ProvisioningFailed');
  });

  it('adopts the helper a previous process left running instead of creating a second one', async () => {
    const leftover: V1Pod = {
      metadata: {
        name: 'hostpath-create-pvc-u1',
        namespace: 'kube-system',
        uid: 'old',
        annotations: { 'hostpath-provisioner.io/path': `${BASE}/default-data-pvc-u1` },
      },
      spec: {
        containers: [],
        nodeName: 'w1',
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['w1'] }] }],
            },
          },
        },
      },
      status: { phase: 'Running' },
    };
    cache.helperMap.set('hostpath-create-pvc-u1', leftover);
    const done = settle(provision(), 'default/data');
    await new Promise((r) => setImmediate(r));
    const finished = { ...leftover, status: { phase: 'Succeeded' } };
    cache.helperMap.set('hostpath-create-pvc-u1', finished);
    runner.onHelperEvent(finished, false);
    await done;
    expect(kube.calls.map((c) => c[0])).toEqual(['getNode', 'deletePod', 'readClaim', 'createVolume']);
    expect(cache.pvs.has('pvc-u1')).toBe(true);
  });

  it('does not run the helper again when the cache has not seen the PV it just created yet', async () => {
    kubelet({ phase: 'Succeeded' });
    const controller = provision();
    await settle(controller, 'default/data');
    cache.pvs.clear(); // a stale cache: our PV is not in it yet
    await settle(controller, 'default/data');
    expect(kube.calls.filter((c) => c[0] === 'createPod')).toHaveLength(1);
    expect(metrics.seen.filter((m) => m.startsWith('provision '))).toEqual(['provision microk8s-hostpath ok']);
  });

  it('does nothing when the PV for the claim already exists', async () => {
    cache.pvs.set('pvc-u1', { metadata: { name: 'pvc-u1' }, spec: { claimRef: { uid: 'u1' } } });
    await settle(provision(), 'default/data');
    expect(kube.calls).toEqual([]);
  });

  it('counts AlreadyExists for our own PV as success', async () => {
    kubelet({ phase: 'Succeeded' });
    const original = kube.createVolume.bind(kube);
    kube.createVolume = (pv) => {
      cache.pvs.set('pvc-u1', pv);
      return original(pv);
    };
    await settle(provision(), 'default/data');
    expect(events.recorded.map((e) => e[2])).toEqual(['Provisioning', 'ProvisioningSucceeded']);
  });

  it('pvDirFromNode: the volume goes to the base directory the node’s annotation gives', async () => {
    cache.classes.set('microk8s-hostpath', { ...wffc, parameters: { pvDir: '/srv/class', pvDirFromNode: 'true' } });
    const annotated = node('w1', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] });
    annotated.metadata!.annotations = { 'hostpath-provisioner.io/pv-dir': '/mnt/nvme' };
    cache.nodeMap.set('w1', annotated);
    kubelet({ phase: 'Succeeded' });
    let helper: V1Pod | undefined;
    const finish = kube.onPodCreated;
    kube.onPodCreated = (pod) => {
      helper = pod;
      finish(pod);
    };
    await settle(provision(), 'default/data');
    expect(helper?.spec?.volumes?.[0]?.hostPath?.path).toBe('/mnt/nvme');
    expect(cache.pvs.get('pvc-u1')?.spec?.hostPath?.path).toBe('/mnt/nvme/default-data-pvc-u1');
  });

  it('pvDirFromNode and an invalid annotation: refused with the node and the annotation named, no helper', async () => {
    cache.classes.set('microk8s-hostpath', { ...wffc, parameters: { pvDirFromNode: 'true' } });
    const annotated = node('w1', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] });
    annotated.metadata!.annotations = { 'hostpath-provisioner.io/pv-dir': '/mnt/nvme/' };
    cache.nodeMap.set('w1', annotated);
    expect(await settle(provision(), 'default/data')).toEqual({ requeueAfterSeconds: 300 });
    expect(kube.calls.map((c) => c[0])).toEqual(['getNode']);
    expect(events.recorded).toEqual([
      [
        'data',
        'Warning',
        'ProvisioningFailed',
        'node w1 has annotation hostpath-provisioner.io/pv-dir "/mnt/nvme/", which is not clean (empty component or trailing slash)',
      ],
    ]);
  });

  it('sharedFileSystem: the PV is pinned to the class’s allowedTopologies, not the node, and marked shared', async () => {
    const topology = [{ matchLabelExpressions: [{ key: 'example.com/nfs', values: ['yes'] }] }];
    cache.classes.set('microk8s-hostpath', {
      ...wffc,
      parameters: { pvDir: '/mnt/nfs', sharedFileSystem: 'true' },
      allowedTopologies: topology,
    });
    kubelet({ phase: 'Succeeded' });
    await settle(provision(), 'default/data');
    const pv = cache.pvs.get('pvc-u1');
    expect(pv?.spec?.hostPath?.path).toBe('/mnt/nfs/default-data-pvc-u1');
    expect(pv?.spec?.nodeAffinity?.required?.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: 'example.com/nfs', operator: 'In', values: ['yes'] }] },
    ]);
    expect(pv?.metadata?.annotations?.['hostpath-provisioner.io/shared-file-system']).toBe('true');
  });

  it('Immediate and pvDirFromNode: a node whose annotation is invalid is passed over while another is left', async () => {
    const immediate = { ...wffc, volumeBindingMode: 'Immediate', parameters: { pvDirFromNode: 'true' } };
    cache.classes.set('microk8s-hostpath', immediate);
    const claim = cache.claims.get('default/data')!;
    delete claim.metadata!.annotations!['volume.kubernetes.io/selected-node'];
    const bad = node('m1'); // the provisioner's own node: preferred, but its directory is invalid
    bad.metadata!.annotations = { 'hostpath-provisioner.io/pv-dir': 'relative/dir' };
    cache.nodeMap.set('m1', bad);
    cache.nodeMap.set('w2', node('w2'));
    cache.nodeMap.delete('w1');
    kubelet({ phase: 'Succeeded' }, 'w2');
    await settle(provision(), 'default/data');
    expect(
      cache.pvs.get('pvc-u1')?.spec?.nodeAffinity?.required?.nodeSelectorTerms[0]?.matchExpressions?.[0]?.values,
    ).toEqual(['w2-host']);
  });

  it('refuses a block claim with an event, and touches nothing', async () => {
    const claim = cache.claims.get('default/data')!;
    claim.spec!.volumeMode = 'Block';
    await settle(provision(), 'default/data');
    expect(kube.calls).toEqual([]);
    expect(events.recorded).toEqual([
      [
        'data',
        'Warning',
        'ProvisioningFailed',
        'block volumes (volumeMode: Block) are not supported: hostPath volumes are directories',
      ],
    ]);
  });

  it('says a refusal again when its Event was dropped (queue full), and counts it once', async () => {
    const claim = cache.claims.get('default/data')!;
    claim.spec!.volumeMode = 'Block';
    const controller = provision();
    events.accepting = false;
    expect(await controller.reconcile('default/data', ctx)).toEqual({ requeueAfterSeconds: 30 });
    expect(events.recorded).toEqual([]);
    events.accepting = true;
    now += 30_000;
    expect(await controller.reconcile('default/data', ctx)).toBeUndefined();
    expect(await controller.reconcile('default/data', ctx)).toBeUndefined();
    expect(events.recorded.map((e) => e[2])).toEqual(['ProvisioningFailed']);
    expect(metrics.seen.filter((m) => m.startsWith('provision '))).toEqual(['provision microk8s-hostpath failed']);
    expect(kube.calls).toEqual([]);
  });

  it('a refusal that read the node live, its Event dropped: said again at the 300 s re-check, not every 30 s', async () => {
    cache.nodeMap.set(
      'w1',
      node('w1', { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoExecute' }] }),
    );
    const controller = provision();
    events.accepting = false;
    expect(await settle(controller, 'default/data')).toEqual({ requeueAfterSeconds: 300 });
    expect(kube.calls).toEqual([['getNode', 'w1']]);
    expect(events.recorded).toEqual([]);
    events.accepting = true;
    now += 300_000;
    expect(await controller.reconcile('default/data', ctx)).toEqual({ requeueAfterSeconds: 300 });
    expect(events.recorded.map((e) => e[2])).toEqual(['ProvisioningFailed']);
    expect(metrics.seen.filter((m) => m.startsWith('provision '))).toEqual(['provision microk8s-hostpath failed']);
  });

  it('says when Immediate binding had to use a tainted node', async () => {
    cache.classes.set('microk8s-hostpath', { ...wffc, volumeBindingMode: 'Immediate' });
    delete cache.claims.get('default/data')!.metadata!.annotations!['volume.kubernetes.io/selected-node'];
    kubelet({ phase: 'Succeeded' });
    await settle(provision(), 'default/data');
    expect(events.recorded[0]?.slice(2)).toEqual([
      'NodeChosen',
      'Immediate binding: provisioning on node w1 (kubernetes.io/hostname=w1-host); no untainted node fits, so only pods tolerating dedicated=gpu:NoSchedule can use the volume',
    ]);
  });

  it('Immediate binding: after a helper failed on a node, the next attempt goes elsewhere and says which node it skipped', async () => {
    cache.classes.set('microk8s-hostpath', { ...wffc, volumeBindingMode: 'Immediate' });
    delete cache.claims.get('default/data')!.metadata!.annotations!['volume.kubernetes.io/selected-node'];
    cache.nodeMap.set('m1', node('m1'));
    cache.nodeMap.set('w2', node('w2'));
    const controller = provision();
    kubelet(
      { phase: 'Failed', containerStatuses: [helperContainer({ terminated: { exitCode: 1, reason: 'Error' } })] },
      'm1',
    );
    await expect(settle(controller, 'default/data')).rejects.toThrow(ProvisioningError);
    expect(events.recorded[0]?.[3]).toMatch(/^Immediate binding: provisioning on node m1 /);
    events.recorded.length = 0;
    kubelet({ phase: 'Succeeded' }, 'w2');
    await settle(controller, 'default/data');
    expect(events.recorded[0]?.slice(2)).toEqual([
      'NodeChosen',
      'Immediate binding: provisioning on node w2 (kubernetes.io/hostname=w2-host); skipped: w1 (tainted); m1 (a helper failed there recently)',
    ]);
    expect(
      cache.pvs.get('pvc-u1')?.spec?.nodeAffinity?.required?.nodeSelectorTerms[0]?.matchExpressions?.[0]?.values,
    ).toEqual(['w2-host']);
  });

  it('chooses a node for Immediate binding and says so', async () => {
    cache.classes.set('microk8s-hostpath', { ...wffc, volumeBindingMode: 'Immediate' });
    delete cache.claims.get('default/data')!.metadata!.annotations!['volume.kubernetes.io/selected-node'];
    cache.nodeMap.set('m1', node('m1'));
    kubelet({ phase: 'Succeeded' }, 'm1');
    await settle(provision(), 'default/data');
    expect(events.recorded.map((e) => e[2])).toEqual(['NodeChosen', 'Provisioning', 'ProvisioningSucceeded']);
    expect(
      cache.pvs.get('pvc-u1')?.spec?.nodeAffinity?.required?.nodeSelectorTerms[0]?.matchExpressions?.[0]?.values,
    ).toEqual(['m1-host']);
  });
});

function released(
  patch: Partial<V1PersistentVolume['spec']> = {},
  path = `${BASE}/default-data-pvc-u1`,
): V1PersistentVolume {
  return {
    metadata: {
      name: 'pvc-u1',
      uid: 'pv-uid',
      annotations: {
        'pv.kubernetes.io/provisioned-by': 'microk8s.io/hostpath',
        hostPathProvisionerIdentity: 'gone-node',
      },
      finalizers: ['external-provisioner.volume.kubernetes.io/finalizer'],
    },
    spec: {
      storageClassName: 'microk8s-hostpath',
      persistentVolumeReclaimPolicy: 'Delete',
      hostPath: { path },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['w1-host'] }] },
          ],
        },
      },
      ...patch,
    },
    status: { phase: 'Released' },
  };
}

function deleter(nodeGonePolicy: 'keep' | 'delete' = 'keep') {
  return new DeleteController({
    cache,
    kube,
    events,
    metrics,
    helpers: runner,
    clock: () => now,
    settings: { provisionerNames: NAMES, defaultBaseDirectory: BASE, tolerationPolicy: 'node-taints', nodeGonePolicy },
  });
}

describe('DeleteController', () => {
  beforeEach(() => setup());

  it('removes the directory with a helper tolerating the node taints as they are now, then the PV and finalizer', async () => {
    cache.pvs.set('pvc-u1', released());
    cache.nodeMap.set(
      'w1',
      node('w1', { unschedulable: true, taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }] }),
    );
    let helper: V1Pod | undefined;
    kubelet({ phase: 'Succeeded' });
    const finish = kube.onPodCreated;
    kube.onPodCreated = (pod) => {
      helper = pod;
      finish(pod);
    };
    await settle(deleter(), 'pvc-u1');
    expect(helper?.spec?.tolerations).toEqual([
      { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    expect(helper?.spec?.containers[0]?.command?.[4]).toBe('/hostpath-base/default-data-pvc-u1');
    expect(helper?.spec?.volumes?.[0]?.hostPath?.path).toBe(BASE);
    expect(kube.calls).toEqual([
      ['readVolume', 'pvc-u1'], // decided again on the live PV before the helper is made; the node is cached
      ['createPod', 'hostpath-delete-pvc-u1'],
      ['deletePod', 'hostpath-delete-pvc-u1'],
      ['deleteVolume', 'pvc-u1'],
      ['removeVolumeFinalizer', 'pvc-u1 external-provisioner.volume.kubernetes.io/finalizer'],
    ]);
    expect(metrics.seen).toEqual(['helper delete succeeded', 'delete microk8s-hostpath ok']);
  });

  it('does not clean up twice when the cache still shows the PV it just deleted', async () => {
    cache.pvs.set('pvc-u1', released());
    kubelet({ phase: 'Succeeded' });
    const controller = deleter();
    await settle(controller, 'pvc-u1');
    await settle(controller, 'pvc-u1'); // the cache still holds the old PV
    expect(kube.calls.filter((c) => c[0] === 'createPod')).toHaveLength(1);
    expect(metrics.seen.filter((m) => m.startsWith('delete '))).toEqual(['delete microk8s-hostpath ok']);
  });

  it('keeps the PV when rm fails, with VolumeFailedDelete carrying stderr, and retries', async () => {
    cache.pvs.set('pvc-u1', released());
    kubelet({
      phase: 'Failed',
      containerStatuses: [helperContainer({ terminated: { exitCode: 1 } }, 'b')],
    });
    kube.logs.set('hostpath-delete-pvc-u1', "rm: can't remove 'x': Operation not permitted");
    await expect(settle(deleter(), 'pvc-u1')).rejects.toThrow("rm: can't remove 'x': Operation not permitted");
    expect(kube.calls.map((c) => c[0])).not.toContain('deleteVolume');
    expect(events.recorded[0]?.[2]).toBe('VolumeFailedDelete');
    expect(metrics.seen).toEqual(['helper delete failed', 'delete microk8s-hostpath failed']);
  });

  it.each([
    ['outside every base', '/srv/important'],
    ['a base itself', BASE],
    ['escaping with ..', `${BASE}/../../etc/pvc-u1`],
  ])('refuses a path %s: no helper, data untouched, Warning', async (_n, path) => {
    cache.pvs.set('pvc-u1', released({}, path));
    expect(await settle(deleter(), 'pvc-u1')).toEqual({ requeueAfterSeconds: 300 });
    expect(kube.calls).toEqual([['readVolume', 'pvc-u1']]);
    expect(events.recorded[0]?.slice(0, 3)).toEqual(['pvc-u1', 'Warning', 'VolumeFailedDelete']);
    expect(events.recorded[0]?.[3]).toMatch(
      /^refusing to remove the volume's directory: .*; the data is left in place$/,
    );
  });

  it('refuses a hand-made PV named like the end of a live volume directory (another PV points there)', async () => {
    const live = `${BASE}/t1-squat-pvc-50d61bcb-e344-45e2-8723-de2501fd91c1`;
    const victim = released({}, live);
    victim.metadata!.name = 'pvc-50d61bcb-e344-45e2-8723-de2501fd91c1';
    cache.pvs.set(victim.metadata!.name, { ...victim, status: { phase: 'Bound' } });
    const squatter = released({ claimRef: { namespace: 't1', name: 'ghost', uid: '0' } }, live);
    squatter.metadata!.name = 'de2501fd91c1';
    cache.pvs.set('de2501fd91c1', squatter);
    expect(await settle(deleter(), 'de2501fd91c1')).toEqual({ requeueAfterSeconds: 300 });
    expect(kube.calls.map((c) => c[0])).toEqual(['readVolume']);
    expect(events.recorded[0]?.[3]).toBe(
      `refusing to remove the volume's directory: another PersistentVolume (pvc-50d61bcb-e344-45e2-8723-de2501fd91c1) points at the same directory ${live}; the data is left in place`,
    );
  });

  it('refuses a directory another PV points at too', async () => {
    cache.pvs.set('pvc-u1', released());
    const twin = released({}, `${BASE}/default-data-pvc-u1`);
    twin.metadata!.name = 'pvc-twin';
    cache.pvs.set('pvc-twin', { ...twin, status: { phase: 'Bound' } });
    expect(await settle(deleter(), 'pvc-u1')).toEqual({ requeueAfterSeconds: 300 });
    expect(events.recorded[0]?.[3]).toMatch(/another PersistentVolume \(pvc-twin\) points at the same directory/);
    expect(kube.calls.map((c) => c[0])).not.toContain('createPod');
  });

  it('accepts a pvDir of a class of ours as a base directory', async () => {
    cache.classes.set('usb', {
      metadata: { name: 'usb' },
      provisioner: 'microk8s.io/hostpath',
      parameters: { pvDir: '/mnt/usb' },
    });
    cache.pvs.set('pvc-u1', released({}, '/mnt/usb/default-data-pvc-u1'));
    kubelet({ phase: 'Succeeded' });
    await settle(deleter(), 'pvc-u1');
    expect(kube.calls.map((c) => c[0])).toContain('deleteVolume');
  });

  it('accepts the base directory of the volume’s node (its pv-dir annotation), and no other node’s', async () => {
    cache.pvs.set('pvc-u1', released({}, '/mnt/nvme/default-data-pvc-u1'));
    const other = node('w2');
    other.metadata!.annotations = { 'hostpath-provisioner.io/pv-dir': '/mnt/nvme' };
    cache.nodeMap.set('w2', other);
    await settle(deleter(), 'pvc-u1');
    expect(kube.calls.map((c) => c[0])).toEqual(['readVolume']);
    expect(events.recorded[0]?.[3]).toMatch(
      /^refusing to remove the volume's directory: path \/mnt\/nvme\/default-data-pvc-u1 is not directly under a known base directory/,
    );
    const own = cache.nodeMap.get('w1')!;
    own.metadata!.annotations = { 'hostpath-provisioner.io/pv-dir': '/mnt/nvme' };
    kubelet({ phase: 'Succeeded' });
    await settle(deleter(), 'pvc-u1');
    expect(kube.calls.map((c) => c[0])).toEqual([
      'readVolume',
      'readVolume',
      'createPod',
      'deletePod',
      'deleteVolume',
      'removeVolumeFinalizer',
    ]);
  });

  describe('a volume on a shared file system', () => {
    /** A Released shared PV under the class's pvDir, pinned to nodes labelled example.com/nfs=yes. */
    function sharedVolume(): V1PersistentVolume {
      const pv = released({}, '/mnt/nfs/default-data-pvc-u1');
      pv.metadata!.annotations!['hostpath-provisioner.io/shared-file-system'] = 'true';
      pv.spec!.nodeAffinity = {
        required: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'example.com/nfs', operator: 'In', values: ['yes'] }] }],
        },
      };
      return pv;
    }
    beforeEach(() => {
      cache.classes.set('nfs', {
        metadata: { name: 'nfs' },
        provisioner: 'microk8s.io/hostpath',
        parameters: { pvDir: '/mnt/nfs', sharedFileSystem: 'true' },
      });
    });

    it('is removed once, by a helper on a node that mounts it (untainted first), whatever node made it', async () => {
      cache.pvs.set('pvc-u1', sharedVolume());
      const labelled = (n: V1Node): V1Node => ({
        ...n,
        metadata: { ...n.metadata, labels: { ...n.metadata!.labels, 'example.com/nfs': 'yes' } },
      });
      cache.nodeMap.set('w1', labelled(cache.nodeMap.get('w1')!)); // tainted
      cache.nodeMap.set('w2', labelled(node('w2')));
      cache.nodeMap.set('w3', node('w3')); // does not mount it
      let helper: V1Pod | undefined;
      kubelet({ phase: 'Succeeded' }, 'w2');
      const finish = kube.onPodCreated;
      kube.onPodCreated = (pod) => {
        helper = pod;
        finish(pod);
      };
      await settle(deleter(), 'pvc-u1');
      expect(helper?.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution).toEqual({
        nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['w2'] }] }],
      });
      // The mount must be there: never created on a node's own disk.
      expect(helper?.spec?.volumes?.[0]?.hostPath).toEqual({ path: '/mnt/nfs', type: 'Directory' });
      expect(kube.calls.map((c) => c[0])).toEqual([
        'readVolume',
        'createPod',
        'deletePod',
        'deleteVolume',
        'removeVolumeFinalizer',
      ]);
    });

    it('a helper that failed on one node (its mount missing): the next attempt goes to another node', async () => {
      cache.pvs.set('pvc-u1', sharedVolume());
      const labelled = (n: V1Node): V1Node => ({
        ...n,
        metadata: { ...n.metadata, labels: { ...n.metadata!.labels, 'example.com/nfs': 'yes' } },
      });
      cache.nodeMap.set('w1', labelled(node('w1')));
      cache.nodeMap.set('w2', labelled(node('w2', { unschedulable: true })));
      const nodesTried: string[] = [];
      kube.onPodCreated = (pod) => {
        const on =
          pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms[0]
            ?.matchFields?.[0]?.values?.[0] ?? '';
        nodesTried.push(on);
        const status: V1Pod['status'] =
          on === 'w1'
            ? {
                phase: 'Failed',
                containerStatuses: [helperContainer({ terminated: { exitCode: 1, reason: 'Error' } })],
              }
            : { phase: 'Succeeded' };
        const updated = withStatus(pod, status, on);
        cache.helperMap.set(pod.metadata!.name!, updated);
        runner.onHelperEvent(updated, false);
      };
      const controller = deleter();
      await expect(settle(controller, 'pvc-u1')).rejects.toThrow(/on node w1 could not remove/);
      now += 60_000; // past the helper's backoff, well within the 10 min a failed node is passed over
      await settle(controller, 'pvc-u1');
      expect(nodesTried).toEqual(['w1', 'w2']); // the cordoned node, since the free one failed
      expect(kube.calls.map((c) => c[0])).toContain('deleteVolume');
    });

    it('no node mounts it now: kept, a Warning, a slow re-check; never node-gone-policy', async () => {
      cache.pvs.set('pvc-u1', sharedVolume());
      expect(await settle(deleter('delete'), 'pvc-u1')).toEqual({ requeueAfterSeconds: 300 });
      expect(kube.calls.map((c) => c[0])).toEqual(['readVolume']);
      expect(events.recorded[0]?.[3]).toBe(
        'no Ready Linux node matches the node affinity of this volume on a shared file system: the data in /mnt/nfs/default-data-pvc-u1 is kept and re-checked',
      );
    });
  });

  it('node gone, policy keep: no helper, Warning, slow re-check', async () => {
    cache.pvs.set('pvc-u1', released());
    cache.nodeMap.clear();
    expect(await settle(deleter(), 'pvc-u1')).toEqual({ requeueAfterSeconds: 300 });
    expect(kube.calls).toEqual([
      ['readVolume', 'pvc-u1'],
      ['findNode', 'w1-host'],
    ]);
    expect(events.recorded[0]?.[3]).toBe(
      `node w1-host no longer exists: the data in ${BASE}/default-data-pvc-u1 cannot be removed; the PV is kept and re-checked (node-gone-policy=keep)`,
    );
  });

  it('node gone, policy delete: no helper, the PV object goes', async () => {
    cache.pvs.set('pvc-u1', released());
    cache.nodeMap.clear();
    await settle(deleter('delete'), 'pvc-u1');
    expect(kube.calls.map((c) => c[0])).toEqual(['readVolume', 'findNode', 'deleteVolume', 'removeVolumeFinalizer']);
  });

  it('cleans an old addon PV without node affinity on the node its hostPathProvisionerIdentity names (L9)', async () => {
    const old = released();
    delete old.spec!.nodeAffinity;
    old.metadata!.annotations!.hostPathProvisionerIdentity = 'w1';
    cache.pvs.set('pvc-u1', old);
    cache.nodeMap.set('w1', node('w1'));
    let helper: V1Pod | undefined;
    kubelet({ phase: 'Succeeded' });
    const finish = kube.onPodCreated;
    kube.onPodCreated = (pod) => {
      helper = pod;
      finish(pod);
    };
    await settle(deleter(), 'pvc-u1');
    expect(helper?.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution).toEqual({
      nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['w1'] }] }],
    });
    expect(kube.calls.map((c) => c.join(' '))).toEqual([
      'readVolume pvc-u1',
      'createPod hostpath-delete-pvc-u1',
      'deletePod hostpath-delete-pvc-u1',
      'deleteVolume pvc-u1',
      'removeVolumeFinalizer pvc-u1 external-provisioner.volume.kubernetes.io/finalizer',
    ]);
  });

  it('an old addon PV whose identity node is gone is kept and re-checked', async () => {
    const old = released();
    delete old.spec!.nodeAffinity;
    cache.pvs.set('pvc-u1', old);
    expect(await settle(deleter(), 'pvc-u1')).toEqual({ requeueAfterSeconds: 300 });
    expect(kube.calls.map((c) => c[0])).toEqual(['readVolume', 'getNode']);
    expect(events.recorded[0]?.[3]).toMatch(/^node gone-node no longer exists: the data in /);
  });

  it('never runs a helper for Retain', async () => {
    cache.pvs.set('pvc-u1', released({ persistentVolumeReclaimPolicy: 'Retain' }));
    await settle(deleter(), 'pvc-u1');
    expect(kube.calls).toEqual([
      ['removeVolumeFinalizer', 'pvc-u1 external-provisioner.volume.kubernetes.io/finalizer'],
    ]);
  });
  it('decides again on the live PV: a stale cache saying Released + Delete runs no helper once the PV is Retain', async () => {
    cache.pvs.set('pvc-u1', released());
    kube.liveVolumes.set('pvc-u1', released({ persistentVolumeReclaimPolicy: 'Retain' }));
    kubelet({ phase: 'Succeeded' });
    await settle(deleter(), 'pvc-u1');
    expect(kube.calls).toEqual([
      ['readVolume', 'pvc-u1'],
      ['removeVolumeFinalizer', 'pvc-u1 external-provisioner.volume.kubernetes.io/finalizer'],
    ]);
  });

  it('a PV gone or re-created under its name (another uid) runs no helper', async () => {
    cache.pvs.set('pvc-u1', released());
    kube.liveVolumes.set('pvc-u1', null);
    await settle(deleter(), 'pvc-u1');
    const recreated = released();
    kube.liveVolumes.set('pvc-u1', { ...recreated, metadata: { ...recreated.metadata, uid: 'other' } });
    await settle(deleter(), 'pvc-u1');
    expect(kube.calls).toEqual([
      ['readVolume', 'pvc-u1'],
      ['readVolume', 'pvc-u1'],
    ]);
  });

  it.each([
    ['switched to Retain', released({ persistentVolumeReclaimPolicy: 'Retain' }), 'removeVolumeFinalizer'],
    ['re-bound', { ...released(), status: { phase: 'Bound' } }, undefined],
  ])('removes a delete helper left by an earlier run when the PV was %s', async (_n, pv, write) => {
    cache.pvs.set('pvc-u1', pv);
    cache.helperMap.set('hostpath-delete-pvc-u1', {
      metadata: { name: 'hostpath-delete-pvc-u1', uid: 'old-helper' },
      status: { phase: 'Pending' },
    });
    await settle(deleter(), 'pvc-u1');
    expect(kube.calls.map((c) => c[0])).toEqual(['deletePod', ...(write ? [write] : [])]);
    expect(cache.helperMap.has('hostpath-delete-pvc-u1')).toBe(false);
  });

  it('removes the delete helper as soon as the informer shows the PV no longer asks for deletion', async () => {
    const controller = deleter();
    cache.helperMap.set('hostpath-delete-pvc-u1', { metadata: { name: 'hostpath-delete-pvc-u1', uid: 'h' } });
    await controller.onVolumeChanged(released(), silentLogger); // still Released + Delete: kept
    expect(kube.calls).toEqual([]);
    await controller.onVolumeChanged(released({ persistentVolumeReclaimPolicy: 'Retain' }), silentLogger);
    expect(kube.calls).toEqual([['deletePod', 'hostpath-delete-pvc-u1']]);
  });

  it('does not adopt a delete helper made for another PV object of the same name', async () => {
    cache.pvs.set('pvc-u1', released());
    const stale = buildHelperPod({
      operation: 'delete',
      volumeName: 'pvc-u1',
      namespace: 'kube-system',
      nodeName: 'w1',
      baseDirectory: BASE,
      directoryName: 'default-data-pvc-u1',
      image: 'busybox:1.37.0',
      tolerations: [],
      priorityClassName: '',
      activeDeadlineSeconds: 5,
      volumeUid: 'an-older-pv',
    });
    cache.helperMap.set('hostpath-delete-pvc-u1', { ...stale, metadata: { ...stale.metadata, uid: 'old' } });
    kubelet({ phase: 'Succeeded' });
    const controller = deleter();
    await settle(controller, 'pvc-u1'); // deletes the stale one
    await settle(controller, 'pvc-u1'); // makes its own
    expect(kube.calls.slice(1, 4)).toEqual([
      ['deletePod', 'hostpath-delete-pvc-u1'],
      ['readVolume', 'pvc-u1'],
      ['createPod', 'hostpath-delete-pvc-u1'],
    ]);
  });
});

describe('sweepLeftoverHelpers', () => {
  beforeEach(() => setup());

  it('deletes helpers whose claim or volume is gone, keeps the rest', async () => {
    const helper = (name: string, op: string, ann: Record<string, string>): V1Pod => ({
      metadata: { name, labels: { 'hostpath-provisioner.io/operation': op }, annotations: ann },
    });
    cache.helperMap.set(
      'a',
      helper('a', 'create', {
        'hostpath-provisioner.io/volume-name': 'pvc-x',
        'hostpath-provisioner.io/claim': 'default/gone',
        'hostpath-provisioner.io/claim-uid': 'x',
      }),
    );
    cache.helperMap.set(
      'b',
      helper('b', 'create', {
        'hostpath-provisioner.io/volume-name': 'pvc-u1',
        'hostpath-provisioner.io/claim': 'default/data',
        'hostpath-provisioner.io/claim-uid': 'u1',
      }),
    );
    cache.helperMap.set('c', helper('c', 'delete', { 'hostpath-provisioner.io/volume-name': 'pvc-gone' }));
    const deleted = await sweepLeftoverHelpers({
      cache,
      kube,
      runner,
      namespace: 'kube-system',
      provisionerNames: ['microk8s.io/hostpath'],
      defaultBaseDirectory: BASE,
      logger: silentLogger,
    });
    expect(deleted).toEqual(['a', 'c']);
  });

  it.each([
    ['Released, Delete, same uid and path', released(), 'pv-uid', `${BASE}/default-data-pvc-u1`, undefined],
    [
      'switched to Retain',
      released({ persistentVolumeReclaimPolicy: 'Retain' }),
      'pv-uid',
      `${BASE}/default-data-pvc-u1`,
      'volume pvc-u1 no longer asks for deletion',
    ],
    [
      're-bound',
      { ...released(), status: { phase: 'Bound' } },
      'pv-uid',
      `${BASE}/default-data-pvc-u1`,
      'volume pvc-u1 no longer asks for deletion',
    ],
    [
      'another PV object of that name',
      released(),
      'older-uid',
      `${BASE}/default-data-pvc-u1`,
      'it was made for another object named pvc-u1',
    ],
    [
      'a helper without a PV uid (older version)',
      released(),
      undefined,
      `${BASE}/default-data-pvc-u1`,
      'it was made for another object named pvc-u1',
    ],
    ['another path', released(), 'pv-uid', `${BASE}/other-pvc-u1`, 'volume pvc-u1 points at another path now'],
  ])('a delete helper when the PV is %s', (_n, pv, volumeUid, path, reason) => {
    cache.pvs.set('pvc-u1', pv);
    const annotations: Record<string, string> = {
      'hostpath-provisioner.io/volume-name': 'pvc-u1',
      'hostpath-provisioner.io/path': path,
    };
    if (volumeUid) annotations['hostpath-provisioner.io/volume-uid'] = volumeUid;
    const helper: V1Pod = { metadata: { labels: { 'hostpath-provisioner.io/operation': 'delete' }, annotations } };
    expect(leftoverReason(helper, cache, ['microk8s.io/hostpath'], BASE)).toBe(reason);
  });

  const createHelperOfData: V1Pod = {
    metadata: {
      labels: { 'hostpath-provisioner.io/operation': 'create' },
      annotations: {
        'hostpath-provisioner.io/volume-name': 'pvc-u1',
        'hostpath-provisioner.io/claim': 'default/data',
        'hostpath-provisioner.io/claim-uid': 'u1',
      },
    },
  };

  it('a create helper of a claim being deleted is a leftover', () => {
    cache.claims.set('default/data', {
      metadata: { name: 'data', namespace: 'default', uid: 'u1', deletionTimestamp: new Date(0) },
    });
    expect(leftoverReason(createHelperOfData, cache, ['microk8s.io/hostpath'], BASE)).toBe(
      'claim default/data is being deleted',
    );
  });

  it.each([
    ['still provisionable', (): void => undefined, undefined],
    [
      'its class was deleted',
      (): void => void cache.classes.delete('microk8s-hostpath'),
      'claim default/data is not ours to provision now: StorageClass microk8s-hostpath not found',
    ],
    [
      'its selected node was removed for rescheduling',
      (): void => {
        const claim = cache.claims.get('default/data');
        delete claim?.metadata?.annotations?.['volume.kubernetes.io/selected-node'];
      },
      'claim default/data is not ours to provision now: waiting for a consumer pod to be scheduled (WaitForFirstConsumer)',
    ],
    [
      'it is refused (Block volume mode)',
      (): void => {
        const claim = cache.claims.get('default/data');
        if (claim) claim.spec = { ...claim.spec, volumeMode: 'Block' };
      },
      'claim default/data is refused: block volumes (volumeMode: Block) are not supported: hostPath volumes are directories',
    ],
  ])('a create helper of a claim that is %s (L10)', (_n, change, reason) => {
    change();
    expect(leftoverReason(createHelperOfData, cache, ['microk8s.io/hostpath'], BASE)).toBe(reason);
  });
});

describe('HelperRunner.step', () => {
  beforeEach(() => setup());

  const request = (volumeName: string) => ({
    operation: 'create' as const,
    volumeName,
    node: node('w1'),
    baseDirectory: BASE,
    directoryName: `default-x-${volumeName}`,
    tolerations: [],
    claim: { key: `default/${volumeName}`, uid: volumeName },
  });
  const limited = () =>
    new HelperRunner({
      cache,
      kube,
      metrics,
      settings: {
        namespace: 'kube-system',
        image: 'busybox',
        priorityClassName: '',
        timeoutSeconds: 60,
        maxPerNode: 1,
      },
      clock: () => now,
    });

  it('returns at once while the helper waits, and holds at most maxPerNode helpers on a node', async () => {
    const r = limited();
    expect(await r.step(request('pvc-a'), silentLogger)).toEqual({
      done: false,
      podName: 'hostpath-create-pvc-a',
      requeueAfterSeconds: 60,
      message: 'created',
    });
    expect(await r.step(request('pvc-b'), silentLogger)).toEqual({
      done: false,
      podName: 'hostpath-create-pvc-b',
      requeueAfterSeconds: 5,
      message: 'node w1 already has 1 helper pods in progress (--max-helpers-per-node); waiting for one to finish',
    });
    expect(kube.calls).toEqual([['createPod', 'hostpath-create-pvc-a']]);
    expect(r.activeOnNode('w1')).toBe(1);
  });

  it('a failed helper is made again only after its backoff, whatever brings its owner back', async () => {
    kubelet({ phase: 'Failed', containerStatuses: [helperContainer({ terminated: { exitCode: 1 } })] });
    const r = limited();
    await r.step(request('pvc-a'), silentLogger); // created
    await new Promise((resolve) => setImmediate(resolve)); // the fake kubelet fails it
    const failed = await r.step(request('pvc-a'), silentLogger);
    expect(failed.done && !failed.result.ok).toBe(true);
    // An event (a pod update, a resync) brings the claim back at once: no new helper yet.
    const early = await r.step(request('pvc-a'), silentLogger);
    expect(early).toMatchObject({ done: false, message: 'retrying after 1 failed helper pod(s), with backoff' });
    expect(kube.calls.filter((c) => c[0] === 'createPod')).toHaveLength(1);
    now += 60_000;
    await r.step(request('pvc-a'), silentLogger);
    expect(kube.calls.filter((c) => c[0] === 'createPod')).toHaveLength(2);
  });

  it('two reconciles at once cannot both pass the per-node limit', async () => {
    const r = limited();
    const [a, b] = await Promise.all([r.step(request('pvc-a'), silentLogger), r.step(request('pvc-b'), silentLogger)]);
    expect([a.done, b.done]).toEqual([false, false]);
    expect(kube.calls.filter((c) => c[0] === 'createPod')).toHaveLength(1);
    expect(r.activeOnNode('w1')).toBe(1);
  });

  it('reports a pod of someone else squatting on the helper name instead of waiting for it', async () => {
    kube.createPod = () =>
      Promise.resolve({ created: false, object: { metadata: { name: 'hostpath-create-pvc-a', labels: {} } } });
    const step = await runner.step(request('pvc-a'), silentLogger);
    expect(step).toEqual({
      done: true,
      result: {
        ok: false,
        podName: 'hostpath-create-pvc-a',
        reason: 'admission',
        message:
          'a pod named hostpath-create-pvc-a that is not a helper of ours exists in namespace kube-system; delete it',
      },
    });
  });

  it('stops tracking a helper no reconcile asks for any more, freeing its slot', async () => {
    const r = limited();
    await r.step(request('pvc-a'), silentLogger);
    now += 100_000;
    expect(r.dropStale(60)).toEqual(['hostpath-create-pvc-a']);
    expect(r.activeOnNode('w1')).toBe(0);
  });
});

describe('waiting for a helper slot costs no API request', () => {
  beforeEach(() => {
    setup(60);
    runner = new HelperRunner({
      cache,
      kube,
      metrics,
      settings: {
        namespace: 'kube-system',
        image: 'busybox',
        priorityClassName: '',
        timeoutSeconds: 60,
        maxPerNode: 1,
      },
      clock: () => now,
    });
  });

  /** Takes node w1's only slot with the create helper of another claim (left Pending: nothing finishes it). */
  async function fillNode(): Promise<void> {
    const other = {
      operation: 'create' as const,
      volumeName: 'pvc-other',
      node: node('w1'),
      baseDirectory: BASE,
      directoryName: 'default-other-pvc-other',
      tolerations: [],
    };
    await runner.step(other, silentLogger);
    kube.calls.length = 0;
  }

  const full = 'node w1 already has 1 helper pods in progress (--max-helpers-per-node); waiting for one to finish';

  it.each([
    [
      'a full node',
      true,
      false,
      false,
      { done: false, podName: 'hostpath-create-pvc-x', requeueAfterSeconds: 5, message: full },
    ],
    ['a node with a free slot', false, false, false, undefined],
    ['a helper of that name in the cache (adopt it)', true, true, false, undefined],
    ['a helper of that name already in progress', true, false, true, undefined],
  ])('waitsBeforeCreate with %s', async (_n, fill, inCache, tracked, expected) => {
    if (tracked) {
      await runner.step(
        {
          operation: 'create',
          volumeName: 'pvc-x',
          node: node('w1'),
          baseDirectory: BASE,
          directoryName: 'd',
          tolerations: [],
        },
        silentLogger,
      );
    }
    if (fill) await fillNode();
    if (inCache) cache.helperMap.set('hostpath-create-pvc-x', { metadata: { name: 'hostpath-create-pvc-x' } });
    expect(runner.waitsBeforeCreate('create', 'pvc-x', 'w1')).toEqual(expected);
  });

  it('a claim whose selected node has no free slot requeues without reading the node; with a slot it proceeds', async () => {
    await fillNode();
    expect(await provision().reconcile('default/data', ctx)).toEqual({ requeueAfterSeconds: 5 });
    expect(kube.calls).toEqual([]);
    now += 1;
    expect(runner.dropStale(0)).toEqual(['hostpath-create-pvc-other']); // its work ended: the slot is free
    await provision().reconcile('default/data', ctx);
    expect(kube.calls).toEqual([
      ['getNode', 'w1'],
      ['createPod', 'hostpath-create-pvc-u1'],
    ]);
  });

  it('a released volume whose node has no free slot requeues without reading the PV live', async () => {
    cache.pvs.set('pvc-u1', released());
    await fillNode();
    expect(await deleter().reconcile('pvc-u1', ctx)).toEqual({ requeueAfterSeconds: 5 });
    expect(kube.calls).toEqual([]);
    now += 1;
    expect(runner.dropStale(0)).toEqual(['hostpath-create-pvc-other']);
    await deleter().reconcile('pvc-u1', ctx);
    expect(kube.calls).toEqual([
      ['readVolume', 'pvc-u1'],
      ['createPod', 'hostpath-delete-pvc-u1'],
    ]);
  });
});
