import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { VolumeUsageSeries } from '../domain/usage.js';

/**
 * Prometheus metrics of the provisioner, all in one registry. Conventions: base units (seconds), `_total` on
 * counters, labels with bounded values only (class, node, operation, outcome — never claim
 * names or UIDs), except the per-volume usage gauges: one series per volume, as kubelet's `kubelet_volume_stats_*`.
 * The `controller_…` names are those of sig-storage-lib-external-provisioner, so existing dashboards work.
 */

/** Histogram buckets for latencies, seconds: 50 ms … 5 min. */
export const LATENCY_BUCKETS: readonly number[] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300];

/** Operation label of phase and helper metrics. */
export type Operation = 'provision' | 'delete';
/** Phase label of {@link Metrics.phaseDuration}. */
export type Phase = 'queue_wait' | 'helper_scheduling' | 'helper_run' | 'pv_create';
/** Outcome label of {@link Metrics.helperPods}. */
export type HelperOutcome =
  'succeeded' | 'failed' | 'timeout' | 'image_pull' | 'unschedulable' | 'admission' | 'evicted';

/** Every metric of the provisioner as a typed property, plus the registry that serves them. */
export interface Metrics {
  readonly registry: Registry;
  /** controller_persistentvolumeclaim_provision_total{class,source}: successful provisions. */
  readonly provisionTotal: Counter<'class' | 'source'>;
  /** controller_persistentvolumeclaim_provision_failed_total{class,source}: failed provision attempts. */
  readonly provisionFailedTotal: Counter<'class' | 'source'>;
  /** controller_persistentvolumeclaim_provision_duration_seconds{class,source}: one provision attempt. */
  readonly provisionDuration: Histogram<'class' | 'source'>;
  /** controller_persistentvolume_delete_total{class}: successful deletions. */
  readonly deleteTotal: Counter<'class'>;
  /** controller_persistentvolume_delete_failed_total{class}: failed (or refused) deletion attempts. */
  readonly deleteFailedTotal: Counter<'class'>;
  /** controller_persistentvolume_delete_duration_seconds{class}: one deletion attempt. */
  readonly deleteDuration: Histogram<'class'>;
  /** hostpath_provisioner_provision_latency_seconds{class}: claim created (or selected node set) → PV created. */
  readonly provisionLatency: Histogram<'class'>;
  /** hostpath_provisioner_phase_duration_seconds{operation,phase}. */
  readonly phaseDuration: Histogram<'operation' | 'phase'>;
  /** hostpath_provisioner_helper_pods_total{operation,outcome}. */
  readonly helperPods: Counter<'operation' | 'outcome'>;
  /** hostpath_provisioner_workqueue_depth{queue}: keys waiting to be processed. */
  readonly workqueueDepth: Gauge<'queue'>;
  /** hostpath_provisioner_workqueue_in_flight{queue}: reconciles running. */
  readonly workqueueInFlight: Gauge<'queue'>;
  /** hostpath_provisioner_workqueue_retries_total{queue}: keys requeued after an error. */
  readonly workqueueRetries: Counter<'queue'>;
  /** hostpath_provisioner_informer_restarts_total{resource}: list/watch failures recovered by a restart. */
  readonly informerRestarts: Counter<'resource'>;
  /** hostpath_provisioner_informer_last_event_age_seconds{resource}: read at scrape from {@link trackInformer}. */
  readonly informerLastEventAge: Gauge<'resource'>;
  /** hostpath_provisioner_events_dropped_total{reason}: Events not written (spam_filter, queue_full, api_error). */
  readonly eventsDropped: Counter<'reason'>;
  /** hostpath_provisioner_leader: 1 while this replica holds the Lease. */
  readonly leader: Gauge;
  /** hostpath_provisioner_volumes{node,class}: volumes managed (set by the controller). */
  readonly volumes: Gauge<'node' | 'class'>;
  /** hostpath_provisioner_volume_capacity_bytes{namespace,persistentvolumeclaim,persistentvolume,node}: at scrape. */
  readonly volumeCapacityBytes: Gauge<UsageLabel>;
  /** hostpath_provisioner_volume_used_bytes{namespace,persistentvolumeclaim,persistentvolume,node}: at scrape. */
  readonly volumeUsedBytes: Gauge<UsageLabel>;
  /** hostpath_provisioner_orphan_directories{node}: directories no PV points to (reported, never removed). */
  readonly orphanDirectories: Gauge<'node'>;
  /** hostpath_provisioner_build_info{version,node_version}: always 1. */
  readonly buildInfo: Gauge<'version' | 'node_version'>;
  /**
   * Registers the age source of one informer for the last-event-age gauge (replaces an earlier one), and starts its
   * restart counter at 0, so `increase()` of it is 0 rather than no series until the first restart.
   * @param resource - bounded label, e.g. `persistentvolumeclaims`.
   * @param ageSeconds - returns seconds since the informer last heard from the API server.
   */
  trackInformer(resource: string, ageSeconds: () => number): void;
  /**
   * Starts the outcome counters of one StorageClass of ours at 0 (provision and delete, succeeded and failed; source
   * ''), so that its first failure is an increase Prometheus can see — `increase()` of a series that first appears at
   * 1 is 0, and an alert on it would never fire.
   * @param className - the StorageClass name (a bounded label: classes are few and admin-made).
   */
  initClass(className: string): void;
  /**
   * Registers the source of hostpath_provisioner_volumes, read at scrape (replaces an earlier one). A node and class
   * seen before that has no volume now reads 0 rather than disappearing, so a dashboard shows 0 after the last volume
   * is deleted instead of "no data" (series are bounded by nodes times classes).
   * @param source - returns the volumes of ours by node and class, each count at least 1; [] while not leading, so
   *   replicas do not count the same volumes twice.
   */
  trackVolumes(source: () => readonly VolumeCount[]): void;
  /**
   * Registers the source of the volume capacity and used-bytes gauges, read at scrape (replaces an earlier one); the
   * series are exactly those the source returns, so a volume's series go with it.
   * @param source - one entry per volume of ours with a claim; `usedBytes` undefined before its node was measured
   *   (then it has a capacity series only); [] while not leading.
   */
  trackVolumeUsage(source: () => readonly VolumeUsage[]): void;
}

/** Volumes of ours on one node (`kubernetes.io/hostname` of the PV's node affinity, 'unknown' without) and class. */
export interface VolumeCount {
  readonly node: string;
  readonly class: string;
  readonly count: number;
}

/** Labels of the volume usage gauges (kubelet_volume_stats_* use the same namespace and persistentvolumeclaim). */
export type UsageLabel = 'namespace' | 'persistentvolumeclaim' | 'persistentvolume' | 'node';

/** One volume's capacity and measured use, in bytes (the domain's usage series). */
export type VolumeUsage = VolumeUsageSeries;

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Value of the build_info `version` label (the package version); default 'unknown'. */
  readonly version?: string;
}

/**
 * Creates every metric in a registry of its own (never the global one), with Node.js process metrics
 * (prom-client's default metrics, no prefix) and the build-info gauge set to 1.
 *
 * @param registry - registry to use; a new one when omitted (tests create one each).
 * @param options - see {@link MetricsOptions}.
 * @returns the typed {@link Metrics}.
 * @throws Error from prom-client when the registry already holds one of these metric names.
 */
export function createMetrics(registry: Registry = new Registry(), options: MetricsOptions = {}): Metrics {
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const informerAges = new Map<string, () => number>();
  /** Every node and class hostpath_provisioner_volumes has had, by JSON key. */
  const volumeLabelSets = new Map<string, { node: string; class: string }>();
  let volumeSource: () => readonly VolumeCount[] = () => [];
  let usageSource: () => readonly VolumeUsage[] = () => [];
  const usageLabels = (u: VolumeUsage) => ({
    namespace: u.namespace,
    persistentvolumeclaim: u.persistentvolumeclaim,
    persistentvolume: u.persistentvolume,
    node: u.node,
  });
  const usageLabelNames = ['namespace', 'persistentvolumeclaim', 'persistentvolume', 'node'] as const;

  const buildInfo = new Gauge({
    name: 'hostpath_provisioner_build_info',
    help: 'Build information; the value is always 1.',
    labelNames: ['version', 'node_version'] as const,
    registers,
  });
  buildInfo.set({ version: options.version ?? 'unknown', node_version: process.version }, 1);
  const informerRestarts = new Counter({
    name: 'hostpath_provisioner_informer_restarts_total',
    help: 'Informer list/watch failures recovered by a restart.',
    labelNames: ['resource'] as const,
    registers,
  });

  return {
    registry,
    provisionTotal: new Counter({
      name: 'controller_persistentvolumeclaim_provision_total',
      help: 'Number of persistent volume claims provisioned successfully.',
      labelNames: ['class', 'source'] as const,
      registers,
    }),
    provisionFailedTotal: new Counter({
      name: 'controller_persistentvolumeclaim_provision_failed_total',
      help: 'Number of failed provisioning attempts of persistent volume claims.',
      labelNames: ['class', 'source'] as const,
      registers,
    }),
    provisionDuration: new Histogram({
      name: 'controller_persistentvolumeclaim_provision_duration_seconds',
      help: 'Duration of one provisioning attempt, in seconds.',
      labelNames: ['class', 'source'] as const,
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    deleteTotal: new Counter({
      name: 'controller_persistentvolume_delete_total',
      help: 'Number of persistent volumes deleted successfully.',
      labelNames: ['class'] as const,
      registers,
    }),
    deleteFailedTotal: new Counter({
      name: 'controller_persistentvolume_delete_failed_total',
      help: 'Number of failed or refused deletion attempts of persistent volumes.',
      labelNames: ['class'] as const,
      registers,
    }),
    deleteDuration: new Histogram({
      name: 'controller_persistentvolume_delete_duration_seconds',
      help: 'Duration of one deletion attempt, in seconds.',
      labelNames: ['class'] as const,
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    provisionLatency: new Histogram({
      name: 'hostpath_provisioner_provision_latency_seconds',
      help: 'End-to-end provisioning latency: claim created (or selected node set) to volume created, in seconds.',
      labelNames: ['class'] as const,
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    phaseDuration: new Histogram({
      name: 'hostpath_provisioner_phase_duration_seconds',
      help: 'Duration of one phase of an operation (queue_wait, helper_scheduling, helper_run, pv_create), in seconds.',
      labelNames: ['operation', 'phase'] as const,
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    helperPods: new Counter({
      name: 'hostpath_provisioner_helper_pods_total',
      help: 'Helper pods finished, by operation and outcome.',
      labelNames: ['operation', 'outcome'] as const,
      registers,
    }),
    workqueueDepth: new Gauge({
      name: 'hostpath_provisioner_workqueue_depth',
      help: 'Keys waiting in the work queue.',
      labelNames: ['queue'] as const,
      registers,
    }),
    workqueueInFlight: new Gauge({
      name: 'hostpath_provisioner_workqueue_in_flight',
      help: 'Reconciles running.',
      labelNames: ['queue'] as const,
      registers,
    }),
    workqueueRetries: new Counter({
      name: 'hostpath_provisioner_workqueue_retries_total',
      help: 'Keys requeued with backoff after a failed reconcile.',
      labelNames: ['queue'] as const,
      registers,
    }),
    informerRestarts,
    informerLastEventAge: new Gauge({
      name: 'hostpath_provisioner_informer_last_event_age_seconds',
      help: 'Seconds since the informer last heard from the API server (list, event, bookmark or clean watch end).',
      labelNames: ['resource'] as const,
      registers,
      collect() {
        for (const [resource, age] of informerAges) this.set({ resource }, age());
      },
    }),
    eventsDropped: new Counter({
      name: 'hostpath_provisioner_events_dropped_total',
      help: 'Events not written: over the per-object budget (spam_filter), queue full (queue_full), or refused (api_error).',
      labelNames: ['reason'] as const,
      registers,
    }),
    leader: new Gauge({
      name: 'hostpath_provisioner_leader',
      help: '1 while this replica holds the leader-election Lease, else 0.',
      registers,
    }),
    volumes: new Gauge({
      name: 'hostpath_provisioner_volumes',
      help: 'Volumes managed by this provisioner, by node and class (0 on replicas that do not lead).',
      labelNames: ['node', 'class'] as const,
      registers,
      collect() {
        const now = new Map(volumeSource().map((c) => [JSON.stringify([c.node, c.class]), c]));
        for (const [key, labels] of volumeLabelSets) if (!now.has(key)) this.set(labels, 0);
        for (const [key, c] of now) {
          volumeLabelSets.set(key, { node: c.node, class: c.class });
          this.set({ node: c.node, class: c.class }, c.count);
        }
      },
    }),
    volumeCapacityBytes: new Gauge({
      name: 'hostpath_provisioner_volume_capacity_bytes',
      help: "Capacity of each volume (the PV's spec.capacity; bookkeeping, not a limit on hostPath), in bytes.",
      labelNames: usageLabelNames,
      registers,
      collect() {
        this.reset();
        for (const u of usageSource()) this.set(usageLabels(u), u.capacityBytes);
      },
    }),
    volumeUsedBytes: new Gauge({
      name: 'hostpath_provisioner_volume_used_bytes',
      help: "Bytes each volume uses on its node (du, same file system), as of its node's last report.",
      labelNames: usageLabelNames,
      registers,
      collect() {
        this.reset();
        for (const u of usageSource()) if (u.usedBytes !== undefined) this.set(usageLabels(u), u.usedBytes);
      },
    }),
    orphanDirectories: new Gauge({
      name: 'hostpath_provisioner_orphan_directories',
      help: 'Directories under a base directory that no volume points to (reported, never removed).',
      labelNames: ['node'] as const,
      registers,
    }),
    buildInfo,
    initClass(className) {
      for (const c of [this.provisionTotal, this.provisionFailedTotal]) c.inc({ class: className, source: '' }, 0);
      for (const c of [this.deleteTotal, this.deleteFailedTotal]) c.inc({ class: className }, 0);
    },
    trackVolumes(source) {
      volumeSource = source;
    },
    trackVolumeUsage(source) {
      usageSource = source;
    },
    trackInformer(resource, ageSeconds) {
      informerAges.set(resource, ageSeconds);
      informerRestarts.inc({ resource }, 0);
    },
  };
}
