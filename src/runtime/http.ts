import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.js';

/** What the health endpoints report; computed by the caller on every probe. */
export interface HealthReport {
  /** Liveness: event loop responsive, informers not stalled. False → /healthz answers 500. */
  readonly live: boolean;
  /** Why not live (shown in the /healthz body). */
  readonly liveReason?: string;
  /** Readiness: informer caches synced. False → /readyz answers 503. */
  readonly ready: boolean;
  /** Why not ready (shown in the /readyz body). */
  readonly readyReason?: string;
  /** Whether this replica holds the Lease (stated in the /readyz body as `leader` or `standby`). */
  readonly leader: boolean;
}

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions {
  /** `[host]:port`: `:9090` is every interface on port 9090; `127.0.0.1:0` a free port on loopback. */
  readonly address: string;
  readonly registry: Registry;
  readonly health: () => HealthReport;
  readonly logger: Logger;
}

/** A running HTTP server. */
export interface HttpServer {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Stops accepting connections and closes idle and open ones; resolves when closed. */
  close(): Promise<void>;
}

/**
 * Splits a listen address into host and port.
 *
 * @param address - `:9090`, `0.0.0.0:9090`, `127.0.0.1:0`, `[::1]:9090`, `localhost:8080`.
 * @returns host (undefined = every interface) and port.
 * @throws Error when the address has no valid port.
 */
export function parseListenAddress(address: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new Error(`invalid listen address ${JSON.stringify(address)}: expected [host]:port`);
  const host = m[1] ?? m[2];
  return { host: host === '' || host === undefined ? undefined : host, port };
}

function send(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  res.end(body);
}

/**
 * Starts the observability server (started before leader election, so standbys are observable):
 * - `GET /metrics`: the registry in Prometheus text format.
 * - `GET /healthz`: 200 `ok` when `health().live`, else 500 with the reason.
 * - `GET /readyz`: 200 `ok: leader` or `ok: standby` when `health().ready`, else 503 with the reason and role.
 * Other paths answer 404, other methods 405. A throwing `health()` counts as not live/ready.
 *
 * @param options - see {@link HttpServerOptions}.
 * @returns the bound port and a close function.
 * @throws Error when the address is invalid or cannot be bound (e.g. EADDRINUSE).
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const { host, port } = parseListenAddress(options.address);
  const logger = options.logger.child({ component: 'http' });

  const probe = (): HealthReport | Error => {
    try {
      return options.health();
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/metrics': {
        const body = await options.registry.metrics();
        send(res, 200, body, options.registry.contentType);
        return;
      }
      case '/healthz': {
        const h = probe();
        if (h instanceof Error) send(res, 500, `not live: health check failed: ${h.message}\n`);
        else if (h.live) send(res, 200, 'ok\n');
        else send(res, 500, `not live: ${h.liveReason ?? 'unknown reason'}\n`);
        return;
      }
      case '/readyz': {
        const h = probe();
        if (h instanceof Error) send(res, 503, `not ready: health check failed: ${h.message}\n`);
        else {
          const role = h.leader ? 'leader' : 'standby';
          if (h.ready) send(res, 200, `ok: ${role}\n`);
          else send(res, 503, `not ready (${role}): ${h.readyReason ?? 'caches not synced'}\n`);
        }
        return;
      }
      default:
        send(res, 404, 'not found\n');
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err, path: req.url }, 'HTTP handler failed');
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.end();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => logger.error({ err }, 'HTTP server error'));
  const bound = (server.address() as AddressInfo).port;
  logger.info({ address: options.address, port: bound }, 'serving /metrics, /healthz, /readyz');

  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
