import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { askReadiness, READINESS_TIMEOUT_MS } from '../src/cli/doctor.js';

describe('askReadiness (doctor asking a provisioner pod)', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/hang') return; // never answers
      if (req.url === '/metrics') {
        res
          .writeHead(200)
          .end(
            '# TYPE hostpath_provisioner_build_info gauge\nhostpath_provisioner_build_info{version="0.1.0",node_version="v24.22.3"} 1\n',
          );
        return;
      }
      res.writeHead(req.url === '/readyz' ? 200 : 503).end(req.url === '/readyz' ? 'ok: leader\n' : 'not ready\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const target = (path: string) => ({ pod: 'p', namespace: 'n', url: `${base}${path}` });

  it('returns the status code and body', async () => {
    expect(await askReadiness(target('/readyz'))).toEqual({
      kind: 'answer',
      statusCode: 200,
      body: 'ok: leader\n',
      version: '0.1.0',
    });
    expect(await askReadiness(target('/other'))).toEqual({
      kind: 'answer',
      statusCode: 503,
      body: 'not ready\n',
      version: '0.1.0',
    });
  });

  it('gives up after the timeout instead of hanging', async () => {
    const started = Date.now();
    expect(await askReadiness(target('/hang'))).toEqual({ kind: 'error', message: 'no answer within 2 s' });
    expect(Date.now() - started).toBeLessThan(READINESS_TIMEOUT_MS + 1500);
  });

  it('turns a refused connection into an error outcome', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const outcome = await askReadiness({ pod: 'p', namespace: 'n', url: `http://127.0.0.1:${port}/readyz` });
    expect(outcome).toEqual({ kind: 'error', message: expect.stringMatching(/ECONNREFUSED/) });
  });
});
