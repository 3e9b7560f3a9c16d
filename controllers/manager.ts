import type {
  KubernetesObject,
  V1Node,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1StorageClass,
} from '@kubernetes/client-node';
import {
  ANN_HELPER_CLAIM,
  ANN_HELPER_VOLUME,
  HELPER_SELECTOR,
  LABEL_HELPER_OPERATION,
  LABEL_HOSTNAME,
} from '../src/domain/constants.js';
import { claimClassName, volumeClassName } from '../src/domain/class-name.js';
import { volumeNameForClaim } from '../src/domain/names.js';
import { claimNamesOfPod } from '../src/domain/pod-claims.js';
import type { HelperOperation } from '../src/domain/names.js';
import { resizeRequested } from '../src/domain/resize.js';
import { countVolumes } from '../src/domain/volume.js';
import { retryAfterSeconds, type KubeClients } from '../src/kube/client.js';
import { EventRecorder } from '../src/kube/events.js';
import { objectKey, ResilientInformer } from '../src/kube/informer.js';
import { stripClaim, stripCommon, stripNode, stripPendingPod } from '../src/kube/transforms.js';
import { ProvisionerApi } from '../src/kube/provisioner-api.js';
import type { Config } from '../src/runtime/config.js';
import type { Logger } from '../src/runtime/logger.js';
import type { Metrics } from '../src/runtime/metrics.js';
import { WorkQueue } from '../src/runtime/work-queue.js';
import { DeleteController } from './delete.js';
import { HelperRunner } from './helper-runner.js';
import { sweepLeftoverHelpers } from './helper-sweep.js';
import { firstReportDelaySeconds, goneNodes, reportOrphanDirectories } from './orphan-report.js';
import type { ClusterCache, ControllerMetrics } from './ports.js';
import { ProvisionController } from './provision.js';
import { ResizeController } from './resize.js';
import { VolumeUsageTracker } from './usage.js';

/** Seconds between sweeps for leftover helper pods and refreshes of the volumes gauge. */
const HOUSEKEEPING_SECONDS = 60;
/** Informers re-deliver every object this often, so a missed event cannot strand a claim. */
const RESYNC_SECONDS = 300;

const INDEX_CLASS = 'class';
const INDEX_HOSTNAME = 'hostname';
const INDEX_CLAIM = 'claim';

/** Adapts the Prometheus metrics to what the reconcilers record. */
export function controllerMetrics(metrics: Metrics): ControllerMetrics {
  const op = (operation: HelperOperation) => (operation === 'create' ? 'provision' : operation);
  return {
    provisionFinished(className, source, ok, seconds) {
      (ok ? metrics.provisionTotal : metrics.provisionFailedTotal).inc({ class: className, source });
      metrics.provisionDuration.observe({ class: className, source }, seconds);
    },
    deleteFinished(className, ok, seconds) {
      (ok ? metrics.deleteTotal : metrics.deleteFailedTotal).inc({ class: className });
      metrics.deleteDuration.observe({ class: className }, seconds);
    },
    provisionLatency(className, seconds) {
      metrics.provisionLatency.observe({ class: className }, seconds);
    },
    phase(operation, phase, seconds) {
      metrics.phaseDuration.observe({ operation: op(operation), phase }, seconds);
    },
    helperOutcome(operation, outcome) {
      metrics.helperPods.inc({ operation: op(operation), outcome });
    },
  };
}

/**
 * Wires the provisioner together: six resilient informers (claims, volumes, classes, nodes, Pending pods for the
 * consumer index, our helper pods), three work queues (claims to provision and claims to resize by `namespace/name`,
 * volumes by name), the reconcilers, and housekeeping. Informers run on every replica (standbys keep warm caches); queues only run while leading.
 */
export class ProvisionerManager {
  readonly claims: ResilientInformer<V1PersistentVolumeClaim>;
  readonly volumes: ResilientInformer<V1PersistentVolume>;
  readonly classes: ResilientInformer<V1StorageClass>;
  readonly nodes: ResilientInformer<V1Node>;
  readonly pods: ResilientInformer<V1Pod>;
  readonly helpers: ResilientInformer<V1Pod>;
  readonly claimQueue: WorkQueue;
  readonly volumeQueue: WorkQueue;
  /** Claims whose request grew (their own queue: a resize never waits behind provisioning, nor the reverse). */
  readonly resizeQueue: WorkQueue;
  readonly runner: HelperRunner;
  private readonly api: ProvisionerApi;
  private housekeeping: NodeJS.Timeout | undefined;
  private orphanReport: NodeJS.Timeout | undefined;
  private firstOrphanReport: NodeJS.Timeout | undefined;
  /** Nodes with an `orphan_directories` series, so the series of a deleted node can be dropped. */
  private readonly orphanCounted = new Set<string>();
  /** A report still running when the next one is due is not started twice (its helpers have fixed names). */
  private orphanReportRunning = false;
  private readonly deleter: DeleteController;
  /** Bytes used by our volumes as the reports measured them, and their over-capacity events. */
  private readonly usage: VolumeUsageTracker;
  private leading = false;

  constructor(
    private readonly deps: {
      readonly config: Config;
      readonly clients: KubeClients;
      readonly metrics: Metrics;
      readonly logger: Logger;
    },
  ) {
    const { config, clients, metrics, logger } = deps;
    const { core, storage, kc } = clients;
    // Lists are paginated and objects stripped of what no reconciler reads (src/kube/transforms.ts) before caching.
    const common = { kc, metrics, logger, resyncSeconds: RESYNC_SECONDS, transform: stripCommon };
    this.claims = new ResilientInformer<V1PersistentVolumeClaim>({
      ...common,
      transform: stripClaim,
      resource: 'persistentvolumeclaims',
      path: '/api/v1/persistentvolumeclaims',
      list: (o) => core.listPersistentVolumeClaimForAllNamespaces(o),
    });
    this.volumes = new ResilientInformer<V1PersistentVolume>({
      ...common,
      resource: 'persistentvolumes',
      path: '/api/v1/persistentvolumes',
      list: (o) => core.listPersistentVolume(o),
    });
    this.classes = new ResilientInformer<V1StorageClass>({
      ...common,
      resource: 'storageclasses',
      path: '/apis/storage.k8s.io/v1/storageclasses',
      list: (o) => storage.listStorageClass(o),
    });
    this.nodes = new ResilientInformer<V1Node>({
      ...common,
      resource: 'nodes',
      path: '/api/v1/nodes',
      list: (o) => core.listNode(o),
      transform: stripNode,
    });
    // Consumers of a claim waiting for its volume are Pending: caching only Pending pods keeps the cache small.
    const pendingPods = 'status.phase=Pending';
    this.pods = new ResilientInformer<V1Pod>({
      ...common,
      resource: 'pods',
      path: '/api/v1/pods',
      fieldSelector: pendingPods,
      list: (o) => core.listPodForAllNamespaces(o),
      transform: stripPendingPod,
    });
    this.helpers = new ResilientInformer<V1Pod>({
      ...common,
      resource: 'helperpods',
      path: `/api/v1/namespaces/${config.namespace}/pods`,
      labelSelector: HELPER_SELECTOR,
      list: (o) => core.listNamespacedPod({ ...o, namespace: config.namespace }),
    });
    this.claims.addIndex(INDEX_CLASS, (c) => (claimClassName(c) ? [claimClassName(c)] : []));
    this.volumes.addIndex(INDEX_CLASS, (v) => (volumeClassName(v) ? [volumeClassName(v)] : []));
    this.nodes.addIndex(INDEX_HOSTNAME, (n) => [n.metadata?.labels?.[LABEL_HOSTNAME] ?? n.metadata?.name ?? '']);
    this.pods.addIndex(INDEX_CLAIM, (p) => claimNamesOfPod(p).map((c) => `${p.metadata?.namespace ?? ''}/${c}`));

    const cache = this.cache();
    this.api = new ProvisionerApi(core);
    // Events go through their own client and bucket, a bounded queue and client-go's spam filter: never in front of
    // real work, never in front of the Lease.
    const events = new EventRecorder({
      core: clients.eventsCore,
      component: 'hostpath-provisioner',
      host: config.nodeName,
      logger,
      metrics,
    });
    const recorded = controllerMetrics(metrics);
    const clock = () => Date.now();
    this.usage = new VolumeUsageTracker({
      cache,
      provisionerNames: config.provisionerNames,
      event: (obj, type, reason, message) => events.event(obj, type, reason, message),
      logger,
    });
    this.runner = new HelperRunner({
      cache,
      kube: this.api,
      metrics: recorded,
      clock,
      settings: {
        namespace: config.namespace,
        image: config.busyboxImage,
        priorityClassName: config.helperPriorityClassName,
        capabilities: config.helperCapabilities,
        timeoutSeconds: config.helperTimeoutSeconds,
        maxPerNode: config.maxHelpersPerNode,
        retryBaseSeconds: config.retryBaseDelaySeconds,
        retryMaxSeconds: config.retryMaxDelaySeconds,
      },
    });
    const provision = new ProvisionController({
      cache,
      kube: this.api,
      events,
      metrics: recorded,
      helpers: this.runner,
      clock,
      settings: {
        provisionerNames: config.provisionerNames,
        defaultBaseDirectory: config.pvDir,
        identity: config.nodeName,
        tolerationPolicy: config.tolerationPolicy,
        reclaimPolicyOverride: config.pvReclaimPolicy,
      },
    });
    const deleter = (this.deleter = new DeleteController({
      cache,
      kube: this.api,
      events,
      metrics: recorded,
      helpers: this.runner,
      clock,
      settings: {
        provisionerNames: config.provisionerNames,
        defaultBaseDirectory: config.pvDir,
        tolerationPolicy: config.tolerationPolicy,
        nodeGonePolicy: config.nodeGonePolicy,
      },
    }));
    const resize = new ResizeController({
      cache,
      kube: this.api,
      events,
      clock,
      settings: { provisionerNames: config.provisionerNames },
    });
    const queueOptions = {
      concurrency: config.concurrency,
      baseDelaySeconds: config.retryBaseDelaySeconds,
      maxDelaySeconds: config.retryMaxDelaySeconds,
      metrics,
      logger,
      // A 429 (API Priority and Fairness) is retried no sooner than the server's Retry-After.
      minRetrySeconds: (err: unknown) => retryAfterSeconds(err),
    };
    this.claimQueue = new WorkQueue({ ...queueOptions, name: 'claims', operation: 'provision' }, (key, ctx) =>
      provision.reconcile(key, ctx),
    );
    this.volumeQueue = new WorkQueue({ ...queueOptions, name: 'volumes', operation: 'delete' }, (key, ctx) =>
      deleter.reconcile(key, ctx),
    );
    this.resizeQueue = new WorkQueue({ ...queueOptions, name: 'resizes', operation: 'resize' }, (key, ctx) =>
      resize.reconcile(key, ctx),
    );

    // A standby enqueues nothing (its queues never run, so keys would pile up): startLeading enqueues everything.
    const enqueueClaim = (c: V1PersistentVolumeClaim) => {
      if (!this.leading) return;
      this.claimQueue.add(objectKey(c));
      if (resizeRequested(c)) this.resizeQueue.add(objectKey(c));
    };
    const enqueueVolume = (v: V1PersistentVolume) => {
      if (!this.leading) return;
      this.volumeQueue.add(objectKey(v));
      // A PV's capacity is one step of a resize: its change (or its arrival in the cache) moves the claim on.
      const ref = v.spec?.claimRef;
      const owner = ref ? this.claims.get(`${ref.namespace ?? ''}/${ref.name ?? ''}`) : undefined;
      if (owner && resizeRequested(owner)) this.resizeQueue.add(objectKey(owner));
      void deleter.onVolumeChanged(v, logger).catch((err: unknown) => {
        logger.warn(
          { err, pv: objectKey(v) },
          'could not remove an unwanted delete helper; the next reconcile retries',
        );
      });
    };
    this.claims.on('add', enqueueClaim);
    this.claims.on('update', enqueueClaim);
    this.claims.on('delete', (c) => {
      const uid = c.metadata?.uid ?? '';
      provision.forget(uid);
      resize.forget(uid);
      if (!this.leading || !uid) return;
      void this.runner.removeHelper('create', volumeNameForClaim(uid), logger).catch((err: unknown) => {
        logger.warn(
          { err, pvc: objectKey(c) },
          'could not remove the create helper of a deleted claim; the sweep retries',
        );
      });
    });
    // A pod waiting for a claim is what lets a selected node be used: its arrival or change requeues the claims.
    const enqueueConsumed = (p: V1Pod) => {
      for (const claimName of claimNamesOfPod(p)) {
        const claim = this.claims.get(`${p.metadata?.namespace ?? ''}/${claimName}`);
        if (claim && !claim.spec?.volumeName) enqueueClaim(claim);
      }
    };
    this.pods.on('add', enqueueConsumed);
    this.pods.on('update', enqueueConsumed);
    this.volumes.on('add', enqueueVolume);
    this.volumes.on('update', enqueueVolume);
    const classChanged = (sc: V1StorageClass) => {
      const name = sc.metadata?.name ?? '';
      if (config.provisionerNames.includes(sc.provisioner)) metrics.initClass(name);
      for (const c of this.claims.byIndex(INDEX_CLASS, name)) enqueueClaim(c);
      for (const v of this.volumes.byIndex(INDEX_CLASS, name)) enqueueVolume(v);
    };
    this.classes.on('add', classChanged);
    this.classes.on('update', classChanged);
    // A helper's status change brings its claim or volume back to a worker (the reconcile does not wait for it).
    // Only helpers in progress here: a helper this process finished (and deleted) must not bring its claim back
    // before the claim's retry backoff.
    const helperChanged = (p: V1Pod, deleted: boolean) => {
      this.runner.onHelperEvent(p, deleted);
      if (!this.leading || !this.runner.isRunning(p.metadata?.name ?? '')) return;
      const ann = p.metadata?.annotations ?? {};
      const operation = p.metadata?.labels?.[LABEL_HELPER_OPERATION];
      if (operation === 'create' && ann[ANN_HELPER_CLAIM]) this.claimQueue.add(ann[ANN_HELPER_CLAIM]);
      if (operation === 'delete' && ann[ANN_HELPER_VOLUME]) this.volumeQueue.add(ann[ANN_HELPER_VOLUME]);
    };
    this.helpers.on('add', (p) => helperChanged(p, false));
    this.helpers.on('update', (p) => helperChanged(p, false));
    this.helpers.on('delete', (p) => helperChanged(p, true));
    this.volumes.on('delete', (v) => deleter.forget(v.metadata?.uid ?? ''));
    metrics.trackVolumes(() => (this.leading ? countVolumes(this.volumes.list(), config.provisionerNames) : []));
    metrics.trackVolumeUsage(() => (this.leading ? this.usage.series() : []));
    this.volumes.on('delete', (v) => this.usage.forget(v.metadata?.name ?? ''));
  }

  /** The reconcilers' read view over the informer caches. */
  cache(): ClusterCache {
    return {
      claim: (key) => this.claims.get(key),
      storageClass: (name) => this.classes.get(name),
      storageClasses: () => this.classes.list(),
      volume: (name) => this.volumes.get(name),
      volumes: () => this.volumes.list(),
      nodes: () => this.nodes.list(),
      node: (name) => this.nodes.get(name),
      nodeByHostname: (hostname) => this.nodes.byIndex(INDEX_HOSTNAME, hostname)[0],
      consumers: (namespace, claimName) => this.pods.byIndex(INDEX_CLAIM, `${namespace}/${claimName}`),
      helper: (name) => this.helpers.get(`${this.deps.config.namespace}/${name}`),
      helpers: () => this.helpers.list(),
    };
  }

  /** Every informer (for health and shutdown). */
  informers(): ResilientInformer<KubernetesObject>[] {
    return [
      this.claims,
      this.volumes,
      this.classes,
      this.nodes,
      this.pods,
      this.helpers,
    ] as unknown as ResilientInformer<KubernetesObject>[];
  }

  /** Starts every informer; resolves once all caches are synced. Queues do not run yet. */
  async startInformers(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.start()));
    this.deps.logger.info('informer caches synced');
  }

  /** Called when this replica becomes leader: sweep leftover helpers, then start reconciling. */
  async startLeading(): Promise<void> {
    this.leading = true;
    await this.housekeep();
    for (const c of this.claims.list()) {
      this.claimQueue.add(objectKey(c));
      if (resizeRequested(c)) this.resizeQueue.add(objectKey(c));
    }
    for (const v of this.volumes.list()) this.volumeQueue.add(objectKey(v));
    this.claimQueue.start();
    this.volumeQueue.start();
    this.resizeQueue.start();
    this.housekeeping = setInterval(() => void this.housekeep(), HOUSEKEEPING_SECONDS * 1000);
    const minutes = this.deps.config.orphanReportMinutes;
    if (minutes > 0) {
      // Not at the moment leadership starts (that burst starved the Lease renewal: review H1), and at a random point
      // of the first interval so replicas that fail over do not report in lockstep.
      const delay = firstReportDelaySeconds(minutes * 60, Math.random());
      this.firstOrphanReport = setTimeout(() => {
        void this.reportOrphans();
        this.orphanReport = setInterval(() => void this.reportOrphans(), minutes * 60 * 1000);
      }, delay * 1000);
    }
  }

  /**
   * Lists the base directories on every node: reports directories no PV points to, and records what each volume
   * uses (gauges, VolumeOverCapacity events); never throws.
   */
  async reportOrphans(): Promise<void> {
    const { config, metrics, logger } = this.deps;
    if (this.orphanReportRunning) {
      logger.info('the previous orphan report is still running; this one is skipped');
      return;
    }
    this.orphanReportRunning = true;
    try {
      await reportOrphanDirectories({
        cache: this.cache(),
        runner: this.runner,
        defaultBase: config.pvDir,
        knownBases: (node) => this.deleter.knownBaseDirectories(node),
        tolerationPolicy: config.tolerationPolicy,
        setCount: (node, count) => {
          metrics.orphanDirectories.set({ node }, count);
          this.orphanCounted.add(node);
        },
        setUsage: (node, usedBytes, complete) => this.usage.record(node, usedBytes, complete),
        logger,
      });
      for (const node of goneNodes(this.orphanCounted, this.nodes.list())) {
        metrics.orphanDirectories.remove({ node });
        this.orphanCounted.delete(node);
      }
    } catch (err) {
      logger.warn({ err }, 'orphan report failed; will retry');
    } finally {
      this.orphanReportRunning = false;
    }
  }

  /** Deletes leftover helpers; errors are logged, never thrown. */
  async housekeep(): Promise<void> {
    const { config, logger } = this.deps;
    // Helpers no reconcile stepped for long (their claim or volume stopped asking) are left to the sweep.
    this.runner.dropStale(2 * config.helperTimeoutSeconds + HOUSEKEEPING_SECONDS);
    try {
      await sweepLeftoverHelpers({
        cache: this.cache(),
        kube: this.api,
        runner: this.runner,
        namespace: config.namespace,
        provisionerNames: config.provisionerNames,
        defaultBaseDirectory: config.pvDir,
        logger,
      });
    } catch (err) {
      logger.warn({ err }, 'leftover helper sweep failed; will retry');
    }
  }

  /** Whether this replica is reconciling (holds the Lease, or runs without leader election). */
  isLeading(): boolean {
    return this.leading;
  }

  /** Stops taking work, lets in-flight reconciles finish up to `graceSeconds`, stops the informers. */
  async shutdown(graceSeconds: number): Promise<void> {
    if (this.housekeeping) clearInterval(this.housekeeping);
    if (this.orphanReport) clearInterval(this.orphanReport);
    if (this.firstOrphanReport) clearTimeout(this.firstOrphanReport);
    await Promise.all([
      this.claimQueue.shutdown(graceSeconds),
      this.volumeQueue.shutdown(graceSeconds),
      this.resizeQueue.shutdown(graceSeconds),
    ]);
    for (const i of this.informers()) i.stop();
  }
}
