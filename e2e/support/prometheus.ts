/**
 * A real Prometheus for e2e tests: Debian's `prometheus` package (installed with apt-get when missing, as the harness
 * installs what the real nodes need), started as a process scraping given targets every second and evaluating given
 * rule files every second, with its data in a temporary folder.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLUSTER_DIR, waitFor } from './cluster.js';

/** One instant-vector sample of a query answer. */
export interface Sample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

/** An alert as GET /api/v1/alerts lists it. */
export interface Alert {
  readonly labels: Record<string, string>;
  readonly state: 'pending' | 'firing';
}

/** A running Prometheus. */
export interface Prometheus {
  readonly url: string;
  /** Instant query at the current time: status `success` and its samples, or `error` and the message. */
  query(expr: string): Promise<{ status: string; samples: Sample[]; error?: string }>;
  /** The alerts that are pending or firing. */
  alerts(): Promise<Alert[]>;
  stop(): Promise<void>;
}

/** Installs Debian's prometheus package (prometheus and promtool) when `prometheus` is not on PATH. */
export function ensurePrometheus(): void {
  if (spawnSync('sh', ['-c', 'command -v prometheus && command -v promtool']).status === 0) return;
  const r = spawnSync(
    'sh',
    ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus'],
    {
      encoding: 'utf8',
      timeout: 600_000,
    },
  );
  if (r.status !== 0) throw new Error(`installing Debian's prometheus package failed: ${r.stderr}`);
}

/**
 * Runs `promtool check rules` on a rule file.
 * @returns its exit code and output.
 */
export function promtoolCheckRules(path: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'rules', path], { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * Starts Prometheus scraping `targets` (host:port, path /metrics) every second and evaluating `ruleFiles` every
 * second; returns once it is ready. Its log is `.cluster/logs/prometheus-<port>.log`.
 */
export async function startPrometheus(
  targets: readonly string[],
  ruleFiles: readonly string[] = [],
): Promise<Prometheus> {
  ensurePrometheus();
  const dir = mkdtempSync(join(tmpdir(), 'hpp-prometheus-'));
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [...ruleFiles],
      scrape_configs: [{ job_name: 'hostpath-provisioner', static_configs: [{ targets: [...targets] }] }],
    }),
  );
  const log = openSync(join(CLUSTER_DIR, 'logs', `prometheus-${port}.log`), 'w');
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', log, log] },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor('Prometheus ready', async () => (await fetch(`${url}/-/ready`).catch(() => undefined))?.ok === true, {
    timeoutMs: 60_000,
  });
  return {
    url,
    async query(expr) {
      const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: expr }).toString()}`);
      const body = (await res.json()) as { status: string; data?: { result: Sample[] }; error?: string };
      return { status: body.status, samples: body.data?.result ?? [], ...(body.error ? { error: body.error } : {}) };
    },
    async alerts() {
      const res = await fetch(`${url}/api/v1/alerts`);
      return ((await res.json()) as { data: { alerts: Alert[] } }).data.alerts;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
