/**
 * `make bench`: brings up the test cluster with N stand-in nodes (no real nodes), runs every provisioner under test
 * R times for each claim count (interleaved, so a slow minute of the machine does not fall on one provisioner), and
 * writes every run and the medians with their spread to `bench-results/<time>.json` and `.md`. See BENCHMARKS.md.
 */
import { spawnSync } from 'node:child_process';
import { cpus, totalmem, release } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { BUILT_IN, loadSpec } from './provisioners.js';
import { spread, type Spread } from './stats.js';
import type { ProvisionerSpec, RunResult } from './run.js';

const REPO = join(import.meta.dirname, '..', '..');

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
};
const bytes = (value: string): number => {
  const m = /^(\d+)(Mi|Gi)$/.exec(value);
  if (!m) throw new InvalidArgumentError('a size like 128Mi or 1Gi');
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 ** 3 : 1024 ** 2);
};

const options = new Command('bench')
  .description('Measure provisioners side by side on the test cluster (BENCHMARKS.md)')
  .option('--nodes <n>', 'stand-in nodes', positiveInt, 10)
  .option('--claims <k...>', 'claim counts', (v: string, prev: number[] | undefined) => [
    ...(prev ?? []),
    positiveInt(v),
  ])
  .option('--runs <r>', 'runs of each configuration', positiveInt, 3)
  .option('--provisioners <names>', `built-in provisioners (${Object.keys(BUILT_IN).join(', ')})`, (v) => v.split(','))
  .option('--peer <file...>', 'a provisioner described in a file (bench/peers/)')
  .option('--memory-limit <size>', 'also run this project under this memory limit (e.g. 128Mi)', bytes)
  .option('--out <dir>', 'results folder', join(REPO, 'bench-results'))
  .parse()
  .opts<{
    nodes: number;
    claims?: number[];
    runs: number;
    provisioners?: string[];
    peer?: string[];
    memoryLimit?: number;
    out: string;
  }>();

interface Configuration {
  readonly label: string;
  readonly spec: ProvisionerSpec;
  readonly claims: number;
  readonly memoryLimitBytes?: number;
}

const names = options.provisioners ?? Object.keys(BUILT_IN);
const specs: ProvisionerSpec[] = [];
for (const name of names) {
  const spec = BUILT_IN[name];
  if (!spec) {
    console.error(`bench: unknown provisioner ${name} (known: ${Object.keys(BUILT_IN).join(', ')})`);
    process.exit(64);
  }
  specs.push(spec);
}
try {
  for (const file of options.peer ?? []) specs.push(loadSpec(file));
} catch (err) {
  console.error(`bench: ${(err as Error).message}`);
  process.exit(64);
}
const configurations: Configuration[] = [];
for (const claims of options.claims ?? [200]) {
  for (const spec of specs) configurations.push({ label: spec.name, spec, claims });
  if (options.memoryLimit !== undefined) {
    const spec = BUILT_IN['hostpath-provisioner']!;
    const mib = options.memoryLimit / 1024 ** 2;
    configurations.push({
      label: `${spec.name} (${mib} MiB limit)`,
      spec,
      claims,
      memoryLimitBytes: options.memoryLimit,
    });
  }
}

const nodes = Array.from({ length: options.nodes }, (_, i) => `bench-${i}`);
const nodesFile = join(REPO, 'dist', 'bench', `nodes-${options.nodes}.yaml`);
writeFileSync(
  nodesFile,
  `# Written by bench/main.ts: ${options.nodes} untainted stand-in nodes.\n` +
    nodes.map((n) => `- name: ${n}\n  labels:\n    hpp.test/role: bench\n`).join(''),
);
const up = spawnSync('bash', [join(REPO, 'e2e', 'cluster', 'up.sh')], {
  stdio: 'inherit',
  env: { ...process.env, NODES_FILE: nodesFile, HPP_REAL_NODES: '0' },
});
if (up.status !== 0) process.exit(up.status ?? 1);

const { runOnce } = await import('./run.js');
const { loadKubeConfig } = await import('../e2e/support/cluster.js');
const { CoreV1Api } = await import('@kubernetes/client-node');
const present = new Set(
  (await loadKubeConfig().makeApiClient(CoreV1Api).listNode()).items.map((n) => n.metadata?.name),
);
const missing = nodes.filter((n) => !present.has(n));
if (missing.length > 0) {
  console.error(
    `bench: the running cluster lacks nodes ${missing.join(', ')}: it was started with another nodes file; ` +
      'run `make cluster-down` and `make bench` again',
  );
  process.exit(69);
}

const results: { configuration: string; run: number; result: RunResult }[] = [];
for (let run = 1; run <= options.runs; run++) {
  for (const c of configurations) {
    console.log(`bench: run ${run}/${options.runs}: ${c.label}, ${c.claims} claims, ${options.nodes} nodes`);
    const result = await runOnce({
      spec: c.spec,
      claims: c.claims,
      nodes,
      ...(c.memoryLimitBytes !== undefined ? { memoryLimitBytes: c.memoryLimitBytes } : {}),
      log: (line) => console.log(`  ${line}`),
    });
    results.push({ configuration: `${c.label} K=${c.claims}`, run, result });
    console.log(`  ${JSON.stringify(result)}`);
  }
}

/** Medians and spread of one configuration's runs. */
interface Summary {
  readonly configuration: string;
  readonly runs: number;
  readonly allBoundSeconds: Spread;
  readonly p50: Spread;
  readonly p95: Spread;
  readonly p99: Spread;
  readonly deleteAllSeconds: Spread;
  readonly cpuSeconds: Spread;
  readonly cpuSecondsPerClaim: Spread;
  readonly peakRssMB: Spread;
  readonly requestsPerClaim: Spread;
  readonly oomKills: number;
  readonly requestsByVerbResource: Readonly<Record<string, number>>;
}

const summaries: Summary[] = [...new Set(results.map((r) => r.configuration))].map((configuration) => {
  const runs = results.filter((r) => r.configuration === configuration).map((r) => r.result);
  const of = (f: (r: RunResult) => number): Spread => spread(runs.map(f));
  const last = runs[runs.length - 1]!;
  return {
    configuration,
    runs: runs.length,
    allBoundSeconds: of((r) => r.allBoundSeconds),
    p50: of((r) => r.latency.p50),
    p95: of((r) => r.latency.p95),
    p99: of((r) => r.latency.p99),
    deleteAllSeconds: of((r) => r.deleteAllSeconds),
    cpuSeconds: of((r) => r.cpuSeconds),
    cpuSecondsPerClaim: of((r) => r.cpuSeconds / r.claims),
    peakRssMB: of((r) => r.peakRssBytes / 1e6),
    requestsPerClaim: of((r) => r.requestsPerClaim),
    oomKills: runs.reduce((n, r) => n + r.oomKills, 0),
    requestsByVerbResource: Object.fromEntries(
      Object.entries(last.requests.byVerbResource).map(([k, v]) => [k, Number((v / last.claims).toFixed(2))]),
    ),
  };
});

const versions = {
  node: process.version,
  kubernetes: spawnSync(join(REPO, '.cluster', 'bin', 'kubectl'), ['version', '--client', '-o', 'json'])
    .stdout?.toString()
    .match(/"gitVersion":\s*"([^"]+)"/)?.[1],
  commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO }).stdout?.toString().trim(),
};
const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model,
  memoryGiB: Math.round(totalmem() / 1024 ** 3),
  kernel: release(),
};
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
mkdirSync(options.out, { recursive: true });
const jsonPath = join(options.out, `${stamp}.json`);
writeFileSync(
  jsonPath,
  JSON.stringify({ machine, versions, nodes: options.nodes, runs: options.runs, summaries, results }, null, 2),
);
const mdPath = join(options.out, `${stamp}.md`);
writeFileSync(mdPath, markdown(summaries));
console.log(markdown(summaries));
console.log(`bench: results in ${jsonPath} and ${mdPath}`);

function markdown(rows: readonly Summary[]): string {
  const f = (s: Spread, digits = 1): string =>
    s.min === s.max
      ? s.median.toFixed(digits)
      : `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
  const lines = [
    `${options.nodes} stand-in nodes, ${options.runs} runs each: median (min–max). Times in seconds.`,
    '',
    '| configuration | all Bound | p50 | p95 | p99 | delete all | CPU s | CPU s / claim | peak RSS MB | requests / claim | OOM kills |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.configuration} | ${f(r.allBoundSeconds)} | ${f(r.p50)} | ${f(r.p95)} | ${f(r.p99)} | ${f(r.deleteAllSeconds)} | ${f(r.cpuSeconds)} | ${f(r.cpuSecondsPerClaim, 3)} | ${f(r.peakRssMB, 0)} | ${f(r.requestsPerClaim)} | ${r.oomKills} |`,
    ),
    '',
    'Requests per claim by verb and resource (last run):',
    '',
    ...rows.map(
      (r) =>
        `- ${r.configuration}: ${Object.entries(r.requestsByVerbResource)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
    ),
    '',
  ];
  return lines.join('\n');
}
