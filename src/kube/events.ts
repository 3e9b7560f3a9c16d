import { PatchStrategy, setHeaderOptions, type CoreV1Event, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from '../runtime/logger.js';
import { apiErrorMessage, isNotFound } from './client.js';

/** The part of CoreV1Api the recorder uses (the real CoreV1Api satisfies it; tests pass a fake). */
export interface EventsApi {
  createNamespacedEvent(param: { namespace: string; body: CoreV1Event }): Promise<CoreV1Event>;
  patchNamespacedEvent(
    param: { name: string; namespace: string; body: object },
    options?: ReturnType<typeof setHeaderOptions>,
  ): Promise<CoreV1Event>;
}

/** Options of {@link EventRecorder}. */
export interface EventRecorderOptions {
  readonly core: EventsApi;
  /** `source.component` and `reportingComponent`, e.g. `microk8s.io/hostpath`. */
  readonly component: string;
  /** `source.host` and `reportingInstance`: the node (or pod) name of this replica. */
  readonly host: string;
  readonly logger: Logger;
  /** Repeats within this many seconds update the existing Event; default 600 (client-go's aggregation window). */
  readonly aggregationWindowSeconds?: number;
  /** Most distinct events remembered for aggregation (least recently used dropped first); default 4096. */
  readonly cacheSize?: number;
  /** Wall clock (tests). */
  readonly now?: () => Date;
}

/** Event type, as in core/v1. */
export type EventType = 'Normal' | 'Warning';

interface Entry {
  name: string;
  namespace: string;
  count: number;
  firstTimestamp: Date;
  lastSeenMs: number;
  /** Serialises the API calls of one aggregation key (create before patch). */
  chain: Promise<void>;
}

/** client-go truncates messages to 1 KiB when events.k8s.io would reject them; keep Events readable either way. */
const MAX_MESSAGE = 1024;

/**
 * Records core/v1 Events on objects, fire-and-forget, as client-go's `record.EventRecorder`:
 * - the Event lives in the object's namespace; cluster-scoped objects (PVs, nodes) get theirs in `default`;
 * - the name is `<object name>.<hex nanoseconds>`, the involvedObject carries kind, apiVersion, name, namespace, uid
 *   and resourceVersion;
 * - the same (object, type, reason, message) again within the aggregation window increments `count` and moves
 *   `lastTimestamp` of the existing Event (a merge patch) instead of creating another object; if that Event is gone,
 *   a new one is created;
 * - memory is bounded: an LRU of at most `cacheSize` keys.
 * API failures are logged (warn) and never thrown.
 */
export class EventRecorder {
  private readonly opts: EventRecorderOptions;
  private readonly logger: Logger;
  private readonly cache = new Map<string, Entry>();
  private readonly windowMs: number;
  private readonly cacheSize: number;
  private pending = new Set<Promise<void>>();

  constructor(options: EventRecorderOptions) {
    this.opts = options;
    this.logger = options.logger.child({ component: 'events' });
    this.windowMs = (options.aggregationWindowSeconds ?? 600) * 1000;
    this.cacheSize = Math.max(1, options.cacheSize ?? 4096);
  }

  /**
   * Records an Event; returns at once and never throws.
   *
   * @param obj - the involved object: `kind`, `apiVersion`, `metadata.name` (and `namespace`, `uid`) should be set.
   * @param type - Normal or Warning.
   * @param reason - UpperCamelCase reason, e.g. `ProvisioningFailed` (bounded vocabulary).
   * @param message - human-readable, truncated to 1024 characters.
   */
  event(obj: KubernetesObject, type: EventType, reason: string, message: string): void {
    try {
      const p = this.record(obj, type, reason, message);
      this.pending.add(p);
      void p.finally(() => this.pending.delete(p));
    } catch (err) {
      this.logger.warn({ err, reason }, 'could not record event');
    }
  }

  /** Resolves when every Event API call started so far has finished (for shutdown and tests). */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Number of aggregation keys remembered (≤ cacheSize). */
  get size(): number {
    return this.cache.size;
  }

  private record(obj: KubernetesObject, type: EventType, reason: string, rawMessage: string): Promise<void> {
    const meta = obj.metadata ?? {};
    const name = meta.name ?? '';
    const objectNamespace = meta.namespace ?? '';
    const namespace = objectNamespace === '' ? 'default' : objectNamespace;
    const message = rawMessage.length > MAX_MESSAGE ? `${rawMessage.slice(0, MAX_MESSAGE - 3)}...` : rawMessage;
    const key = JSON.stringify([obj.kind, obj.apiVersion, objectNamespace, name, meta.uid, type, reason, message]);
    const now = this.opts.now?.() ?? new Date();
    const nowMs = performance.now();
    const log = this.logger.child({ kind: obj.kind, object: objectNamespace ? `${objectNamespace}/${name}` : name });

    const existing = this.cache.get(key);
    if (existing !== undefined && nowMs - existing.lastSeenMs <= this.windowMs) {
      this.cache.delete(key); // LRU: move to the end
      this.cache.set(key, existing);
      existing.count += 1;
      existing.lastSeenMs = nowMs;
      const count = existing.count;
      existing.chain = existing.chain.then(async () => {
        try {
          await this.opts.core.patchNamespacedEvent(
            {
              name: existing.name,
              namespace: existing.namespace,
              body: { count, lastTimestamp: now.toISOString(), message },
            },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          );
        } catch (err) {
          if (isNotFound(err)) {
            // Deleted meanwhile (events expire after an hour by default): start a new one.
            existing.name = eventName(name, now);
            existing.count = 1;
            existing.firstTimestamp = now;
            await this.create(existing, obj, type, reason, message, now, log);
          } else log.warn({ err, reason, detail: apiErrorMessage(err) }, 'could not update event');
        }
      });
      return existing.chain;
    }

    const entry: Entry = {
      name: eventName(name, now),
      namespace,
      count: 1,
      firstTimestamp: now,
      lastSeenMs: nowMs,
      chain: Promise.resolve(),
    };
    this.cache.delete(key);
    this.cache.set(key, entry);
    while (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
    entry.chain = this.create(entry, obj, type, reason, message, now, log);
    return entry.chain;
  }

  private async create(
    entry: Entry,
    obj: KubernetesObject,
    type: EventType,
    reason: string,
    message: string,
    now: Date,
    log: Logger,
  ): Promise<void> {
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
      type,
      reason,
      message,
      count: entry.count,
      firstTimestamp: entry.firstTimestamp,
      lastTimestamp: now,
      source: { component: this.opts.component, host: this.opts.host },
      reportingComponent: this.opts.component,
      reportingInstance: this.opts.host,
    };
    try {
      await this.opts.core.createNamespacedEvent({ namespace: entry.namespace, body });
    } catch (err) {
      log.warn({ err, reason, detail: apiErrorMessage(err) }, 'could not create event');
    }
  }
}

/** client-go's event name: `<object name>.<unix nanoseconds in hex>`. */
function eventName(objectName: string, now: Date): string {
  const nanos = BigInt(now.getTime()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000));
  return `${objectName}.${nanos.toString(16)}`;
}
