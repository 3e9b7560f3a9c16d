import { existsSync } from 'node:fs';
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
  type Configuration,
  type Middleware,
} from '@kubernetes/client-node';
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
  return kc;
}

/** The typed API clients, all sharing one client-side rate limit. */
export interface KubeClients {
  readonly core: CoreV1Api;
  readonly storage: StorageV1Api;
  readonly coordination: CoordinationV1Api;
  /** events.k8s.io/v1 (the {@link EventRecorder} writes core/v1 Events through `core`, as client-go's recorder does). */
  readonly events: EventsV1Api;
  readonly kc: KubeConfig;
  /** The shared token bucket (e.g. for the watch requests of informers, which bypass the API clients). */
  readonly rateLimiter: TokenBucket;
}

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
 * Creates the API clients with a client-side token-bucket rate limit on every request.
 *
 * Built like `KubeConfig.makeApiClient` (server from the current cluster, authentication by the KubeConfig,
 * a User-Agent header) plus a rate-limit middleware in the shared configuration. Caveat of client-node 2.x: call-time
 * options replace the configured middleware unless `middlewareMergeStrategy` is 'append' or 'prepend' — its own
 * `setHeaderOptions(...)` (used for patch content types) appends, so the limit still applies.
 *
 * @param kc - loaded KubeConfig (see {@link loadKubeConfig}).
 * @param limit - qps (requests per second, > 0) and burst (≥ 1).
 * @returns the clients and the shared bucket.
 * @throws Error when the KubeConfig has no current cluster; RangeError for a bad limit.
 */
export function createClients(kc: KubeConfig, limit: RateLimit): KubeClients {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const rateLimiter = new TokenBucket(limit.qps, limit.burst);
  const configuration = (): Configuration =>
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: kc },
      middleware: [setHeaderMiddleware('User-Agent', 'hostpath-provisioner')],
      promiseMiddleware: [rateLimitMiddleware(rateLimiter)],
    });
  return {
    core: new CoreV1Api(configuration()),
    storage: new StorageV1Api(configuration()),
    coordination: new CoordinationV1Api(configuration()),
    events: new EventsV1Api(configuration()),
    kc,
    rateLimiter,
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
