import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { createClients } from '../src/kube/client.js';
import { ResilientInformer, WATCH_INACTIVITY_TIMEOUT_SECONDS } from '../src/kube/informer.js';
import { createMetrics } from '../src/runtime/metrics.js';

// client-node's real Watch and CoreV1Api against a loopback stand-in of the API server: checks the wiring
// (query parameters, streaming, connection ends, HTTP errors) that the fake-watch unit tests cannot.

const logger = pino({ level: 'silent' });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    if (cond()) return;
    await sleep(2);
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface WatchConn {
  query: URLSearchParams;
  res: ServerResponse;
}

let server: Server;
let port = 0;
let pods: V1Pod[] = [];
let listRv = '10';
const lists: URLSearchParams[] = [];
const watches: WatchConn[] = [];
/** Status code for the next watch requests (0 = stream). */
let watchStatus = 0;
/** Hand out an expired continue token after the first page. */
let expireContinue = false;

function pod(name: string, rv: string): V1Pod {
  return { metadata: { name, namespace: 'ns', resourceVersion: rv, labels: { app: 'helper' } } };
}

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    res.setHeader('Content-Type', 'application/json');
    if (url.searchParams.get('watch') === 'true') {
      if (watchStatus !== 0) {
        res.statusCode = watchStatus;
        res.end(JSON.stringify({ kind: 'Status', code: watchStatus }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      res.write('\n');
      watches.push({ query: url.searchParams, res });
      return;
    }
    lists.push(url.searchParams);
    const limit = url.searchParams.get('limit');
    const token = url.searchParams.get('continue');
    if (token === 'expired') {
      res.statusCode = 410;
      res.end(JSON.stringify({ kind: 'Status', code: 410, reason: 'Expired', message: 'continue token expired' }));
      return;
    }
    const from = token !== null ? Number(token) : 0;
    const to = limit !== null ? from + Number(limit) : pods.length;
    const next = to < pods.length ? (expireContinue ? 'expired' : String(to)) : undefined;
    res.end(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'PodList',
        metadata: { resourceVersion: listRv, ...(next !== undefined ? { continue: next } : {}) },
        items: pods.slice(from, to),
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

let informer: ResilientInformer<V1Pod> | undefined;
afterEach(() => {
  informer?.stop();
  informer = undefined;
  for (const w of watches.splice(0)) w.res.end();
  lists.splice(0);
  watchStatus = 0;
  expireContinue = false;
});

function send(conn: WatchConn | undefined, type: string, obj: unknown): void {
  conn?.res.write(`${JSON.stringify({ type, object: obj })}\n`);
}

function makeInformer(
  extra: { pageSize?: number; watchInactivityTimeoutSeconds?: number; metrics?: ReturnType<typeof createMetrics> } = {},
): ResilientInformer<V1Pod> {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const { core } = createClients(kc, { qps: 1000, burst: 1000 });
  return new ResilientInformer<V1Pod>({
    resource: 'pods',
    path: '/api/v1/namespaces/ns/pods',
    list: (o) => core.listNamespacedPod({ namespace: 'ns', ...o }),
    kc,
    labelSelector: 'app=helper',
    logger,
    backoff: { baseSeconds: 0.01, maxSeconds: 0.02 },
    ...extra,
  });
}

describe('ResilientInformer with client-node Watch over HTTP', () => {
  it('lists and watches with the selector, follows events, and survives the server closing or failing', async () => {
    pods = [pod('a', '5')];
    listRv = '10';
    informer = makeInformer();
    const seen: string[] = [];
    informer.on('add', (p) => seen.push(`add ${p.metadata?.name}`));
    informer.on('update', (p) => seen.push(`update ${p.metadata?.name}@${p.metadata?.resourceVersion}`));
    informer.on('delete', (p) => seen.push(`delete ${p.metadata?.name}`));
    await informer.start();
    expect(lists[0]?.get('labelSelector')).toBe('app=helper');
    await until(() => watches.length === 1, 'first watch');
    expect(watches[0]?.query.get('resourceVersion')).toBe('10');
    expect(watches[0]?.query.get('labelSelector')).toBe('app=helper');
    expect(watches[0]?.query.get('allowWatchBookmarks')).toBe('true');

    send(watches[0], 'ADDED', { apiVersion: 'v1', kind: 'Pod', ...pod('b', '11') });
    send(watches[0], 'MODIFIED', { apiVersion: 'v1', kind: 'Pod', ...pod('a', '12') });
    await until(() => seen.length === 3, 'watch events');
    expect(seen).toEqual(['add a', 'add b', 'update a@12']);

    // The server ends the watch normally: resumed from the last resourceVersion, no relist.
    watches[0]?.res.end();
    await until(() => watches.length === 2, 'resumed watch');
    expect(watches[1]?.query.get('resourceVersion')).toBe('12');
    expect(lists).toHaveLength(1);

    // 410 Gone as an ERROR event: relist at once; the difference is emitted.
    pods = [pod('a', '12'), pod('c', '20')];
    listRv = '21';
    send(watches[1], 'ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' });
    await until(() => watches.length === 3, 'watch after relist');
    expect(lists).toHaveLength(2);
    expect(watches[2]?.query.get('resourceVersion')).toBe('21');
    expect(seen.slice(3).sort()).toEqual(['add c', 'delete b']);

    // The watch fails with HTTP 500 for a while, then the server recovers.
    watchStatus = 500;
    watches[2]?.res.destroy();
    await until(() => lists.length >= 4, 'relists during the outage');
    watchStatus = 0;
    await until(() => watches.length === 4, 'watch after the outage');
    expect(
      informer
        .list()
        .map((p) => p.metadata?.name)
        .sort(),
    ).toEqual(['a', 'c']);
  });

  it('paginates the list with limit and continue over HTTP; an expired continue token (410) falls back to a full list', async () => {
    pods = ['a', 'b', 'c'].map((n, i) => pod(n, String(i + 1)));
    listRv = '30';
    informer = makeInformer({ pageSize: 2 });
    await informer.start();
    expect(lists.map((q) => [q.get('limit'), q.get('continue')])).toEqual([
      ['2', null],
      ['2', '2'],
    ]);
    expect(informer.list()).toHaveLength(3);
    informer.stop();
    lists.splice(0);

    expireContinue = true;
    informer = makeInformer({ pageSize: 2 });
    await informer.start();
    expect(lists.map((q) => [q.get('limit'), q.get('continue')])).toEqual([
      ['2', null],
      ['2', 'expired'],
      [null, null],
    ]);
    expect(informer.list()).toHaveLength(3);
  });

  it("sets client-node's watch inactivity timeout: an idle watch is resumed after it, without a relist or a restart", async () => {
    pods = [pod('a', '5')];
    listRv = '40';
    const metrics = createMetrics();
    informer = makeInformer({ watchInactivityTimeoutSeconds: 0.2, metrics });
    await informer.start();
    await until(() => watches.length === 1, 'first watch');
    // Nothing is sent: the client gives up after 0.2 s of silence and watches again from the same resourceVersion.
    await until(() => watches.length === 2, 'watch resumed after the inactivity timeout');
    expect(watches[1]?.query.get('resourceVersion')).toBe('40');
    expect(lists).toHaveLength(1);
    const restarts = (await metrics.informerRestarts.get()).values.reduce((a, v) => a + v.value, 0);
    expect(restarts).toBe(0);
  });

  it('defaults to an inactivity timeout longer than the API server bookmark interval (about 60 s)', () => {
    expect(WATCH_INACTIVITY_TIMEOUT_SECONDS).toBeGreaterThan(60);
    expect(WATCH_INACTIVITY_TIMEOUT_SECONDS).toBeLessThan(180); // /healthz calls an informer silent after 3 minutes
  });
});
