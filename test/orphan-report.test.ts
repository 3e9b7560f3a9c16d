import { describe, expect, it } from '@jest/globals';
import type { V1Node, V1PersistentVolume, V1Pod } from '@kubernetes/client-node';
import { HelperRunner } from '../controllers/helper-runner.js';
import { leftoverReason } from '../controllers/helper-sweep.js';
import {
  basesToList,
  firstReportDelaySeconds,
  goneNodes,
  nodesToList,
  orphanDirectories,
  reportOrphanDirectories,
} from '../controllers/orphan-report.js';
import { buildHelperPod, HELPER_SCRIPTS } from '../src/domain/helper-pod.js';
import { helperNeverStarted } from '../src/domain/helper-status.js';
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

const node = (name: string, opts: { ready?: boolean; os?: string } = {}): V1Node => ({
  metadata: {
    name,
    labels: { 'kubernetes.io/hostname': `${name}-h`, ...(opts.os ? { 'kubernetes.io/os': opts.os } : {}) },
  },
  status: { conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }] },
});

describe('orphanDirectories', () => {
  it('reports entries no PV on that node points to; PVs of other nodes or other bases do not count', () => {
    const volumes = [
      pv('pvc-a', `${BASE}/ns-a-pvc-a`, 'w1-h'),
      pv('pvc-b', `${BASE}/ns-b-pvc-b`, 'w2-h'),
      pv('pvc-c', `/mnt/usb/ns-c-pvc-c`, 'w1-h'),
    ];
    expect(
      orphanDirectories(['ns-a-pvc-a', 'ns-b-pvc-b', 'ns-c-pvc-c', 'stray', '', 'stray'], BASE, node('w1'), volumes),
    ).toEqual(['ns-b-pvc-b', 'ns-c-pvc-c', 'stray']);
  });

  it('lists PV_DIR on every node and other base directories only where a PV of that node lives', () => {
    const volumes = [pv('pvc-c', '/mnt/usb/ns-c-pvc-c', 'w1-h'), pv('pvc-d', '/elsewhere/x-pvc-d', 'w1-h')];
    expect(basesToList(node('w1'), BASE, [BASE, '/mnt/usb'], volumes)).toEqual([BASE, '/mnt/usb']);
    expect(basesToList(node('w2'), BASE, [BASE, '/mnt/usb'], volumes)).toEqual([BASE]);
  });

  it('lists a node’s own base directory (pv-dir annotation) when valid, PV or not', () => {
    const annotated = (dir: string): V1Node => {
      const n = node('w1');
      n.metadata!.annotations = { 'hostpath-provisioner.io/pv-dir': dir };
      return n;
    };
    expect(basesToList(annotated('/mnt/nvme'), BASE, [BASE], [])).toEqual([BASE, '/mnt/nvme']);
    expect(basesToList(annotated('mnt/nvme'), BASE, [BASE], [])).toEqual([BASE]);
  });
});

describe('orphanDirectories: nested base directories and old addon PVs', () => {
  it('never reports a known base directory, or a directory holding one, as an orphan', () => {
    expect(
      orphanDirectories(['fast', 'deep', 'stray'], '/srv', node('w1'), [], ['/srv', '/srv/fast', '/srv/deep/er']),
    ).toEqual(['stray']);
    // A prefix of a name is not a parent: /srv/fast-old holds no base.
    expect(orphanDirectories(['fast-old'], '/srv', node('w1'), [], ['/srv/fast'])).toEqual(['fast-old']);
  });

  it('an old addon PV without node affinity points to its directory on the node its identity names', () => {
    const old: V1PersistentVolume = {
      metadata: { name: 'pvc-o', annotations: { hostPathProvisionerIdentity: 'w1' } },
      spec: { hostPath: { path: `${BASE}/ns-o-pvc-o` } },
    };
    expect(orphanDirectories(['ns-o-pvc-o'], BASE, node('w1'), [old])).toEqual([]);
    expect(orphanDirectories(['ns-o-pvc-o'], BASE, node('w2'), [old])).toEqual(['ns-o-pvc-o']);
  });
});

describe('nodesToList', () => {
  it('lists Ready Linux nodes only (no os label counts as Linux), never nodes being deleted', () => {
    const deleting = { ...node('gone'), metadata: { ...node('gone').metadata, deletionTimestamp: new Date(0) } };
    const names = nodesToList([
      node('w1'),
      node('w2', { os: 'linux' }),
      node('win', { os: 'windows' }),
      node('down', { ready: false }),
      deleting,
    ]).map((n) => n.metadata?.name);
    expect(names).toEqual(['w1', 'w2']);
  });
});

describe('helperNeverStarted', () => {
  const status = (state: object, lastState: object = {}) => ({
    name: 'helper',
    image: 'busybox',
    imageID: '',
    ready: false,
    restartCount: 0,
    state,
    lastState,
  });
  it.each([
    [
      'scheduled, ContainerCreating',
      'w1',
      { phase: 'Pending', containerStatuses: [status({ waiting: { reason: 'ContainerCreating' } })] },
      true,
    ],
    ['scheduled, no container status yet', 'w1', { phase: 'Pending' }, true],
    ['not scheduled', undefined, { phase: 'Pending' }, false],
    ['running', 'w1', { phase: 'Running', containerStatuses: [status({ running: {} })] }, false],
    [
      'pending after a terminated run',
      'w1',
      { phase: 'Pending', containerStatuses: [status({ waiting: {} }, { terminated: { exitCode: 1 } })] },
      false,
    ],
  ] as [string, string | undefined, V1Pod['status'], boolean][])('%s', (_name, nodeName, podStatus, expected) => {
    const pod: V1Pod = {
      spec: { containers: [], ...(nodeName ? { nodeName } : {}) },
      ...(podStatus ? { status: podStatus } : {}),
    };
    expect(helperNeverStarted(pod)).toBe(expected);
  });
});

describe('goneNodes', () => {
  it('names the nodes that had a series and no longer exist', () => {
    expect(goneNodes(new Set(['w1', 'w2', 'w3']), [node('w2'), node('w9')])).toEqual(['w1', 'w3']);
    expect(goneNodes([], [node('w1')])).toEqual([]);
  });
});

describe('firstReportDelaySeconds', () => {
  it.each([
    [600, 0, 150],
    [600, 0.5, 375],
    [600, 0.999, 599.55],
    [12, 1, 12],
  ])('interval %d s, random %d → %d s', (interval, random, expected) => {
    expect(firstReportDelaySeconds(interval, random)).toBeCloseTo(expected, 6);
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
    expect(pod.spec?.containers[0]?.command?.slice(-2)).toEqual(['/hostpath-base', '30']);
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
    expect(
      leftoverReason(p, new FakeCache(), ['microk8s.io/hostpath'], '/var/snap/microk8s/common/default-storage'),
    ).toMatch(/list helper/);
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
        knownBases: () => [BASE],
        tolerationPolicy: 'node-taints',
        setCount: (n, c) => counts.set(n, c),
        logger: silentLogger,
      });
    return { run, counts, kube, cache };
  }

  it('counts the directories no PV points to, per node, and deletes its helper', async () => {
    const { run, counts, kube } = setup('ns-a-pvc-a\nleft-behind\n.hidden\n');
    const report = await run();
    expect(report.get('w1')).toEqual([`${BASE}/.hidden`, `${BASE}/left-behind`]);
    expect(counts.get('w1')).toBe(2);
    expect(kube.calls.map((c) => c[0])).toContain('deletePod');
    expect(kube.calls.map((c) => c[0])).not.toContain('createVolume');
  });

  it('reads the PVs after the listing: a volume provisioned while the report ran is no orphan', async () => {
    const { run, counts, kube, cache } = setup('ns-a-pvc-a\nns-b-pvc-b\nstray\n');
    const created = kube.onPodCreated;
    kube.onPodCreated = (pod) => {
      // The volume's PV arrives in the cache while the list helper runs (the report started before it existed).
      cache.pvs.set('pvc-b', pv('pvc-b', `${BASE}/ns-b-pvc-b`, 'w1-h'));
      created(pod);
    };
    expect((await run()).get('w1')).toEqual([`${BASE}/stray`]);
    expect(counts.get('w1')).toBe(1);
  });

  it('lists at most 4 nodes at once', async () => {
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
    for (let i = 0; i < 10; i++) cache.nodeMap.set(`w${i}`, node(`w${i}`));
    kube.podLog = 'x\n';
    let inFlight = 0;
    let most = 0;
    kube.onPodCreated = (pod) => {
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        const done = { ...pod, spec: { ...pod.spec!, nodeName: 'w' }, status: { phase: 'Succeeded' } };
        cache.helperMap.set(pod.metadata!.name!, done);
        runner.onHelperEvent(done, false);
      }, 5);
    };
    const report = await reportOrphanDirectories({
      cache,
      runner,
      defaultBase: BASE,
      knownBases: () => [BASE],
      tolerationPolicy: 'node-taints',
      setCount: () => undefined,
      logger: silentLogger,
    });
    expect(report.size).toBe(10);
    expect(most).toBe(4);
  });

  it('skips quietly, with a count of 0, a node whose base directory cannot be mounted (helper never starts)', async () => {
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
        timeoutSeconds: 0.05,
        maxPerNode: 10,
      },
      clock: () => Date.now(), // the helper timeout is measured on this clock
    });
    cache.nodeMap.set('w1', node('w1'));
    kube.onPodCreated = (pod) => {
      const stuck: V1Pod = {
        ...pod,
        spec: { ...pod.spec!, nodeName: 'w1' },
        status: {
          phase: 'Pending',
          containerStatuses: [
            {
              name: 'helper',
              image: 'busybox',
              imageID: '',
              ready: false,
              restartCount: 0,
              state: { waiting: { reason: 'ContainerCreating' } },
            },
          ],
        },
      };
      cache.helperMap.set(pod.metadata!.name!, stuck);
      runner.onHelperEvent(stuck, false);
    };
    const counts = new Map<string, number>();
    const report = await reportOrphanDirectories({
      cache,
      runner,
      defaultBase: BASE,
      knownBases: () => [BASE],
      tolerationPolicy: 'node-taints',
      setCount: (n, c) => counts.set(n, c),
      logger: silentLogger,
    });
    expect(report.get('w1')).toEqual([]);
    expect(counts.get('w1')).toBe(0);
    expect(kube.calls.map((c) => c[0])).toEqual(['createPod', 'deletePod']);
  });

  it('leaves the count alone when the listing fails or cannot be read', async () => {
    const failed = setup('', 'Failed');
    expect((await failed.run()).has('w1')).toBe(false);
    expect(failed.counts.has('w1')).toBe(false);
    const unreadable = setup('(log unavailable: 500)');
    expect((await unreadable.run()).has('w1')).toBe(false);
  });
});
