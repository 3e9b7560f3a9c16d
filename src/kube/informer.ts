import { Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
// Not re-exported by the package index (2.0.1); the package has no "exports" map, so the deep path is stable to import.
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import { backoffSeconds } from '../runtime/backoff.js';
import type { Logger } from '../runtime/logger.js';
import type { Metrics } from '../runtime/metrics.js';
import { apiErrorMessage, apiStatusCode } from './client.js';
import { matchesLabelSelector, parseLabelSelector, type LabelRequirement } from './label-selector.js';
import { Sleeper } from '../runtime/sleeper.js';

/** Informer notifications. */
export type InformerEvent = 'add' | 'update' | 'delete';
/** A notification handler: `old` is the previous cached object for `update` (the same object on a resync). */
export type InformerHandler<T> = (obj: T, old?: T) => void;

/**
 * What the informer hands to the list function: the selectors (so that it filters exactly as the watch does) and,
 * for a paginated list, the page size and the continue token of the previous page (client-node's parameter names).
 */
export interface ListOptions {
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** Most items per page (client-go's pager asks 500). */
  readonly limit?: number;
  /** `metadata.continue` of the previous page. */
  readonly _continue?: string;
}

/** Items per list page, as client-go's reflector/pager (`defaultPageSize`). */
export const LIST_PAGE_SIZE = 500;

/**
 * Client-side watch inactivity timeout, seconds. client-node aborts a watch that received nothing for 30 s by default;
 * the API server sends a bookmark to an idle watch about once a minute, so with 30 s an idle watch kept reconnecting
 * from a resourceVersion that never advanced. Longer than the bookmark interval, shorter than the 3 minutes after
 * which `/healthz` calls an informer silent.
 */
export const WATCH_INACTIVITY_TIMEOUT_SECONDS = 150;

/** The watch primitive (client-node's `Watch#watch`); injectable for unit tests. */
export interface WatchLike {
  watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController>;
}

/** Options of {@link ResilientInformer}. */
export interface ResilientInformerOptions<T extends KubernetesObject> {
  /** Metric label and log field, e.g. `persistentvolumeclaims`. */
  readonly resource: string;
  /** Watch path, e.g. `/api/v1/persistentvolumeclaims` or `/api/v1/namespaces/kube-system/pods`. */
  readonly path: string;
  /**
   * Lists the resource. Receives the informer's selectors: pass them on (e.g.
   * `(o) => core.listNamespacedPod({ namespace, ...o })`). Items not matching the label selector are dropped anyway.
   */
  readonly list: (options: ListOptions) => Promise<KubernetesListObject<T>>;
  readonly kc: KubeConfig;
  readonly labelSelector?: string;
  /** Passed to list and watch; not re-checked client side. */
  readonly fieldSelector?: string;
  /** Every this many seconds, `update(obj, obj)` is emitted for every cached object; 0 disables. Default 300. */
  readonly resyncSeconds?: number;
  readonly metrics?: Metrics;
  readonly logger: Logger;
  /** Restart backoff, seconds (default 1 doubling to 30, with jitter). */
  readonly backoff?: { readonly baseSeconds: number; readonly maxSeconds: number };
  /**
   * Strips what the code never reads before an object is cached (as client-go's `SetTransform`): applied to every list
   * item and watch object, after kind/apiVersion are filled in. Must return an object with the same metadata name,
   * namespace and resourceVersion. Default: none.
   */
  readonly transform?: (obj: T) => T;
  /** Items per list page; 0 lists in one request. Default {@link LIST_PAGE_SIZE}. */
  readonly pageSize?: number;
  /** Client-side watch inactivity timeout, seconds. Default {@link WATCH_INACTIVITY_TIMEOUT_SECONDS}. */
  readonly watchInactivityTimeoutSeconds?: number;
  /** Turns a raw watch object into T (default: client-node's ObjectSerializer by apiVersion/kind, so dates are Dates). */
  readonly deserialize?: (raw: unknown) => T;
  /** Watch implementation (default `new Watch(kc)`); for unit tests. */
  readonly watch?: WatchLike;
  /** Uniform random source for jitter (tests). */
  readonly random?: () => number;
}

/** Thrown inside the loop when the API server answers 410 Gone: the resourceVersion is too old, relist. */
class GoneError extends Error {
  override readonly name = 'GoneError';
  readonly statusCode = 410;
}

/**
 * Cache key of an object: `namespace/name`, or `name` for cluster-scoped objects (client-go's
 * `MetaNamespaceKeyFunc`).
 */
export function objectKey(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return ns !== undefined && ns !== '' ? `${ns}/${name}` : name;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * Default deserializer: client-node's ObjectSerializer with the model named after the object's version and kind
 * (`v1` + `Pod` → `V1Pod`), so watch objects look like list objects (timestamps as Date). Unknown kinds keep their
 * fields, with metadata deserialized.
 */
export function deserializeKubernetesObject<T extends KubernetesObject>(raw: unknown): T {
  const rec = raw as { apiVersion?: unknown; kind?: unknown };
  if (typeof rec.apiVersion !== 'string' || typeof rec.kind !== 'string') return raw as T;
  const version = rec.apiVersion.split('/').pop() ?? '';
  return ObjectSerializer.deserialize(raw, `${capitalize(version)}${rec.kind}`) as T;
}

/**
 * An informer that never stops silently: a cache of one resource kept current by list + watch, with change
 * notifications, incremental indexes and periodic resync.
 *
 * Unlike client-node's `makeInformer`/`ListWatch` (which stop for good on any error but 410), every list or watch
 * failure restarts it with exponential backoff and jitter, counted in `hostpath_provisioner_informer_restarts_total`
 * and logged. After a failure it relists and emits the difference against the cache (adds, updates of changed
 * resourceVersions, deletes of vanished objects), as client-go's reflector `Replace` does. A 410 Gone (as an HTTP
 * status or an ERROR event) relists at once. A watch that ends normally (server timeout, the client-side inactivity
 * timeout) resumes from the last resourceVersion without a relist; bookmarks are requested to keep it fresh, and the
 * inactivity timeout ({@link WATCH_INACTIVITY_TIMEOUT_SECONDS}) is longer than the server's bookmark interval, so an
 * idle watch is not restarted. Lists are paginated as client-go's pager does (pages of {@link LIST_PAGE_SIZE}; when a
 * continue token has expired, 410, one full list instead). A `transform` strips each object before it is cached.
 *
 * Cached objects are shared: handlers and readers must not mutate them. Handlers run synchronously; a throwing
 * handler is logged and does not affect the informer or other handlers.
 */
export class ResilientInformer<T extends KubernetesObject> {
  readonly resource: string;
  private readonly opts: ResilientInformerOptions<T>;
  private readonly logger: Logger;
  private readonly watcher: WatchLike;
  private readonly selector: LabelRequirement[] | undefined;
  private readonly cache = new Map<string, T>();
  private readonly handlers: { [E in InformerEvent]: InformerHandler<T>[] } = { add: [], update: [], delete: [] };
  private readonly indexes = new Map<
    string,
    { fn: (obj: T) => string[]; byValue: Map<string, Set<string>>; byKey: Map<string, string[]> }
  >();
  private resourceVersion: string | undefined;
  private synced = false;
  private stopped = false;
  private startPromise: Promise<void> | undefined;
  private resolveStart: (() => void) | undefined;
  private abort: AbortController | undefined;
  private readonly sleeper = new Sleeper();
  private resyncTimer: NodeJS.Timeout | undefined;
  private lastContact = performance.now();

  /**
   * @param options - see {@link ResilientInformerOptions}.
   * @throws Error when the label selector cannot be parsed.
   */
  constructor(options: ResilientInformerOptions<T>) {
    this.resource = options.resource;
    this.opts = options;
    this.logger = options.logger.child({ informer: options.resource });
    this.watcher = options.watch ?? ResilientInformer.defaultWatch(options);
    this.selector = options.labelSelector !== undefined ? parseLabelSelector(options.labelSelector) : undefined;
    options.metrics?.trackInformer(options.resource, () => this.lastEventAgeSeconds());
  }

  private static defaultWatch<T extends KubernetesObject>(options: ResilientInformerOptions<T>): WatchLike {
    const watch = new Watch(options.kc);
    // Declared private in client-node 2.0.1's types, but a plain instance field its watch() reads for both the connect
    // and the inactivity timer (dist/watch.js); test/kube-informer-http.test.ts checks that it takes effect.
    (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs =
      (options.watchInactivityTimeoutSeconds ?? WATCH_INACTIVITY_TIMEOUT_SECONDS) * 1000;
    return watch;
  }

  /**
   * Registers a handler. Register before `start()` to see the initial adds.
   * @param event - `add` (obj), `update` (obj, old), `delete` (last known obj).
   */
  on(event: InformerEvent, handler: InformerHandler<T>): void {
    this.handlers[event].push(handler);
  }

  /**
   * Starts list + watch in the background.
   * @returns a promise that resolves after the first full list is in the cache (retrying failed lists with backoff
   *   meanwhile), or when `stop()` is called first. Calling again returns the same promise.
   */
  start(): Promise<void> {
    if (this.startPromise) return this.startPromise;
    this.stopped = false;
    this.startPromise = new Promise<void>((resolve) => {
      this.resolveStart = resolve;
    });
    const resync = this.opts.resyncSeconds ?? 300;
    if (resync > 0) {
      this.resyncTimer = setInterval(() => this.resync(), resync * 1000);
      this.resyncTimer.unref();
    }
    void this.loop();
    return this.startPromise;
  }

  /** Stops watching; the cache keeps its content, no more notifications are emitted. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    this.abort?.abort();
    this.sleeper.wake();
    this.resolveStart?.();
  }

  /**
   * @param key - `namespace/name`, or `name` for cluster-scoped objects.
   * @returns the cached object, or undefined.
   */
  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  /** @returns every cached object (a new array; the objects are shared). */
  list(): T[] {
    return [...this.cache.values()];
  }

  /**
   * Adds an index, maintained incrementally on every cache change (existing objects are indexed at once).
   * @param name - index name.
   * @param fn - index values of an object (e.g. a pod's claim names `namespace/claim`); may return [].
   * @throws Error when an index of that name exists.
   */
  addIndex(name: string, fn: (obj: T) => string[]): void {
    if (this.indexes.has(name)) throw new Error(`index ${name} already exists`);
    this.indexes.set(name, { fn, byValue: new Map(), byKey: new Map() });
    for (const [key, obj] of this.cache) this.indexObject(key, obj);
  }

  /**
   * @param name - index name given to `addIndex`.
   * @param value - index value.
   * @returns the cached objects with that value (empty when none).
   * @throws Error for an unknown index.
   */
  byIndex(name: string, value: string): T[] {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`unknown index ${name}`);
    const out: T[] = [];
    for (const key of index.byValue.get(value) ?? []) {
      const obj = this.cache.get(key);
      if (obj !== undefined) out.push(obj);
    }
    return out;
  }

  /** True once the first full list is in the cache (stays true across restarts, as in client-go). */
  hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Seconds since the informer last heard from the API server: a list, a watch established, an event or bookmark,
   * or a clean watch end. With the server's bookmarks (about one a minute) a healthy informer stays below ~60 s even
   * for a quiet resource, and below the inactivity timeout in any case; a larger value means the list/watch keeps
   * failing.
   */
  lastEventAgeSeconds(): number {
    return (performance.now() - this.lastContact) / 1000;
  }

  // ---- the loop ---------------------------------------------------------------------------------------------------

  private async loop(): Promise<void> {
    let failures = 0;
    let lastWasGone = false;
    while (!this.stopped) {
      try {
        if (this.resourceVersion === undefined) await this.relist();
        if (this.stopped) break;
        const outcome = await this.watchOnce(this.resourceVersion ?? '');
        if (outcome.events === 0 && outcome.seconds < 1) throw new Error('watch closed at once without events');
        failures = 0;
        lastWasGone = false;
      } catch (err) {
        if (this.stopped) break;
        if ((err as { name?: unknown } | undefined)?.name === 'TimeoutError') {
          // client-node's inactivity timeout: nothing wrong with our resourceVersion, resume the watch.
          this.logger.debug('watch idle timeout, resuming');
          continue;
        }
        this.resourceVersion = undefined;
        this.opts.metrics?.informerRestarts.inc({ resource: this.resource });
        const gone = apiStatusCode(err) === 410;
        if (gone && !lastWasGone) {
          lastWasGone = true;
          this.logger.info('resourceVersion expired (410 Gone), relisting');
          continue;
        }
        failures++;
        const delay = backoffSeconds(
          failures,
          this.opts.backoff?.baseSeconds ?? 1,
          this.opts.backoff?.maxSeconds ?? 30,
          this.opts.random,
        );
        this.logger.warn(
          { err, reason: apiErrorMessage(err), attempt: failures, retryInSeconds: Math.round(delay * 1000) / 1000 },
          'list/watch failed, restarting',
        );
        await this.sleeper.sleep(delay);
      }
    }
  }

  private async relist(): Promise<void> {
    const list = await this.listAll();
    if (list === undefined || this.stopped) return;
    this.replace(list.items);
    this.resourceVersion = list.resourceVersion;
    if (!this.synced) {
      this.synced = true;
      this.logger.info({ objects: this.cache.size }, 'cache synced');
      this.resolveStart?.();
    }
  }

  /**
   * Lists every object in pages, as client-go's pager: `limit` per page, following `metadata.continue`; the
   * resourceVersion is the last page's (a consistent snapshot). A 410 Gone on a continue token (it expired) falls back
   * to one full list without `limit`. Items are filtered by the label selector and transformed page by page.
   */
  private async listAll(): Promise<{ items: T[]; resourceVersion: string } | undefined> {
    const selectors: { labelSelector?: string; fieldSelector?: string } = {};
    if (this.opts.labelSelector !== undefined) selectors.labelSelector = this.opts.labelSelector;
    if (this.opts.fieldSelector !== undefined) selectors.fieldSelector = this.opts.fieldSelector;
    const pageSize = this.opts.pageSize ?? LIST_PAGE_SIZE;
    const items: T[] = [];
    let token: string | undefined;
    let paged = pageSize > 0;
    for (;;) {
      const options: ListOptions = {
        ...selectors,
        ...(paged ? { limit: pageSize } : {}),
        ...(paged && token !== undefined ? { _continue: token } : {}),
      };
      let page: KubernetesListObject<T>;
      try {
        page = await this.opts.list(options);
      } catch (err) {
        if (token !== undefined && apiStatusCode(err) === 410) {
          this.logger.info('list continue token expired (410 Gone): listing in one request');
          paged = false;
          token = undefined;
          items.length = 0;
          continue;
        }
        throw err;
      }
      if (this.stopped) return undefined;
      this.contact();
      const kind = page.kind?.endsWith('List') ? page.kind.slice(0, -4) : undefined;
      for (const obj of page.items ?? []) {
        if (!this.matches(obj)) continue;
        // List items carry no kind/apiVersion on the wire; fill them in (the event recorder needs them).
        if (obj.kind === undefined && kind !== undefined) obj.kind = kind;
        if (obj.apiVersion === undefined && page.apiVersion !== undefined) obj.apiVersion = page.apiVersion;
        items.push(this.transform(obj));
      }
      const resourceVersion = page.metadata?.resourceVersion ?? '';
      const next = page.metadata?._continue;
      if (!paged || next === undefined || next === '') return { items, resourceVersion };
      token = next;
    }
  }

  private transform(obj: T): T {
    const fn = this.opts.transform;
    if (fn === undefined) return obj;
    try {
      return fn(obj);
    } catch (err) {
      this.logger.error({ err, key: objectKey(obj) }, 'transform failed; object cached as is');
      return obj;
    }
  }

  private watchOnce(resourceVersion: string): Promise<{ events: number; seconds: number }> {
    const started = performance.now();
    let events = 0;
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err: unknown): void => {
        if (settled) return;
        settled = true;
        this.abort?.abort();
        this.abort = undefined;
        // Rejected as is: errors may come from another realm (DOMException), so callers test names, not instanceof.
        if (err !== null && err !== undefined)
          reject(err); // eslint-disable-line @typescript-eslint/prefer-promise-reject-errors
        else {
          this.contact();
          resolve({ events, seconds: (performance.now() - started) / 1000 });
        }
      };
      const query: Record<string, string | number | boolean | undefined> = {
        resourceVersion,
        allowWatchBookmarks: true,
        // client-go's reflector: a random timeout between 5 and 10 minutes spreads reconnects.
        timeoutSeconds: Math.floor(300 * (1 + (this.opts.random ?? Math.random)())),
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
      };
      const onEvent = (phase: string, raw: unknown): void => {
        if (settled || this.stopped) return;
        events++;
        this.contact();
        try {
          this.handleWatchEvent(phase, raw);
        } catch (err) {
          finish(err);
        }
      };
      this.watcher.watch(this.opts.path, query, onEvent, finish).then(
        (controller) => {
          if (settled || this.stopped) controller.abort();
          else {
            // client-node resolves only once the server answered 200: the watch is established.
            this.abort = controller;
            this.contact();
          }
          if (this.stopped) finish(null);
        },
        (err: unknown) => finish(err ?? new Error('watch failed')),
      );
    });
  }

  private handleWatchEvent(phase: string, raw: unknown): void {
    if (phase === 'ERROR') {
      const status = raw as { code?: unknown; message?: unknown } | undefined;
      const message = typeof status?.message === 'string' ? status.message : JSON.stringify(raw);
      if (status?.code === 410) throw new GoneError(message);
      throw Object.assign(new Error(`watch ERROR event: ${message}`), {
        statusCode: typeof status?.code === 'number' ? status.code : undefined,
      });
    }
    const deserialized = (this.opts.deserialize ?? deserializeKubernetesObject<T>)(raw);
    const rv = deserialized.metadata?.resourceVersion;
    if (phase === 'BOOKMARK') {
      if (rv !== undefined) this.resourceVersion = rv;
      return;
    }
    const obj = this.transform(deserialized);
    const key = objectKey(obj);
    const old = this.cache.get(key);
    switch (phase) {
      case 'ADDED':
      case 'MODIFIED':
        if (!this.matches(obj)) {
          if (old !== undefined) this.remove(key, old);
        } else {
          this.store(key, obj);
          if (old === undefined) this.emit('add', obj);
          else this.emit('update', obj, old);
        }
        break;
      case 'DELETED':
        if (old !== undefined) this.remove(key, obj);
        break;
      default:
        this.logger.warn({ phase }, 'unknown watch event type, ignored');
    }
    if (rv !== undefined) this.resourceVersion = rv;
  }

  // ---- cache and indexes ------------------------------------------------------------------------------------------

  private replace(items: T[]): void {
    const fresh = new Map<string, T>();
    for (const obj of items) fresh.set(objectKey(obj), obj);
    for (const [key, old] of [...this.cache]) {
      if (!fresh.has(key)) this.remove(key, old);
    }
    for (const [key, obj] of fresh) {
      const old = this.cache.get(key);
      this.store(key, obj);
      if (old === undefined) this.emit('add', obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('update', obj, old);
    }
  }

  private store(key: string, obj: T): void {
    this.unindexObject(key);
    this.cache.set(key, obj);
    this.indexObject(key, obj);
  }

  /** Removes a key and emits `delete` with `last` (the final state from the event, or the cached object). */
  private remove(key: string, last: T): void {
    this.unindexObject(key);
    this.cache.delete(key);
    this.emit('delete', last);
  }

  private indexObject(key: string, obj: T): void {
    for (const [name, index] of this.indexes) {
      let values: string[];
      try {
        values = [...new Set(index.fn(obj))];
      } catch (err) {
        this.logger.error({ err, index: name, key }, 'index function failed; object not indexed');
        values = [];
      }
      index.byKey.set(key, values);
      for (const v of values) {
        let keys = index.byValue.get(v);
        if (!keys) index.byValue.set(v, (keys = new Set()));
        keys.add(key);
      }
    }
  }

  private unindexObject(key: string): void {
    for (const index of this.indexes.values()) {
      for (const v of index.byKey.get(key) ?? []) {
        const keys = index.byValue.get(v);
        keys?.delete(key);
        if (keys?.size === 0) index.byValue.delete(v);
      }
      index.byKey.delete(key);
    }
  }

  private matches(obj: T): boolean {
    return this.selector === undefined || matchesLabelSelector(this.selector, obj.metadata?.labels ?? {});
  }

  private contact(): void {
    this.lastContact = performance.now();
  }

  private resync(): void {
    if (!this.synced || this.stopped) return;
    for (const obj of this.cache.values()) this.emit('update', obj, obj);
  }

  private emit(event: InformerEvent, obj: T, old?: T): void {
    for (const handler of this.handlers[event]) {
      try {
        handler(obj, old);
      } catch (err) {
        this.logger.error({ err, event, key: objectKey(obj) }, 'informer handler threw');
      }
    }
  }
}
