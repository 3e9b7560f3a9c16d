import { PatchStrategy, setHeaderOptions, type CoreV1Event, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../runtime/logger.js';
import type { Metrics } from '../runtime/metrics.js';
import { abortable, apiErrorMessage, isNotFound } from './client.js';
import {
  EventAggregator,
  EventSpamFilter,
  type EventAggregatorOptions,
  type EventSpamFilterOptions,
} from './event-correlator.js';

/** The part of CoreV1Api the recorder uses (the real CoreV1Api satisfies it; tests pass a fake). */
export interface EventsApi {
  createNamespacedEvent(
    param: { namespace: string; body: CoreV1Event },
    options?: ReturnType<typeof setHeaderOptions>,
  ): Promise<CoreV1Event>;
  patchNamespacedEvent(
    param: { name: string; namespace: string; body: object },
    options?: ReturnType<typeof setHeaderOptions>,
  ): Promise<CoreV1Event>;
}

/** Options of {@link EventRecorder}. */
export interface EventRecorderOptions {
  /** The client Events are written with: give it its own rate limit (`KubeClients.eventsCore`). */
  readonly core: EventsApi;
  /** `source.component` and `reportingComponent`, e.g. `microk8s.io/hostpath`. */
  readonly component: string;
  /** `source.host` and `reportingInstance`: the node (or pod) name of this replica. */
  readonly host: string;
  readonly logger: Logger;
  /** Counts dropped Events (`hostpath_provisioner_events_dropped_total{reason}`). */
  readonly metrics?: Pick<Metrics, 'eventsDropped'>;
  /** Repeats within this many seconds update the existing Event; default 600 (client-go's aggregation window). */
  readonly aggregationWindowSeconds?: number;
  /** Most distinct events remembered for de-duplication (least recently used dropped first); default 4096. */
  readonly cacheSize?: number;
  /** Per-object budget (client-go's spam filter): burst 25, then one per 300 s by default. */
  readonly spamFilter?: EventSpamFilterOptions;
  /** Combining of similar events (client-go's aggregator): after 10 distinct messages in 600 s by default. */
  readonly aggregator?: EventAggregatorOptions;
  /** Event writes waiting to be sent at most; beyond, new ones are dropped. Default 1000. */
  readonly queueSize?: number;
  /** Wall clock, for the timestamps written (tests). */
  readonly now?: () => Date;
  /** Monotonic clock in ms, for windows and budgets (tests); default `performance.now`. */
  readonly monotonic?: () => number;
}

/** Event type, as in core/v1. */
export type EventType = 'Normal' | 'Warning';

/** Why an Event was not written (the `reason` label of the dropped-events counter). */
export type EventDropReason = 'spam_filter' | 'queue_full' | 'api_error';

interface Entry {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: Date;
  lastSeenMs: number;
  /** Whether the API has (or is about to have) an Event of this name: false until its create was sent. */
  created: boolean;
  /** A patch of this entry waiting in the queue: later repeats only update it. */
  pendingPatch: Write | undefined;
}

interface Write {
  op: 'create' | 'patch';
  entry: Entry;
  obj: KubernetesObject;
  type: EventType;
  reason: string;
  message: string;
  count: number;
  lastTimestamp: Date;
}

/** Longest an Event write may take before it is aborted (a hung connection must not stall the queue), ms. */
const WRITE_TIMEOUT_MS = 10_000;

/** client-go truncates messages to 1 KiB when events.k8s.io would reject them; keep Events readable either way. */
const MAX_MESSAGE = 1024;

/**
 * Records core/v1 Events on objects, as client-go's `record.EventRecorder` with its `EventCorrelator`, never in the
 * way of real work:
 * - `event()` returns at once; writes go through a bounded queue (default 1000) sent one at a time by the Events'
 *   own client, each aborted after 10 s. When the queue is full, the Event is dropped.
 * - Similar events are combined (client-go's aggregator: after 10 distinct messages for one object, type and reason
 *   within 600 s, they update one Event `(combined from similar events): …`).
 * - Repeats of the same (object, type, reason, message) within the aggregation window increment `count` and move
 *   `lastTimestamp` of the existing Event (a merge patch); a patch still waiting in the queue is updated instead of
 *   queueing another. If that Event is gone, a new one is created.
 * - Each object has a budget (client-go's spam filter: a token bucket of 25, refilled one per 300 s); events beyond
 *   it are dropped (their repeats are still counted in the next Event written).
 * - Drops are counted in `hostpath_provisioner_events_dropped_total{reason}` (`spam_filter`, `queue_full`,
 *   `api_error`) and logged at debug level.
 * - The Event lives in the object's namespace (cluster-scoped objects: `default`); its name is
 *   `<object name>.<hex nanoseconds>`; the involvedObject carries kind, apiVersion, name, namespace, uid and
 *   resourceVersion. Memory is bounded by LRUs of `cacheSize` keys and the queue size.
 * API failures are logged (warn) and never thrown.
 */
export class EventRecorder {
  private readonly opts: EventRecorderOptions;
  private readonly logger: Logger;
  private readonly cache = new Map<string, Entry>();
  private readonly windowMs: number;
  private readonly cacheSize: number;
  private readonly queueSize: number;
  private readonly spam: EventSpamFilter;
  private readonly aggregator: EventAggregator;
  private readonly mono: () => number;
  private readonly queue: Write[] = [];
  private sending: Promise<void> | undefined;

  /** @param options - see {@link EventRecorderOptions}. */
  constructor(options: EventRecorderOptions) {
    this.opts = options;
    this.logger = options.logger.child({ component: 'events' });
    this.windowMs = (options.aggregationWindowSeconds ?? 600) * 1000;
    this.cacheSize = Math.max(1, options.cacheSize ?? 4096);
    this.queueSize = Math.max(1, options.queueSize ?? 1000);
    this.spam = new EventSpamFilter({ cacheSize: this.cacheSize, ...options.spamFilter });
    this.aggregator = new EventAggregator({ cacheSize: this.cacheSize, ...options.aggregator });
    this.mono = options.monotonic ?? (() => performance.now());
  }

  /**
   * Records an Event; returns at once and never throws.
   *
   * @param obj - the involved object: `kind`, `apiVersion`, `metadata.name` (and `namespace`, `uid`) should be set.
   * @param type - Normal or Warning.
   * @param reason - UpperCamelCase reason, e.g. `ProvisioningFailed` (bounded vocabulary).
   * @param message - human-readable, truncated to 1024 characters.
   * @returns true when the Event is queued for writing (or folded into a write still waiting), false when it was
   *   dropped — the object's budget is spent or the queue is full — so the caller may say it again later.
   */
  event(obj: KubernetesObject, type: EventType, reason: string, message: string): boolean {
    try {
      return this.record(obj, type, reason, message);
    } catch (err) {
      this.logger.warn({ err, reason }, 'could not record event');
      return false;
    }
  }

  /** Resolves when every Event write queued so far has been sent (for shutdown and tests). */
  async flush(): Promise<void> {
    while (this.sending !== undefined) await this.sending;
  }

  /** Number of de-duplication keys remembered (≤ cacheSize). */
  get size(): number {
    return this.cache.size;
  }

  /** Event writes waiting to be sent (≤ queueSize). */
  get queued(): number {
    return this.queue.length;
  }

  private record(obj: KubernetesObject, type: EventType, reason: string, rawMessage: string): boolean {
    const meta = obj.metadata ?? {};
    const name = meta.name ?? '';
    const objectNamespace = meta.namespace ?? '';
    const namespace = objectNamespace === '' ? 'default' : objectNamespace;
    const truncated = rawMessage.length > MAX_MESSAGE ? `${rawMessage.slice(0, MAX_MESSAGE - 3)}...` : rawMessage;
    const objectKey = JSON.stringify([obj.kind, obj.apiVersion, objectNamespace, name, meta.uid]);
    // A full queue drops the Event before it is de-duplicated or takes a token of the object's budget: the caller may
    // say it again later (a refusal does), and that retry must not count as a repeat or spend the object's budget.
    if (this.queue.length >= this.queueSize) {
      this.drop('queue_full', reason, obj);
      return false;
    }
    const nowMs = this.mono();
    const now = this.opts.now?.() ?? new Date();

    const aggregateKey = JSON.stringify([objectKey, type, reason]);
    const aggregated = this.aggregator.aggregate(aggregateKey, truncated, nowMs);
    const message =
      aggregated.message.length > MAX_MESSAGE
        ? `${aggregated.message.slice(0, MAX_MESSAGE - 3)}...`
        : aggregated.message;
    const key = aggregated.combined ? aggregateKey : JSON.stringify([objectKey, type, reason, truncated]);

    // De-duplicate first (as client-go's eventObserve does before the filter), so that repeats the budget drops are
    // still counted in the next Event written.
    let entry = this.cache.get(key);
    let op: 'create' | 'patch';
    if (entry !== undefined && nowMs - entry.lastSeenMs <= this.windowMs) {
      entry.count += 1;
      entry.lastSeenMs = nowMs;
      op = entry.created ? 'patch' : 'create';
    } else {
      entry = {
        name: eventName(name, now),
        namespace,
        count: 1,
        firstTimestamp: now,
        lastSeenMs: nowMs,
        created: false,
        pendingPatch: undefined,
      };
      op = 'create';
    }
    this.cache.delete(key); // LRU: move to the end
    this.cache.set(key, entry);
    while (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }

    if (!this.spam.allow(objectKey, nowMs)) {
      this.drop('spam_filter', reason, obj);
      return false;
    }
    const pending = entry.pendingPatch;
    if (op === 'patch' && pending !== undefined) {
      // A patch of this Event is still waiting: let it carry the newest count instead of queueing another.
      pending.count = entry.count;
      pending.lastTimestamp = now;
      pending.message = message;
      return true;
    }
    const write: Write = { op, entry, obj, type, reason, message, count: entry.count, lastTimestamp: now };
    if (op === 'create') entry.created = true;
    else entry.pendingPatch = write;
    this.queue.push(write);
    this.sending ??= this.drain().finally(() => {
      this.sending = undefined;
    });
    return true;
  }

  private drop(why: EventDropReason, reason: string, obj: KubernetesObject): void {
    this.opts.metrics?.eventsDropped.inc({ reason: why });
    this.logger.debug({ why, reason, kind: obj.kind, object: obj.metadata?.name }, 'event dropped');
  }

  /** Sends queued writes one at a time (the Events' own rate limit paces them) until the queue is empty. */
  private async drain(): Promise<void> {
    for (let w = this.queue.shift(); w !== undefined; w = this.queue.shift()) {
      if (w.entry.pendingPatch === w) w.entry.pendingPatch = undefined;
      try {
        await this.send(w);
      } catch (err) {
        this.logger.warn({ err }, 'event write failed');
      }
    }
  }

  private async send(w: Write): Promise<void> {
    const meta = w.obj.metadata ?? {};
    const objectNamespace = meta.namespace ?? '';
    const log = this.logger.child({
      kind: w.obj.kind,
      object: objectNamespace ? `${objectNamespace}/${meta.name ?? ''}` : meta.name,
    });
    if (w.op === 'patch') {
      try {
        await this.opts.core.patchNamespacedEvent(
          {
            name: w.entry.name,
            namespace: w.entry.namespace,
            body: { count: w.count, lastTimestamp: w.lastTimestamp.toISOString(), message: w.message },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch, abortable(AbortSignal.timeout(WRITE_TIMEOUT_MS))),
        );
        return;
      } catch (err) {
        if (!isNotFound(err)) {
          this.drop('api_error', w.reason, w.obj);
          log.warn({ err, reason: w.reason, detail: apiErrorMessage(err) }, 'could not update event');
          return;
        }
        // Deleted meanwhile (events expire after an hour by default): start a new one.
        w.entry.name = eventName(meta.name ?? '', w.lastTimestamp);
        w.entry.count = 1;
        w.entry.firstTimestamp = w.lastTimestamp;
        w.count = 1;
      }
    }
    await this.create(w, log);
  }

  private async create(w: Write, log: Logger): Promise<void> {
    const { entry, obj } = w;
    const meta = obj.metadata ?? {};
    const involvedObject: CoreV1Event['involvedObject'] = {};
    if (obj.kind !== undefined) involvedObject.kind = obj.kind;
    if (obj.apiVersion !== undefined) involvedObject.apiVersion = obj.apiVersion;
    if (meta.name !== undefined) involvedObject.name = meta.name;
    if (meta.namespace !== undefined && meta.namespace !== '') involvedObject.namespace = meta.namespace;
    if (meta.uid !== undefined) involvedObject.uid = meta.uid;
    if (meta.resourceVersion !== undefined) involvedObject.resourceVersion = meta.resourceVersion;
    const body: CoreV1Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: entry.name, namespace: entry.namespace },
      involvedObject,
      type: w.type,
      reason: w.reason,
      message: w.message,
      count: w.count,
      firstTimestamp: entry.firstTimestamp,
      lastTimestamp: w.lastTimestamp,
      source: { component: this.opts.component, host: this.opts.host },
      reportingComponent: this.opts.component,
      reportingInstance: this.opts.host,
    };
    try {
      await this.opts.core.createNamespacedEvent(
        { namespace: entry.namespace, body },
        abortable(AbortSignal.timeout(WRITE_TIMEOUT_MS)),
      );
    } catch (err) {
      this.drop('api_error', w.reason, obj);
      log.warn({ err, reason: w.reason, detail: apiErrorMessage(err) }, 'could not create event');
    }
  }
}

/** client-go's event name: `<object name>.<unix nanoseconds in hex>`. */
function eventName(objectName: string, now: Date): string {
  const nanos = BigInt(now.getTime()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000));
  return `${objectName}.${nanos.toString(16)}`;
}
