import { afterEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { parseListenAddress, startHttpServer, type HealthReport, type HttpServer } from '../src/runtime/http.js';
import { createMetrics } from '../src/runtime/metrics.js';

const logger = pino({ level: 'silent' });
let server: HttpServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function get(path: string): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${server?.port}${path}`);
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

describe('parseListenAddress', () => {
  it.each([
    [':9090', undefined, 9090],
    ['127.0.0.1:0', '127.0.0.1', 0],
    ['[::1]:8080', '::1', 8080],
    ['localhost:1', 'localhost', 1],
  ])('%s', (address, host, port) => {
    expect(parseListenAddress(address)).toEqual({ host, port });
  });
  it.each(['9090', ':70000', 'a:b', '::1:80'])('rejects %s', (address) => {
    expect(() => parseListenAddress(address)).toThrow(/invalid listen address/);
  });
});

describe('startHttpServer', () => {
  it('serves metrics, health and readiness with the role', async () => {
    const metrics = createMetrics(new Registry());
    let report: HealthReport = { live: true, ready: false, readyReason: 'informer pods not synced', leader: false };
    server = await startHttpServer({
      address: '127.0.0.1:0',
      registry: metrics.registry,
      health: () => report,
      logger,
    });
    expect(server.port).toBeGreaterThan(0);

    const m = await get('/metrics');
    expect(m.status).toBe(200);
    expect(m.type).toContain('text/plain');
    expect(m.body).toContain('hostpath_provisioner_build_info');

    expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await get('/readyz')).toMatchObject({
      status: 503,
      body: 'not ready (standby): informer pods not synced\n',
    });

    report = { live: true, ready: true, leader: false };
    expect(await get('/readyz')).toMatchObject({ status: 200, body: 'ok: standby\n' });
    report = { live: true, ready: true, leader: true };
    expect(await get('/readyz?verbose')).toMatchObject({ status: 200, body: 'ok: leader\n' });

    report = { live: false, liveReason: 'informer nodes stalled for 900 s', ready: true, leader: true };
    expect(await get('/healthz')).toMatchObject({ status: 500, body: 'not live: informer nodes stalled for 900 s\n' });
    expect((await get('/nope')).status).toBe(404);
  });

  it('treats a throwing health function as not live', async () => {
    server = await startHttpServer({
      address: '127.0.0.1:0',
      registry: new Registry(),
      health: () => {
        throw new Error('bug');
      },
      logger,
    });
    expect(await get('/healthz')).toMatchObject({ status: 500, body: 'not live: health check failed: bug\n' });
  });

  it('rejects when the port is taken', async () => {
    server = await startHttpServer({
      address: '127.0.0.1:0',
      registry: new Registry(),
      health: () => ({ live: true, ready: true, leader: false }),
      logger,
    });
    await expect(
      startHttpServer({
        address: `127.0.0.1:${server.port}`,
        registry: new Registry(),
        health: () => ({ live: true, ready: true, leader: false }),
        logger,
      }),
    ).rejects.toThrow(/EADDRINUSE/);
  });
});
