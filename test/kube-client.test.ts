import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiException, HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import {
  abortable,
  apiErrorMessage,
  apiStatus,
  apiStatusCode,
  createClients,
  isAlreadyExists,
  isConflict,
  isNotFound,
  loadKubeConfig,
  retryAfterSeconds,
  reuseConnections,
} from '../src/kube/client.js';
import { TokenBucket } from '../src/kube/rate-limiter.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function status(code: number, reason: string, message: string): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });
}

// A stand-in API server on loopback: real HTTP, so the errors are what client-node really throws.
let server: Server;
let port = 0;
const seen: { method: string; url: string; ua: string | undefined; auth: string | undefined }[] = [];
let hungClosed = 0;
beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      ua: req.headers['user-agent'],
      auth: req.headers.authorization,
    });
    res.setHeader('Content-Type', 'application/json');
    if (req.url?.includes('/leases/hang')) {
      req.socket.on('close', () => hungClosed++);
      return; // never answers
    }
    if (req.url?.includes('/pods/busy')) {
      res.statusCode = 429;
      res.setHeader('Retry-After', '7');
      res.end(status(429, 'TooManyRequests', 'too many requests, please try again later'));
      return;
    }
    if (req.url?.includes('/pods/missing')) {
      res.statusCode = 404;
      res.end(status(404, 'NotFound', 'pods "missing" not found'));
    } else if (req.method === 'POST') {
      res.statusCode = 409;
      res.end(status(409, 'AlreadyExists', 'pods "x" already exists'));
    } else if (req.method === 'PUT') {
      res.statusCode = 409;
      res.end(status(409, 'Conflict', 'Operation cannot be fulfilled on leases "l": the object has been modified'));
    } else {
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns' } }));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'secret-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

async function thrown(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('createClients', () => {
  it('talks to the current cluster with authentication and a user agent', async () => {
    const { core } = createClients(kubeConfig(), { qps: 100, burst: 10 });
    const pod = await core.readNamespacedPod({ name: 'p', namespace: 'ns' });
    expect(pod.metadata?.name).toBe('p');
    const last = seen[seen.length - 1];
    expect(last).toMatchObject({ method: 'GET', url: '/api/v1/namespaces/ns/pods/p', ua: 'hostpath-provisioner' });
    expect(last?.auth).toBe('Bearer secret-token');
  });

  it('makes requests wait for a token of the shared bucket', async () => {
    const clients = createClients(kubeConfig(), { qps: 0.001, burst: 1 });
    const before = seen.length;
    await clients.core.readNamespacedPod({ name: 'p', namespace: 'ns' });
    const second = clients.storage.listStorageClass();
    second.catch(() => undefined);
    await sleep(50);
    expect(seen.length).toBe(before + 1);
    expect(clients.rateLimiter.waiting).toBe(1);
  });

  it('gives leader election and Event writes buckets of their own: they never wait behind the work', async () => {
    const clients = createClients(kubeConfig(), { qps: 0.001, burst: 1 });
    await clients.core.readNamespacedPod({ name: 'p', namespace: 'ns' }); // the shared bucket is empty now
    const queued = clients.core.readNamespacedPod({ name: 'p', namespace: 'ns' });
    queued.catch(() => undefined);
    await clients.coordination.readNamespacedLease({ name: 'l', namespace: 'ns' }).catch(() => undefined);
    await clients.eventsCore.readNamespacedPod({ name: 'p', namespace: 'ns' });
    expect(clients.rateLimiter.waiting).toBe(1);
    expect(clients.leaseRateLimiter.waiting).toBe(0);
    expect([clients.leaseRateLimiter.qps, clients.leaseRateLimiter.burst]).toEqual([5, 10]);
    expect(clients.eventsRateLimiter.waiting).toBe(0);
  });

  it('abortable() aborts the HTTP request: the call rejects and the connection is closed', async () => {
    const { coordination } = createClients(kubeConfig(), { qps: 100, burst: 10 });
    const controller = new AbortController();
    const call = coordination.readNamespacedLease({ name: 'hang', namespace: 'ns' }, abortable(controller.signal));
    await sleep(50);
    const closedBefore = hungClosed;
    controller.abort(new DOMException('renew deadline passed', 'TimeoutError'));
    const err = await thrown(call);
    expect((err as Error).name).toBe('TimeoutError');
    for (let i = 0; i < 100 && hungClosed === closedBefore; i++) await sleep(10);
    expect(hungClosed).toBe(closedBefore + 1);
    // The per-call middleware is appended: authentication and the user agent still apply.
    const last = seen.filter((r) => r.url.includes('/leases/hang')).pop();
    expect(last).toMatchObject({ ua: 'hostpath-provisioner', auth: 'Bearer secret-token' });
  });

  it('throws without a current cluster', () => {
    expect(() => createClients(new KubeConfig(), { qps: 1, burst: 1 })).toThrow(/no current cluster/);
  });
});

describe('API error helpers on real client-node errors', () => {
  it('classifies 404 NotFound', async () => {
    const { core } = createClients(kubeConfig(), { qps: 100, burst: 10 });
    const err = await thrown(core.readNamespacedPod({ name: 'missing', namespace: 'ns' }));
    expect(err).toBeInstanceOf(ApiException);
    expect(apiStatusCode(err)).toBe(404);
    expect(isNotFound(err)).toBe(true);
    expect(isConflict(err)).toBe(false);
    expect(apiStatus(err)).toEqual({ code: 404, reason: 'NotFound', message: 'pods "missing" not found' });
    expect(apiErrorMessage(err)).toBe('404 NotFound: pods "missing" not found');
  });

  it('tells AlreadyExists from Conflict', async () => {
    const { core, coordination } = createClients(kubeConfig(), { qps: 100, burst: 10 });
    const exists = await thrown(core.createNamespacedPod({ namespace: 'ns', body: { metadata: { name: 'x' } } }));
    expect(isAlreadyExists(exists)).toBe(true);
    expect(isConflict(exists)).toBe(false);
    const conflict = await thrown(
      coordination.replaceNamespacedLease({ name: 'l', namespace: 'ns', body: { metadata: { name: 'l' } } }),
    );
    expect(isConflict(conflict)).toBe(true);
    expect(isAlreadyExists(conflict)).toBe(false);
  });
});

describe('API error helpers on constructed errors', () => {
  it('parses a Status given as a JSON string', () => {
    const err = new ApiException(409, 'Unknown API Status Code!', status(409, 'AlreadyExists', 'exists'), {});
    expect(apiStatus(err)).toEqual({ code: 409, reason: 'AlreadyExists', message: 'exists' });
    expect(isAlreadyExists(err)).toBe(true);
  });

  it('handles bodies without a Status', () => {
    const err = new ApiException(500, 'Unknown API Status Code!', 'upstream connect error', {});
    expect(apiStatus(err)).toBeUndefined();
    expect(apiStatusCode(err)).toBe(500);
    expect(apiErrorMessage(err)).toBe('HTTP 500: Unknown API Status Code!');
    const bare409 = new ApiException(409, 'x', undefined, {});
    expect(isConflict(bare409) && isAlreadyExists(bare409)).toBe(true);
  });

  it("reads a 429's Retry-After from client-node's ApiException", async () => {
    const { core } = createClients(kubeConfig(), { qps: 100, burst: 10 });
    const err = await thrown(core.readNamespacedPod({ name: 'busy', namespace: 'ns' }));
    expect(apiStatusCode(err)).toBe(429);
    expect(retryAfterSeconds(err)).toBe(7);
  });

  it.each([
    ['429 with delay-seconds header', 429, { 'retry-after': '3' }, undefined, 3],
    ['503 with delay-seconds header', 503, { 'retry-after': '0' }, undefined, 0],
    ['429 with an HTTP date 30 s ahead', 429, { 'retry-after': 'Thu, 03 Dec 2026 12:00:30 GMT' }, undefined, 30],
    ['429 with a date in the past', 429, { 'retry-after': 'Thu, 03 Dec 2026 11:00:00 GMT' }, undefined, 0],
    ['429 without header, Status details', 429, {}, { code: 429, details: { retryAfterSeconds: 5 } }, 5],
    ['429 with a garbage header and no details', 429, { 'retry-after': 'soon' }, undefined, undefined],
    ['409 with a header (not a throttle)', 409, { 'retry-after': '3' }, undefined, undefined],
    ['404 without anything', 404, {}, undefined, undefined],
  ] as const)('retryAfterSeconds: %s', (_what, code, headers, body, expected) => {
    const err = new ApiException<string>(code, 'x', body === undefined ? '' : JSON.stringify(body), { ...headers });
    expect(retryAfterSeconds(err, Date.parse('2026-12-03T12:00:00Z'))).toBe(expected);
  });

  it('retryAfterSeconds: nothing for errors without a response', () => {
    expect(retryAfterSeconds(new Error('connect ECONNREFUSED'))).toBeUndefined();
    expect(retryAfterSeconds(undefined)).toBeUndefined();
  });

  it('reads watch errors and plain errors', () => {
    expect(apiStatusCode(Object.assign(new Error('Gone'), { statusCode: 410 }))).toBe(410);
    expect(apiStatusCode(new Error('ECONNREFUSED'))).toBeUndefined();
    expect(apiStatusCode({ code: 'ECONNRESET' })).toBeUndefined();
    expect(apiErrorMessage(new Error('line one\nline two'))).toBe('line one');
    expect(apiErrorMessage('plain')).toBe('plain');
    expect(isNotFound(undefined)).toBe(false);
  });
});

describe('loadKubeConfig', () => {
  it('loads the given file, or a list of files as kubectl does', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kc-'));
    const file = join(dir, 'config');
    await writeFile(
      file,
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: 'https://10.0.0.1:6443'}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
    );
    expect(loadKubeConfig(file, {}).getCurrentCluster()?.server).toBe('https://10.0.0.1:6443');
    const second = join(dir, 'second');
    await writeFile(
      second,
      `apiVersion: v1
kind: Config
clusters: [{name: d, cluster: {server: 'https://10.0.0.2:6443'}}]
users: [{name: v, user: {token: t}}]
contexts: [{name: y, context: {cluster: d, user: v}}]
current-context: y
`,
    );
    const merged = loadKubeConfig(`${file}:${second}`, {});
    expect(merged.getCurrentCluster()?.server).toBe('https://10.0.0.1:6443');
    expect(merged.getContexts().map((c) => c.name)).toEqual(['x', 'y']);
  });
});

describe('reuseConnections', () => {
  const config = (ca: string) => `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: 'https://10.0.0.1:6443', certificate-authority-data: ${Buffer.from(ca).toString('base64')}}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`;
  const dispatcherOf = async (kc: KubeConfig) => {
    const ctx = new RequestContext('https://10.0.0.1:6443/api/v1/nodes', HttpMethod.GET);
    await kc.applySecurityAuthentication(ctx);
    return ctx.getDispatcher();
  };

  it('without it, client-node 2.x makes a new dispatcher (connection pool) for every request', async () => {
    const kc = new KubeConfig();
    kc.loadFromString(config('ca-1'));
    expect(await dispatcherOf(kc)).not.toBe(await dispatcherOf(kc));
  });

  it('with it, every request with the same TLS settings shares one; changed settings get a new one', async () => {
    const kc = new KubeConfig();
    kc.loadFromString(config('ca-1'));
    reuseConnections(kc);
    const first = await dispatcherOf(kc);
    expect(first).toBeDefined();
    expect(await dispatcherOf(kc)).toBe(first);
    kc.loadFromString(config('ca-2')); // a rotated CA
    const rotated = await dispatcherOf(kc);
    expect(rotated).toBeDefined();
    expect(rotated).not.toBe(first);
    expect(await dispatcherOf(kc)).toBe(rotated);
  });

  it('is what loadKubeConfig returns', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kc-'));
    const file = join(dir, 'config');
    await writeFile(file, config('ca-1'));
    const kc = loadKubeConfig(file, {});
    expect(await dispatcherOf(kc)).toBe(await dispatcherOf(kc));
  });
});

describe('TokenBucket', () => {
  it('serves a burst at once, then one token per 1/qps seconds, first come first served', async () => {
    let now = 0;
    const bucket = new TokenBucket(1000, 2, () => now);
    const order: number[] = [];
    const all = [1, 2, 3, 4].map((i) => bucket.acquire().then(() => order.push(i)));
    await Promise.resolve();
    await Promise.resolve();
    expect(order).toEqual([1, 2]);
    expect(bucket.waiting).toBe(2);
    now += 1; // 1 ms = one token at 1000 qps
    await sleep(5);
    expect(order).toEqual([1, 2, 3]);
    now += 10; // refills up to the burst only
    await Promise.all(all);
    expect(order).toEqual([1, 2, 3, 4]);
  });

  it('rejects a bad rate', () => {
    expect(() => new TokenBucket(0, 1)).toThrow(RangeError);
    expect(() => new TokenBucket(1, 0)).toThrow(RangeError);
  });
});
