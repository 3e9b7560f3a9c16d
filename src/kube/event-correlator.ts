/**
 * The two spam defences of client-go's event recorder (`tools/record/events_cache.go`), without I/O and with the
 * clock passed in: a per-object token bucket ({@link EventSpamFilter}) and the aggregation of similar events
 * ({@link EventAggregator}). Both keep at most `cacheSize` keys (least recently used dropped first), as client-go's
 * LRU of 4096 entries does.
 */

/** A small LRU map: `get` and `set` make a key the most recent; beyond `size` keys the oldest goes. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly size: number) {}

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.size) {
      const oldest = this.map.keys().next().value;
      if (oldest === undefined) break;
      this.map.delete(oldest);
    }
  }

  get length(): number {
    return this.map.size;
  }
}

/** Options of {@link EventSpamFilter}. */
export interface EventSpamFilterOptions {
  /** Events an object may get at once, default 25 (client-go's `defaultSpamBurst`). */
  readonly burst?: number;
  /** Refill, tokens per second; default 1/300 (client-go's `defaultSpamQPS`: one event per 5 minutes). */
  readonly qps?: number;
  /** Objects remembered, default 4096. */
  readonly cacheSize?: number;
}

/**
 * client-go's `EventSourceObjectSpamFilter`: one token bucket per source and involved object (whatever the reason or
 * message), full when first seen; each event takes a token, and an event finding the bucket empty is dropped.
 */
export class EventSpamFilter {
  private readonly burst: number;
  private readonly qps: number;
  private readonly buckets: Lru<{ tokens: number; lastMs: number }>;

  /**
   * @param options - see {@link EventSpamFilterOptions}.
   * @throws RangeError when burst < 1 or qps ≤ 0.
   */
  constructor(options: EventSpamFilterOptions = {}) {
    this.burst = options.burst ?? 25;
    this.qps = options.qps ?? 1 / 300;
    if (!(this.burst >= 1) || !(this.qps > 0)) throw new RangeError('spam filter: burst must be ≥ 1 and qps > 0');
    this.buckets = new Lru(Math.max(1, options.cacheSize ?? 4096));
  }

  /**
   * Takes a token for an object's event.
   *
   * @param objectKey - source and involved object (kind, namespace, name, uid, apiVersion).
   * @param nowMs - monotonic clock, milliseconds.
   * @returns true when the event may be written, false when it is to be dropped.
   */
  allow(objectKey: string, nowMs: number): boolean {
    const b = this.buckets.get(objectKey) ?? { tokens: this.burst, lastMs: nowMs };
    b.tokens = Math.min(this.burst, b.tokens + (Math.max(0, nowMs - b.lastMs) / 1000) * this.qps);
    b.lastMs = nowMs;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.buckets.set(objectKey, b);
    return ok;
  }
}

/** Options of {@link EventAggregator}. */
export interface EventAggregatorOptions {
  /** Distinct messages of one (object, type, reason) before they are combined; default 10 (`defaultAggregateMaxEvents`). */
  readonly maxEvents?: number;
  /** Window in seconds, restarted by each event; default 600 (`defaultAggregateIntervalInSeconds`). */
  readonly intervalSeconds?: number;
  /** Aggregation keys remembered, default 4096. */
  readonly cacheSize?: number;
}

/** What {@link EventAggregator.aggregate} decided. */
export interface Aggregated {
  /** The message to record: the original, or `(combined from similar events): <message>`. */
  readonly message: string;
  /** Whether the event was combined; then the caller de-duplicates on the aggregate key instead of the message. */
  readonly combined: boolean;
}

/** client-go's message prefix of a combined event. */
export const COMBINED_PREFIX = '(combined from similar events): ';

/**
 * client-go's `EventAggregator` with `EventAggregatorByReasonFunc`: events of one object with the same type and
 * reason but different messages are similar. Once `maxEvents` distinct messages have been seen within the interval
 * (each event restarts it), further similar events are combined: they all update one Event whose message is the
 * latest one with the {@link COMBINED_PREFIX}.
 */
export class EventAggregator {
  private readonly maxEvents: number;
  private readonly intervalMs: number;
  private readonly records: Lru<{ messages: Set<string>; lastMs: number }>;

  /**
   * @param options - see {@link EventAggregatorOptions}.
   * @throws RangeError when maxEvents < 1 or the interval is not positive.
   */
  constructor(options: EventAggregatorOptions = {}) {
    this.maxEvents = options.maxEvents ?? 10;
    this.intervalMs = (options.intervalSeconds ?? 600) * 1000;
    if (!(this.maxEvents >= 1) || !(this.intervalMs > 0)) throw new RangeError('aggregator: bad maxEvents/interval');
    this.records = new Lru(Math.max(1, options.cacheSize ?? 4096));
  }

  /**
   * @param aggregateKey - source, involved object, type and reason.
   * @param message - the event's message (client-go's "local key").
   * @param nowMs - monotonic clock, milliseconds.
   * @returns the message to record and whether it was combined.
   */
  aggregate(aggregateKey: string, message: string, nowMs: number): Aggregated {
    let record = this.records.get(aggregateKey);
    if (record === undefined || nowMs - record.lastMs > this.intervalMs)
      record = { messages: new Set(), lastMs: nowMs };
    record.messages.add(message);
    record.lastMs = nowMs;
    this.records.set(aggregateKey, record);
    if (record.messages.size < this.maxEvents) return { message, combined: false };
    // Keep the set bounded, as client-go's PopAny does.
    const first = record.messages.values().next().value;
    if (first !== undefined) record.messages.delete(first);
    return { message: `${COMBINED_PREFIX}${message}`, combined: true };
  }
}
