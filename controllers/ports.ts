import type {
  KubernetesObject,
  V1Node,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1StorageClass,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { HelperFailureReason } from '../src/domain/helper-status.js';
import type { HelperOperation } from '../src/domain/names.js';

/**
 * What the reconcilers read: informer caches (never a list call per reconcile). Implemented over the resilient
 * informers in `src/kube/`; faked in unit tests.
 */
export interface ClusterCache {
  /** Claim by `namespace/name`. */
  claim(key: string): V1PersistentVolumeClaim | undefined;
  storageClass(name: string): V1StorageClass | undefined;
  storageClasses(): V1StorageClass[];
  volume(name: string): V1PersistentVolume | undefined;
  volumes(): V1PersistentVolume[];
  nodes(): V1Node[];
  /** Node by name. */
  node(name: string): V1Node | undefined;
  /** Node whose `kubernetes.io/hostname` label (else name) equals `hostname`. */
  nodeByHostname(hostname: string): V1Node | undefined;
  /** Pending pods in `namespace` that mount the claim (an index on the pod cache). */
  consumers(namespace: string, claimName: string): V1Pod[];
  /** Our helper pod by name (in the provisioner's namespace). */
  helper(name: string): V1Pod | undefined;
  helpers(): V1Pod[];
}

/** Result of a create call: created now, or found existing (HTTP 409 AlreadyExists) and read back. */
export type CreateResult<T> =
  { readonly created: true; readonly object: T } | { readonly created: false; readonly object: T | undefined };

/** The writes (and the few live reads) the reconcilers make. Implemented in `src/kube/provisioner-api.ts`. */
export interface KubeWriter {
  /** Live read of a node (taints change: never trust the cache for them). Undefined when it does not exist. */
  getNode(name: string): Promise<V1Node | undefined>;
  /**
   * Live lookup of the node a volume is pinned to: the node whose `kubernetes.io/hostname` label equals `hostname`
   * (a label-selected list), else the node named `hostname`. Undefined only when the API server knows neither.
   */
  findNode(hostname: string): Promise<V1Node | undefined>;
  /** Live read of a PV (never the cache: used right before destructive work). Undefined when it does not exist. */
  readVolume(name: string): Promise<V1PersistentVolume | undefined>;
  /** Live read of a claim (used right before a PV is created for it). Undefined when it does not exist. */
  readClaim(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined>;
  createVolume(pv: V1PersistentVolume): Promise<CreateResult<V1PersistentVolume>>;
  /**
   * Deletes a PV with a uid precondition; NotFound and Conflict (another object of that name: not ours) are success.
   * Returns the PV as the API server answered (with its deletionTimestamp while finalizers hold it), else undefined.
   */
  deleteVolume(name: string, uid: string): Promise<V1PersistentVolume | undefined>;
  /**
   * Adds a finalizer to a PV if missing: a JSON patch guarded by the finalizer list as read (by the resourceVersion
   * when there is none), read again and retried when the guard fails; NotFound is success. With `current` (the PV as
   * the cache or the API server last showed it), the first attempt patches against it instead of reading the PV.
   */
  addVolumeFinalizer(name: string, finalizer: string, current?: V1PersistentVolume): Promise<void>;
  /**
   * Removes a finalizer from a PV if present: a JSON patch that removes that list entry by index, guarded by a `test`
   * of the entry, so only a shift of the list (not the PV controller's other writes) makes it retry; NotFound is
   * success. `current` as for {@link addVolumeFinalizer}.
   */
  removeVolumeFinalizer(name: string, finalizer: string, current?: V1PersistentVolume): Promise<void>;
  /**
   * Removes one annotation from a claim (used to hand a claim back to the scheduler), only while it still has the
   * value the caller saw (JSON-patch `test`). NotFound and a changed or removed value are success (nothing to do).
   */
  removeClaimAnnotation(claim: V1PersistentVolumeClaim, key: string): Promise<void>;
  /**
   * JSON-merge-patches a claim's `status` subresource (a patch with `metadata.resourceVersion` applies only to that
   * version: 409 Conflict otherwise). Resolves to the updated claim, or undefined when the claim does not exist.
   */
  patchClaimStatus(namespace: string, name: string, patch: object): Promise<V1PersistentVolumeClaim | undefined>;
  /** JSON-merge-patches a PV. Resolves to the updated PV, or undefined when it does not exist. */
  patchVolume(name: string, patch: object): Promise<V1PersistentVolume | undefined>;
  createPod(pod: V1Pod): Promise<CreateResult<V1Pod>>;
  /** Deletes a pod (grace period 0), optionally only if its uid matches; NotFound is success. */
  deletePod(namespace: string, name: string, uid?: string): Promise<void>;
  /** Last `tailLines` lines of a container's log, or a note saying why it is unavailable (never throws). */
  readPodLog(
    namespace: string,
    name: string,
    container: string,
    tailLines: number,
    limitBytes?: number,
  ): Promise<string>;
}

/** Event type. */
export type EventType = 'Normal' | 'Warning';

/** Records Kubernetes Events on objects; fire and forget, never throws. Repeats update the count. */
export interface EventSink {
  /** @returns true when the Event will be written, false when it was dropped (budget or queue full). */
  event(object: KubernetesObject, type: EventType, reason: string, message: string): boolean;
}

/** Phases of an operation (metric label `phase`). */
export type Phase = 'queue_wait' | 'helper_scheduling' | 'helper_run' | 'pv_create';

/** Helper pod outcomes (metric label `outcome`). */
export type HelperOutcome = 'succeeded' | HelperFailureReason;

/** What the reconcilers measure. Durations in seconds. Implemented over `src/runtime/metrics.ts`. */
export interface ControllerMetrics {
  provisionFinished(className: string, source: string, ok: boolean, seconds: number): void;
  deleteFinished(className: string, ok: boolean, seconds: number): void;
  /** Claim created (or selected node set) → PV created. */
  provisionLatency(className: string, seconds: number): void;
  phase(operation: HelperOperation, phase: Phase, seconds: number): void;
  helperOutcome(operation: HelperOperation, outcome: HelperOutcome): void;
}

/** Milliseconds since the epoch; injected so tests control time. */
export type Clock = () => number;

/** Context of one reconcile run. */
export interface ReconcileContext {
  readonly logger: Logger;
}

/** Result of a reconcile: nothing, or run again after some seconds. A thrown error retries with backoff. */
export type ReconcileResult = void | { readonly requeueAfterSeconds: number };
