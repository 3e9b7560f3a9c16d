import { describe, expect, it } from '@jest/globals';
import type { V1Node, V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { REASON_OVER_CAPACITY, VolumeUsageTracker } from '../controllers/usage.js';
import { quantityToBytes } from '../src/domain/quantity.js';
import { formatBytes, overCapacityMessage, usageOnNode, volumeUsageSeries } from '../src/domain/usage.js';
import { createMetrics } from '../src/runtime/metrics.js';
import { FakeCache, silentLogger } from './support/fakes.js';

const NAMES = ['microk8s.io/hostpath'];
const BASE = '/var/snap/microk8s/common/default-storage';
const node = (name: string): V1Node => ({ metadata: { name, labels: { 'kubernetes.io/hostname': name } } });
const pv = (
  name: string,
  opts: { node?: string; capacity?: string; claim?: [string, string, string]; by?: string; path?: string } = {},
): V1PersistentVolume => ({
  metadata: { name, annotations: { 'pv.kubernetes.io/provisioned-by': opts.by ?? NAMES[0]! } },
  spec: {
    capacity: { storage: opts.capacity ?? '1Mi' },
    hostPath: { path: opts.path ?? `${BASE}/default-data-${name}` },
    ...(opts.claim === null
      ? {}
      : {
          claimRef: {
            namespace: opts.claim?.[0] ?? 'default',
            name: opts.claim?.[1] ?? 'data',
            uid: opts.claim?.[2] ?? 'u1',
          },
        }),
    nodeAffinity: {
      required: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [opts.node ?? 'w1'] }] },
        ],
      },
    },
  },
});

describe('quantityToBytes', () => {
  it.each<[string | undefined, number | undefined]>([
    ['1Mi', 1048576],
    ['1Gi', 1073741824],
    ['1.5k', 1500],
    ['100m', 1],
    ['1e3', 1000],
    ['0', 0],
    ['lots', undefined],
    [undefined, undefined],
  ])('%s → %s', (text, bytes) => {
    expect(quantityToBytes(text)).toBe(bytes);
  });
});

describe('formatBytes', () => {
  it.each<[number, string]>([
    [0, '0 bytes'],
    [1023, '1023 bytes'],
    [2101248, '2.0 MiB (2101248 bytes)'],
    [5 * 2 ** 30, '5.0 GiB (5368709120 bytes)'],
  ])('%d → %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe('volumeUsageSeries', () => {
  it('one series per volume of ours with a claim and a capacity; used bytes once measured', () => {
    const volumes = [
      pv('pvc-a', { claim: ['apps', 'web', 'u1'] }),
      pv('pvc-b', { node: 'w2', capacity: '2Gi', claim: ['apps', 'db', 'u2'] }),
      pv('pvc-foreign', { by: 'rancher.io/local-path' }),
      pv('pvc-nocap', { capacity: 'lots' }),
    ];
    expect(volumeUsageSeries(volumes, NAMES, new Map([['pvc-a', 4096]]))).toEqual([
      {
        namespace: 'apps',
        persistentvolumeclaim: 'web',
        persistentvolume: 'pvc-a',
        node: 'w1',
        capacityBytes: 1048576,
        usedBytes: 4096,
      },
      {
        namespace: 'apps',
        persistentvolumeclaim: 'db',
        persistentvolume: 'pvc-b',
        node: 'w2',
        capacityBytes: 2147483648,
        usedBytes: undefined,
      },
    ]);
  });
});

describe('a volume on a shared file system', () => {
  const shared = (): V1PersistentVolume => {
    const v = pv('pvc-s', { path: '/mnt/nfs/default-data-pvc-s' });
    v.metadata!.annotations!['hostpath-provisioner.io/shared-file-system'] = 'true';
    delete v.spec!.nodeAffinity;
    return v;
  };
  it('has an empty node label, is measured on any node that lists it, and says where it fills up', () => {
    const [series] = volumeUsageSeries([shared()], NAMES, new Map([['pvc-s', 2101248]]));
    expect(series?.node).toBe('');
    expect(usageOnNode([shared()], NAMES, node('w2'), new Map([['/mnt/nfs/default-data-pvc-s', 2101248]]))).toEqual(
      new Map([['pvc-s', 2101248]]),
    );
    expect(overCapacityMessage(series!, '1Mi')).toMatch(
      /^volume pvc-s uses 2\.0 MiB \(2101248 bytes\) on its shared file system, more than its capacity 1Mi:/,
    );
  });
});

describe('usageOnNode', () => {
  it('maps measured paths to the PVs of ours on that node only', () => {
    const volumes = [pv('pvc-a'), pv('pvc-b', { node: 'w2' }), pv('pvc-c', { by: 'other.io/x' })];
    const measured = new Map([
      [`${BASE}/default-data-pvc-a`, 8192],
      [`${BASE}/default-data-pvc-b`, 1],
      [`${BASE}/default-data-pvc-c`, 1],
      [`${BASE}/orphan`, 1],
    ]);
    expect(usageOnNode(volumes, NAMES, node('w1'), measured)).toEqual(new Map([['pvc-a', 8192]]));
  });
});

describe('overCapacityMessage', () => {
  const series = {
    namespace: 'apps',
    persistentvolumeclaim: 'web',
    persistentvolume: 'pvc-a',
    node: 'w1',
    capacityBytes: 1048576,
  };
  it.each<[number | undefined, boolean]>([
    [undefined, false],
    [1048576, false],
    [1048577, true],
  ])('used %s → over: %s', (usedBytes, over) => {
    expect(overCapacityMessage({ ...series, usedBytes }, '1Mi') !== undefined).toBe(over);
  });
  it('says how much, where, and what to do', () => {
    expect(overCapacityMessage({ ...series, usedBytes: 2101248 }, '1Mi')).toBe(
      'volume pvc-a uses 2.0 MiB (2101248 bytes) on node w1, more than its capacity 1Mi: hostPath capacity is not ' +
        "enforced, so the node's disk is what fills up — free space in the volume, or raise the claim's request " +
        '(with allowVolumeExpansion on its class) so quotas and dashboards are true',
    );
  });
});

describe('VolumeUsageTracker', () => {
  const setup = () => {
    const cache = new FakeCache();
    const claim: V1PersistentVolumeClaim = { metadata: { name: 'data', namespace: 'default', uid: 'u1' } };
    cache.claims.set('default/data', claim);
    cache.pvs.set('pvc-a', pv('pvc-a'));
    cache.pvs.set('pvc-b', pv('pvc-b', { claim: ['default', 'other', 'u9'] }));
    const events: [string | undefined, string, string][] = [];
    const tracker = new VolumeUsageTracker({
      cache,
      provisionerNames: NAMES,
      event: (obj, _type, reason, message) => events.push([obj.metadata?.name, reason, message]),
      logger: silentLogger,
    });
    return { cache, tracker, events };
  };
  const path = (name: string) => `${BASE}/default-data-${name}`;

  it('one VolumeOverCapacity when a volume goes over, again only after it was back under', () => {
    const { tracker, events } = setup();
    tracker.record(node('w1'), new Map([[path('pvc-a'), 2 * 1048576]]), true);
    tracker.record(node('w1'), new Map([[path('pvc-a'), 3 * 1048576]]), true);
    expect(events.map((e) => e.slice(0, 2))).toEqual([['data', REASON_OVER_CAPACITY]]);
    tracker.record(node('w1'), new Map([[path('pvc-a'), 1024]]), true);
    tracker.record(node('w1'), new Map([[path('pvc-a'), 2 * 1048576]]), true);
    expect(events.map((e) => e.slice(0, 2))).toEqual([
      ['data', REASON_OVER_CAPACITY],
      ['data', REASON_OVER_CAPACITY],
    ]);
  });

  it('no event for a claim that is gone or was re-created (another uid)', () => {
    const { tracker, events } = setup();
    tracker.record(node('w1'), new Map([[path('pvc-b'), 2 * 1048576]]), true);
    expect(events).toEqual([]);
    expect(tracker.series().find((s) => s.persistentvolume === 'pvc-b')?.usedBytes).toBe(2 * 1048576);
  });

  it('a complete report drops a volume it did not find; an incomplete one keeps the last value', () => {
    const { tracker } = setup();
    tracker.record(node('w1'), new Map([[path('pvc-a'), 4096]]), true);
    tracker.record(node('w1'), new Map(), false);
    expect(tracker.series().find((s) => s.persistentvolume === 'pvc-a')?.usedBytes).toBe(4096);
    tracker.record(node('w1'), new Map(), true);
    expect(tracker.series().find((s) => s.persistentvolume === 'pvc-a')?.usedBytes).toBeUndefined();
  });

  it('a report of another node does not touch this one’s volumes; forget drops a deleted PV', () => {
    const { tracker } = setup();
    tracker.record(node('w1'), new Map([[path('pvc-a'), 4096]]), true);
    tracker.record(node('w2'), new Map(), true);
    expect(tracker.series().find((s) => s.persistentvolume === 'pvc-a')?.usedBytes).toBe(4096);
    tracker.forget('pvc-a');
    expect(tracker.series().find((s) => s.persistentvolume === 'pvc-a')?.usedBytes).toBeUndefined();
  });
});

describe('usage gauges', () => {
  it('are read at scrape: capacity for every volume, used bytes once measured, gone with the volume', async () => {
    const m = createMetrics();
    let usage = [
      {
        namespace: 'apps',
        persistentvolumeclaim: 'web',
        persistentvolume: 'pvc-a',
        node: 'w1',
        capacityBytes: 1048576,
        usedBytes: 4096,
      },
      {
        namespace: 'apps',
        persistentvolumeclaim: 'db',
        persistentvolume: 'pvc-b',
        node: 'w2',
        capacityBytes: 2048,
        usedBytes: undefined,
      },
    ];
    m.trackVolumeUsage(() => usage);
    const lines = async () =>
      (await m.registry.metrics())
        .split('\n')
        .filter((l) => /^hostpath_provisioner_volume_(used|capacity)_bytes\{/.test(l));
    expect(await lines()).toEqual([
      'hostpath_provisioner_volume_capacity_bytes{namespace="apps",persistentvolumeclaim="web",persistentvolume="pvc-a",node="w1"} 1048576',
      'hostpath_provisioner_volume_capacity_bytes{namespace="apps",persistentvolumeclaim="db",persistentvolume="pvc-b",node="w2"} 2048',
      'hostpath_provisioner_volume_used_bytes{namespace="apps",persistentvolumeclaim="web",persistentvolume="pvc-a",node="w1"} 4096',
    ]);
    usage = [];
    expect(await lines()).toEqual([]);
  });
});
