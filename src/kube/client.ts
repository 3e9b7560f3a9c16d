import { existsSync } from 'node:fs';
import type { AgentOptions } from 'node:https';
import { delimiter } from 'node:path';
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  createConfiguration,
  EventsV1Api,
  KubeConfig,
  ServerConfiguration,
  setHeaderMiddleware,
  StorageV1Api,
  type Cluster,
  type Configuration,
  type RequestContext,
  type Middleware,
  type ConfigurationOptions,
  type ObservableMiddleware,
} from '@kubernetes/client-node';
// The Observable stub client-node's generated clients chain middleware with (as its own setHeaderMiddleware uses).
import { of } from '@kubernetes/client-node/dist/gen/rxjsStub.js';
import { TokenBucket } from './rate-limiter.js';

/** Where the in-cluster service-account token is mounted. */
const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * Loads the Kubernetes client configuration: the given kubeconfig file; else the in-cluster service account (when
 * `KUBERNETES_SERVICE_HOST` is set and the token is mounted); else client-node's default rules (`$KUBECONFIG`,
 * `~/.kube/config`, in-cluster, localhost:8080).
 *
 * @param path - kubeconfig file, or several joined by ':' as kubectl allows (the `--kubeconfig` / `KUBECONFIG`
 *   setting); undefined or '' for the fallbacks.
 * @param env - environment to look at (defaults to `process.env`).
 * @returns the loaded KubeConfig.
 * @throws Error when the file cannot be read or parsed.
 */
export function loadKubeConfig(path?: string, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  if (path !== undefined && path !== '') {
    // kubectl convention: KUBECONFIG may list several files; the first sets the context, the others are merged.
    const [first = '', ...rest] = path.split(delimiter).filter((f) => f !== '');
    kc.loadFromFile(first);
    for (const file of rest) {
      const more = new KubeConfig();
      more.loadFromFile(file);
      kc.mergeConfig(more, true);
    }
  } else if (env['KUBERNETES_SERVICE_HOST'] !== undefined && existsSync(SERVICE_ACCOUNT_TOKEN)) kc.loadFromCluster();
  else kc.loadFromDefault();
  return reuseConnections(kc);
}

/** Whether two flattened dispatcher settings are equal: buffers (CA, certificate, key) by content, the rest deeply. */
function sameSettings(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i];
    if (Buffer.isBuffer(x) || Buffer.isBuffer(y)) return Buffer.isBuffer(x) && Buffer.isBuffer(y) && x.equals(y);
    if (typeof x === 'object' && x !== null && typeof y === 'object' && y !== null) {
      const [ex, ey] = [Object.entries(x).flat(), Object.entries(y).flat()];
      return sameSettings(ex, ey);
    }
    return x === y;
  });
}

/**
 * Makes every request of a KubeConfig share one connection pool. client-node 2.0.1 builds a new undici `Agent` in
 * `applySecurityAuthentication` — that is, for every API call and every watch — so each call paid a TCP and TLS
 * handshake on both ends (a CPU profile of a 200-claim run spent more of the provisioner's CPU in TLS set-up than in
 * anything of ours) and left its keep-alive socket open until the server closed it. This wraps the KubeConfig's
 * dispatcher factory so that one Agent serves every request with the same TLS settings (CA, client certificate and
 * key, server name: `createDispatcherOptions`, client-node's own summary of them), as client-go shares one transport
 * per configuration; when those change (a rotated CA or client certificate read from a file) a new Agent takes over
 * and the old one is closed once its requests are done. undici's Agent opens as many connections per origin as
 * requests are in flight, so a watch or a slow call never blocks the others.
 *
 * @param kc - a loaded KubeConfig; changed in place.
 * @returns `kc`.
 * @throws Error when client-node no longer has the factory this relies on (caught by test/kube-client.test.ts).
 */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;
  type Factory = (cluster: Cluster | null, agentOptions: AgentOptions) => Dispatcher | undefined;
  const target = kc as unknown as { createDispatcher?: Factory };
  const create = target.createDispatcher;
  if (typeof create !== 'function') {
    throw new Error('@kubernetes/client-node has no KubeConfig.createDispatcher any more: see reuseConnections');
  }
  let current: { settings: unknown[]; dispatcher: Dispatcher | undefined } | undefined;
  target.createDispatcher = (cluster, agentOptions) => {
    const settings = [cluster?.server, ...Object.entries(kc.createDispatcherOptions(cluster, agentOptions)).flat()];
    if (!current || !sameSettings(current.settings, settings)) {
      void current?.dispatcher?.close().catch(() => undefined);
      current = { settings, dispatcher: create.call(kc, cluster, agentOptions) };
    }
    return current.dispatcher;
  };
  return kc;
}

/**
 * The typed API clients. `core`, `storage` and `events` share one client-side rate limit (the work); leader election
 * (`coordination`) and Event writes (`eventsCore`) each have their own, so neither can wait behind the other or behind
 * the work — as client-go programs and the CSI sidecars give leader election a client of its own.
 */
export interface KubeClients {
  readonly core: CoreV1Api;
  readonly storage: StorageV1Api;
  /** For the leader-election Lease only: its own bucket ({@link KubeClients.leaseRateLimiter}). */
  readonly coordination: CoordinationV1Api;
  /** events.k8s.io/v1 (the {@link EventRecorder} writes core/v1 Events through `eventsCore`, as client-go's recorder does). */
  readonly events: EventsV1Api;
  /** CoreV1Api for Event writes only: its own bucket ({@link KubeClients.eventsRateLimiter}). */
  readonly eventsCore: CoreV1Api;
  readonly kc: KubeConfig;
  /** The shared token bucket of `core`, `storage` and `events`. */
  readonly rateLimiter: TokenBucket;
  /** The bucket of `coordination` (leader election). */
  readonly leaseRateLimiter: TokenBucket;
  /** The bucket of `eventsCore` (Event writes). */
  readonly eventsRateLimiter: TokenBucket;
}

/** Leader election's own client-side rate limit (requests per second, burst): a renewal needs 2 requests. */
export const LEASE_RATE_LIMIT: RateLimit = { qps: 5, burst: 10 };
/** Event writes' own client-side rate limit (requests per second, burst). */
export const EVENTS_RATE_LIMIT: RateLimit = { qps: 5, burst: 25 };

/** Client-side rate limit, requests per second and burst (client-go's QPS/Burst). */
export interface RateLimit {
  readonly qps: number;
  readonly burst: number;
}

/**
 * A client-node middleware that takes a token from the bucket before every request leaves.
 *
 * @param bucket - the shared bucket.
 * @returns a promise-style middleware for `createConfiguration({ promiseMiddleware })`.
 */
export function rateLimitMiddleware(bucket: TokenBucket): Middleware {
  return {
    pre: async (ctx) => {
      await bucket.acquire();
      return ctx;
    },
    post: (rsp) => Promise.resolve(rsp),
  };
}

/**
 * Per-call options that make a client-node request abortable: a middleware that hands `signal` to the request
 * (`RequestContext#setSignal`, which client-node's fetch library passes to undici's `fetch`), appended — the way
 * client-node's own `setHeaderOptions` does it — to the configured middleware so the rate limit and headers still apply. Aborting the signal rejects the call (an
 * `AbortError`/`TimeoutError` DOMException from undici) and closes its connection.
 *
 * @param signal - aborts the request when it fires.
 * @returns options for the second argument of any client-node API call.
 */
export function abortable(signal: AbortSignal): ConfigurationOptions<ObservableMiddleware> {
  const middleware: ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(signal);
      return of(ctx);
    },
    post: (rsp) => of(rsp),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

/**
 * Creates the API clients with a client-side token-bucket rate limit on every request.
 *
 * Built like `KubeConfig.makeApiClient` (server from the current cluster, authentication by the KubeConfig,
 * a User-Agent header) plus a rate-limit middleware in the shared configuration. Caveat of client-node 2.x: call-time
 * options replace the configured middleware unless `middlewareMergeStrategy` is 'append' or 'prepend' — its own
 * `setHeaderOptions(...)` (used for patch content types) appends, so the limit still applies.
 *
 * @param kc - loaded KubeConfig (see {@link loadKubeConfig}).
 * @param limit - qps (requests per second, > 0) and burst (≥ 1) of the work's shared bucket.
 * @param own - the separate limits of leader election and Event writes (defaults {@link LEASE_RATE_LIMIT},
 *   {@link EVENTS_RATE_LIMIT}).
 * @returns the clients and their buckets.
 * @throws Error when the KubeConfig has no current cluster; RangeError for a bad limit.
 */
export function createClients(
  kc: KubeConfig,
  limit: RateLimit,
  own: { readonly lease?: RateLimit; readonly events?: RateLimit } = {},
): KubeClients {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const rateLimiter = new TokenBucket(limit.qps, limit.burst);
  const lease = own.lease ?? LEASE_RATE_LIMIT;
  const leaseRateLimiter = new TokenBucket(lease.qps, lease.burst);
  const events = own.events ?? EVENTS_RATE_LIMIT;
  const eventsRateLimiter = new TokenBucket(events.qps, events.burst);
  const configuration = (bucket: TokenBucket): Configuration =>
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: kc },
      middleware: [setHeaderMiddleware('User-Agent', 'hostpath-provisioner')],
      promiseMiddleware: [rateLimitMiddleware(bucket)],
    });
  return {
    core: new CoreV1Api(configuration(rateLimiter)),
    storage: new StorageV1Api(configuration(rateLimiter)),
    coordination: new CoordinationV1Api(configuration(leaseRateLimiter)),
    events: new EventsV1Api(configuration(rateLimiter)),
    eventsCore: new CoreV1Api(configuration(eventsRateLimiter)),
    kc,
    rateLimiter,
    leaseRateLimiter,
    eventsRateLimiter,
  };
}

/** The fields of a Kubernetes `Status` object that error handling needs. */
export interface ApiStatus {
  readonly code?: number;
  readonly reason?: string;
  readonly message?: string;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
}

/**
 * The `Status` object of a failed API call, if any. client-node 2.x puts the response body in `ApiException.body`,
 * sometimes parsed, sometimes as the raw JSON string; both are handled.
 *
 * @param err - anything thrown by an API call.
 * @returns code, reason and message of the Status, or undefined when the error carries none.
 */
export function apiStatus(err: unknown): ApiStatus | undefined {
  const body = asRecord(err)?.['body'];
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  const rec = asRecord(parsed);
  if (rec === undefined) return undefined;
  const out: { code?: number; reason?: string; message?: string } = {};
  if (typeof rec['code'] === 'number') out.code = rec['code'];
  if (typeof rec['reason'] === 'string') out.reason = rec['reason'];
  if (typeof rec['message'] === 'string') out.message = rec['message'];
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * The HTTP status code of a failed API call.
 *
 * @param err - an `ApiException` (`.code`), a watch error (`.statusCode`), or anything else.
 * @returns the code (100–599), or undefined (network errors, timeouts, bugs).
 */
export function apiStatusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const rec = asRecord(err);
  for (const key of ['code', 'statusCode']) {
    const v = rec?.[key];
    if (typeof v === 'number' && v >= 100 && v <= 599) return v;
  }
  return apiStatus(err)?.code;
}

/**
 * How long the API server asked us to wait before retrying, as client-go's `checkWait` reads it: the `Retry-After`
 * header (delay in seconds, or an HTTP date) of a 429 Too Many Requests or 5xx answer, else the Status object's
 * `details.retryAfterSeconds`. API Priority and Fairness answers 429 with `Retry-After`.
 *
 * @param err - anything thrown by a client-node API call (`ApiException` carries the response headers, lower-case).
 * @param nowMs - wall clock in ms, for an HTTP-date header (tests); default `Date.now()`.
 * @returns seconds (≥ 0, finite), or undefined when the error is not a 429/5xx or names no delay.
 */
export function retryAfterSeconds(err: unknown, nowMs: number = Date.now()): number | undefined {
  const code = apiStatusCode(err);
  if (code === undefined || (code !== 429 && code < 500)) return undefined;
  const headers = asRecord(asRecord(err)?.['headers']);
  const header = headers?.['retry-after'] ?? headers?.['Retry-After'];
  if (typeof header === 'string' && header.trim() !== '') {
    const text = header.trim();
    if (/^\d+$/.test(text)) return Number(text);
    const at = Date.parse(text);
    if (Number.isFinite(at)) return Math.max(0, (at - nowMs) / 1000);
  }
  const body = asRecord(err)?.['body'];
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  const seconds = asRecord(asRecord(parsed)?.['details'])?.['retryAfterSeconds'];
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

/** True for 404 Not Found. */
export function isNotFound(err: unknown): boolean {
  return apiStatusCode(err) === 404;
}

/**
 * True for a 409 whose reason is `Conflict` (stale resourceVersion on update), as client-go's `IsConflict`.
 * A 409 without a readable reason counts as both conflict and already-exists.
 */
export function isConflict(err: unknown): boolean {
  if (apiStatusCode(err) !== 409) return false;
  const reason = apiStatus(err)?.reason;
  return reason === undefined || reason === 'Conflict';
}

/** True for a 409 whose reason is `AlreadyExists` (create of an existing name), as client-go's `IsAlreadyExists`. */
export function isAlreadyExists(err: unknown): boolean {
  if (apiStatusCode(err) !== 409) return false;
  const reason = apiStatus(err)?.reason;
  return reason === undefined || reason === 'AlreadyExists';
}

/**
 * A one-line, human-readable message for logs and Events.
 *
 * @param err - anything thrown.
 * @returns `<code> <reason>: <Status message>` when the API answered with a Status; else the first line of the error
 *   message (client-node's own message repeats headers and body); else `String(err)`.
 */
export function apiErrorMessage(err: unknown): string {
  const status = apiStatus(err);
  const code = apiStatusCode(err);
  if (status?.message !== undefined) {
    const head = [code, status.reason].filter((x) => x !== undefined).join(' ');
    return head === '' ? status.message : `${head}: ${status.message}`;
  }
  if (err instanceof ApiException) {
    const m = /^Message: (.*)$/m.exec(err.message);
    return `HTTP ${err.code}: ${m?.[1] ?? 'error'}`;
  }
  if (err instanceof Error) return err.message.split('\n')[0] ?? '';
  return String(err);
}
