/**
 * The part of the kubelet API that kube-apiserver proxies `pods/log` to:
 * `GET /containerLogs/<namespace>/<pod>/<container>?tailLines=&limitBytes=&previous=&follow=`, over HTTPS,
 * one server (port) per node since the path carries no node name. Also `GET /healthz`.
 * Clients are not authenticated: the server listens on loopback for a test cluster.
 */
import { createServer, type Server } from 'node:https';
import { open, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sleep } from './kube.js';
import type { Logger } from './logger.js';
import { selectLog, type LogSelection } from './log-store.js';

/** What the log server asks the pod manager. */
export interface LogSource {
  find(
    namespace: string,
    pod: string,
    container: string,
    previous: boolean,
  ): { file?: string; error?: string; running?: () => boolean };
}

function intParam(url: URL, name: string): number | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  return Number.isInteger(n) ? n : undefined;
}

async function follow(res: ServerResponse, file: string, from: number, running: () => boolean, limit?: number) {
  let offset = from;
  let sent = 0;
  const handle = await open(file, 'r');
  try {
    for (;;) {
      const still = running();
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
      if (bytesRead > 0) {
        let chunk = buf.subarray(0, bytesRead);
        if (limit !== undefined && sent + chunk.length > limit) chunk = chunk.subarray(0, limit - sent);
        res.write(chunk);
        sent += chunk.length;
        offset += bytesRead;
        if (limit !== undefined && sent >= limit) return;
        continue;
      }
      if (!still || res.destroyed) return;
      await sleep(250);
    }
  } finally {
    await handle.close();
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, source: LogSource): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://node');
  if (url.pathname === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
    return;
  }
  const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
  if (req.method !== 'GET' || !m) {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
    return;
  }
  const [namespace, pod, container] = [m[1], m[2], m[3]].map((s) => decodeURIComponent(s ?? ''));
  const previous = url.searchParams.get('previous') === 'true';
  const found = source.find(namespace ?? '', pod ?? '', container ?? '', previous);
  if (!found.file) {
    res.writeHead(found.error?.includes('not found on node') ? 404 : 400, { 'Content-Type': 'text/plain' });
    res.end(found.error ?? 'not found');
    return;
  }
  const sel: LogSelection = {};
  const tailLines = intParam(url, 'tailLines');
  const limitBytes = intParam(url, 'limitBytes');
  if (tailLines !== undefined) sel.tailLines = tailLines;
  if (limitBytes !== undefined) sel.limitBytes = limitBytes;
  const content = await readFile(found.file).catch(() => Buffer.alloc(0));
  const selected = selectLog(content, sel);
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  if (url.searchParams.get('follow') === 'true' && !previous && found.running) {
    res.write(selected);
    const rest = limitBytes === undefined ? undefined : Math.max(0, limitBytes - selected.length);
    if (rest !== 0) await follow(res, found.file, content.length, found.running, rest);
    res.end();
    return;
  }
  res.end(selected);
}

/**
 * Start a node's kubelet API server.
 *
 * @param tls PEM certificate and key (the cluster's kubelet serving certificate, valid for 127.0.0.1).
 * @param port 0 for a free port.
 * @returns the listening server and its port.
 */
export async function startLogServer(
  tls: { cert: Buffer; key: Buffer },
  address: string,
  port: number,
  source: LogSource,
  log: Logger,
): Promise<{ server: Server; port: number }> {
  const server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    handle(req, res, source).catch((err: unknown) => {
      log.warn({ err: err instanceof Error ? err.message : String(err), url: req.url }, 'log request failed');
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : port };
}
