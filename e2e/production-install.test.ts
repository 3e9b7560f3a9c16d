/**
 * What the container image runs, without a container engine: the built dist/src and dist/controllers next to
 * package.json and package-lock.json, production dependencies from `npm ci --omit=dev` (as the Dockerfile's deps
 * stage does), then the CLI. A runtime import of a dev dependency, or of a file outside what the image copies,
 * fails here. Needs `make build` first (test-e2e depends on it) and the npm registry.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { REPO_ROOT } from './support/cluster.js';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
};
let dir: string;

/** Runs the installed CLI with the Node.js running the tests; returns its exit status and output. */
function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['dist/src/cli/main.js', ...args], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? '', HOME: dir },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  for (const built of ['dist/src/cli/main.js', 'dist/controllers']) {
    if (!existsSync(join(REPO_ROOT, built))) throw new Error(`${built} is missing: run make build first`);
  }
  dir = mkdtempSync(join(tmpdir(), 'hpp-production-'));
  for (const path of ['package.json', 'package-lock.json', 'dist/src', 'dist/controllers']) {
    cpSync(join(REPO_ROOT, path), join(dir, path), { recursive: true });
  }
  const npm = spawnSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 170_000,
  });
  if (npm.status !== 0) throw new Error(`npm ci --omit=dev failed (${npm.status ?? npm.signal}): ${npm.stderr}`);
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('production install (what the image runs)', () => {
  it('holds the production dependencies and no dev dependency', () => {
    for (const name of Object.keys(pkg.dependencies)) expect(existsSync(join(dir, 'node_modules', name))).toBe(true);
    for (const dev of ['typescript', 'jest', 'yaml', 'pino-pretty']) {
      expect(existsSync(join(dir, 'node_modules', dev))).toBe(false);
    }
  });

  it('prints the package version with --version', () => {
    const r = cli(['--version']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('shows the run subcommand and its flags with run --help', () => {
    const r = cli(['run', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: hostpath-provisioner run/);
    for (const flag of ['--pv-dir', '--namespace', '--node-name', '--metrics-address', '--lease-name']) {
      expect(r.stdout).toContain(flag);
    }
  });
});
