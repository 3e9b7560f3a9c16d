import { describe, expect, it } from '@jest/globals';
import type { V1Node, V1PersistentVolume, V1Pod } from '@kubernetes/client-node';
import { HelperRunner } from '../controllers/helper-runner.js';
import { leftoverReason } from '../controllers/helper-sweep.js';
import { basesToList, orphanDirectories, reportOrphanDirectories } from '../controllers/orphan-report.js';
import { buildHelperPod, HELPER_SCRIPTS } from '../src/domain/helper-pod.js';
import { FakeCache, FakeKube, FakeMetrics, silentLogger } from './support/fakes.js';

const BASE = '/var/snap/microk8s/common/default-storage';

function pv(name: string, path: string, hostname: string): V1PersistentVolume {
  return {
    metadata: { name },
    spec: {
      hostPath: { path },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [hostname] }] },
          ],
        },
      },
    },
  };
}

const node = (name: string): V1Node => ({ metadata: { name, labels: { 'kubernetes.io/hostname': `${name}-h` } } });

describe('orphanDirectories', () => {
  it('reports entries no PV on that node points to; PVs of other nodes or other bases do not count', () => {
    const volumes = [
      pv('pvc-a', `${BASE}/ns-a-pvc-a`, 'w1-h'),
      pv('pvc-b', `${BASE}/ns-b-pvc-b`, 'w2-h'),
      pv('pvc-c', `/mnt/usb/ns-c-pvc-c`, 'w1-h'),
    ];
    expect(
      orphanDirectories(['ns-a-pvc-a', 'ns-b-pvc-b', 'ns-c-pvc-c', 'stray', '', 'stray'], BASE, 'w1-h', volumes),
    ).toEqual(['ns-b-pvc-b', 'ns-c-pvc-c', 'stray']);
  });

  it('lists PV_DIR on every node and other base directories only where a PV of that node lives', () => {
    const volumes = [pv('pvc-c', '/mnt/usb/ns-c-pvc-c', 'w1-h'), pv('pvc-d', '/elsewhere/x-pvc-d', 'w1-h')];
    expect(basesToList(node('w1'), BASE, [BASE, '/mnt/usb'], volumes)).toEqual([BASE, '/mnt/usb']);
    expect(basesToList(node('w2'), BASE, [BASE, '/mnt/usb'], volumes)).toEqual([BASE]);
  });
});

describe('list helper', () => {
  it('is read only: lists the base directory itself, mounted as the base', () => {
    const pod = buildHelperPod({
      operation: 'list',
      volumeName: 'w1-1234abcd',
      namespace: 'kube-system',
      nodeName: 'w1',
      baseDirectory: BASE,
      directoryName: '',
      image: 'busybox',
      tolerations: [],
      priorityClassName: '',
      activeDeadlineSeconds: 60,
    });
    expect(pod.metadata?.name).toBe('hostpath-list-w1-1234abcd');
    expect(pod.spec?.containers[0]?.command?.at(-1)).toBe('/hostpath-base');
    expect(pod.metadata?.annotations?.['hostpath-provisioner.io/path']).toBe(BASE);
    expect(HELPER_SCRIPTS.list).not.toMatch(/\b(rm|mkdir|chmod|mv)\b/);
  });

  it('a list helper no run waits for is a leftover', () => {
    const p: V1Pod = {
      metadata: {
        labels: { 'hostpath-provisioner.io/operation': 'list' },
        annotations: { 'hostpath-provisioner.io/volume-name': 'w1-1234abcd' },
      },
    };
    expect(leftoverReason(p, new FakeCache(), ['microk8s.io/hostpath'])).toMatch(/list helper/);
  });
});

describe('reportOrphanDirectories', () => {
  function setup(output: string, phase = 'Succeeded') {
    const cache = new FakeCache();
    const kube = new FakeKube(cache);
    const runner = new HelperRunner({
      cache,
      kube,
      metrics: new FakeMetrics(),
      settings: {
        namespace: 'kube-system',
        image: 'busybox',
        priorityClassName: '',
        timeoutSeconds: 5,
        maxPerNode: 10,
      },
      clock: () => 0,
    });
    cache.nodeMap.set('w1', node('w1'));
    cache.pvs.set('pvc-a', pv('pvc-a', `${BASE}/ns-a-pvc-a`, 'w1-h'));
    kube.podLog = output;
    kube.onPodCreated = (pod) => {
      const done = { ...pod, spec: { ...pod.spec!, nodeName: 'w1' }, status: { phase } };
      cache.helperMap.set(pod.metadata!.name!, done);
      runner.onHelperEvent(done, false);
    };
    const counts = new Map<string, number>();
    const run = () =>
      reportOrphanDirectories({
        cache,
        runner,
        defaultBase: BASE,
        knownBases: [BASE],
        tolerationPolicy: 'node-taints',
        setCount: (n, c) => counts.set(n, c),
        logger: silentLogger,
      });
    return { run, counts, kube };
  }

  it('counts the directories no PV points to, per node, and deletes its helper', async () => {
    const { run, counts, kube } = setup('ns-a-pvc-a\nleft-behind\n.hidden\n');
    const report = await run();
    expect(report.get('w1')).toEqual([`${BASE}/.hidden`, `${BASE}/left-behind`]);
    expect(counts.get('w1')).toBe(2);
    expect(kube.calls.map((c) => c[0])).toContain('deletePod');
    expect(kube.calls.map((c) => c[0])).not.toContain('createVolume');
  });

  it('leaves the count alone when the listing fails or cannot be read', async () => {
    const failed = setup('', 'Failed');
    expect((await failed.run()).has('w1')).toBe(false);
    expect(failed.counts.has('w1')).toBe(false);
    const unreadable = setup('(log unavailable: 500)');
    expect((await unreadable.run()).has('w1')).toBe(false);
  });
});
