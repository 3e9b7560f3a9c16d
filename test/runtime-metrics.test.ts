import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { createMetrics, LATENCY_BUCKETS, type VolumeCount } from '../src/runtime/metrics.js';

describe('createMetrics', () => {
  it('registers every metric under its exact name in its own registry', async () => {
    const m = createMetrics(new Registry(), { version: '1.2.3' });
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
    for (const name of [
      'controller_persistentvolumeclaim_provision_total',
      'controller_persistentvolumeclaim_provision_failed_total',
      'controller_persistentvolumeclaim_provision_duration_seconds',
      'controller_persistentvolume_delete_total',
      'controller_persistentvolume_delete_failed_total',
      'controller_persistentvolume_delete_duration_seconds',
      'hostpath_provisioner_provision_latency_seconds',
      'hostpath_provisioner_phase_duration_seconds',
      'hostpath_provisioner_helper_pods_total',
      'hostpath_provisioner_workqueue_depth',
      'hostpath_provisioner_workqueue_in_flight',
      'hostpath_provisioner_workqueue_retries_total',
      'hostpath_provisioner_informer_restarts_total',
      'hostpath_provisioner_informer_last_event_age_seconds',
      'hostpath_provisioner_leader',
      'hostpath_provisioner_volumes',
      'hostpath_provisioner_orphan_directories',
      'hostpath_provisioner_build_info',
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(names).toContain(name);
    }
    // Counters end in _total in the exposition; histograms and gauges in base units.
    const text = await m.registry.metrics();
    expect(text).toContain(`hostpath_provisioner_build_info{version="1.2.3",node_version="${process.version}"} 1`);
    expect(text).toContain('hostpath_provisioner_leader 0');
  });

  it('two instances do not collide (each has its own registry)', () => {
    expect(() => {
      createMetrics();
      createMetrics();
    }).not.toThrow();
  });

  it('uses latency buckets from 50 ms to 300 s', async () => {
    const m = createMetrics();
    m.provisionDuration.observe({ class: 'microk8s-hostpath', source: 'hostpath' }, 0.3);
    m.phaseDuration.observe({ operation: 'provision', phase: 'queue_wait' }, 400);
    expect(LATENCY_BUCKETS[0]).toBe(0.05);
    expect(LATENCY_BUCKETS[LATENCY_BUCKETS.length - 1]).toBe(300);
    const text = await m.registry.metrics();
    expect(text).toContain(
      'controller_persistentvolumeclaim_provision_duration_seconds_bucket{le="0.5",class="microk8s-hostpath",source="hostpath"} 1',
    );
    expect(text).toContain(
      'hostpath_provisioner_phase_duration_seconds_bucket{le="300",operation="provision",phase="queue_wait"} 0',
    );
    expect(text).toContain(
      'hostpath_provisioner_phase_duration_seconds_bucket{le="+Inf",operation="provision",phase="queue_wait"} 1',
    );
  });

  it('reads informer ages at scrape time', async () => {
    const m = createMetrics();
    let age = 3;
    m.trackInformer('persistentvolumeclaims', () => age);
    expect(await m.registry.metrics()).toContain(
      'hostpath_provisioner_informer_last_event_age_seconds{resource="persistentvolumeclaims"} 3',
    );
    age = 7.5;
    expect(await m.registry.metrics()).toContain(
      'hostpath_provisioner_informer_last_event_age_seconds{resource="persistentvolumeclaims"} 7.5',
    );
  });

  it('starts the outcome counters of a class at 0', async () => {
    const m = createMetrics();
    m.initClass('fast');
    const text = await m.registry.metrics();
    for (const line of [
      'controller_persistentvolumeclaim_provision_total{class="fast",source=""} 0',
      'controller_persistentvolumeclaim_provision_failed_total{class="fast",source=""} 0',
      'controller_persistentvolume_delete_total{class="fast"} 0',
      'controller_persistentvolume_delete_failed_total{class="fast"} 0',
    ]) {
      expect(text).toContain(line);
    }
  });

  it('starts the restart counter of a tracked informer at 0, so increase() has a series before any restart', async () => {
    const m = createMetrics();
    expect(await m.registry.metrics()).not.toContain('hostpath_provisioner_informer_restarts_total{');
    m.trackInformer('nodes', () => 0);
    expect(await m.registry.metrics()).toContain('hostpath_provisioner_informer_restarts_total{resource="nodes"} 0');
    m.informerRestarts.inc({ resource: 'nodes' });
    expect(await m.registry.metrics()).toContain('hostpath_provisioner_informer_restarts_total{resource="nodes"} 1');
  });

  it('reads volume counts at scrape and keeps a node and class at 0 after its last volume is gone, so a dashboard shows 0, not no data', async () => {
    const m = createMetrics();
    const volumeLines = async () =>
      (await m.registry.metrics()).split('\n').filter((l) => l.startsWith('hostpath_provisioner_volumes{'));
    let counts: VolumeCount[] = [
      { node: 'n1', class: 'fast', count: 2 },
      { node: 'n2', class: 'fast', count: 1 },
    ];
    m.trackVolumes(() => counts);
    expect(await volumeLines()).toEqual([
      'hostpath_provisioner_volumes{node="n1",class="fast"} 2',
      'hostpath_provisioner_volumes{node="n2",class="fast"} 1',
    ]);
    counts = [{ node: 'n2', class: 'fast', count: 3 }];
    expect(await volumeLines()).toEqual([
      'hostpath_provisioner_volumes{node="n1",class="fast"} 0',
      'hostpath_provisioner_volumes{node="n2",class="fast"} 3',
    ]);
    counts = [];
    expect(await volumeLines()).toEqual([
      'hostpath_provisioner_volumes{node="n1",class="fast"} 0',
      'hostpath_provisioner_volumes{node="n2",class="fast"} 0',
    ]);
  });
});
