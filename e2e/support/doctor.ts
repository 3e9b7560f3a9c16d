/**
 * Runs `hostpath-provisioner doctor` as a user would, from the built CLI (dist/), with the admin kubeconfig of the
 * test cluster and JSON output, and parses its findings.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { kubeconfigPath, REPO_ROOT } from './cluster.js';
import type { Finding } from '../../src/domain/diagnosis.js';

/** What one doctor run gave: its exit code (0 healthy, 1 needs attention, 2 could not look), findings, stderr. */
export interface DoctorRun {
  status: number | null;
  findings: Finding[];
  stderr: string;
}

/**
 * Runs doctor against the provisioner in `provisionerNamespace` with extra `args` (e.g. `--claim x`).
 * @returns the exit code, the findings of `-o json` (empty when it printed nothing) and stderr.
 * @throws SyntaxError when stdout is not JSON.
 */
export function runDoctor(provisionerNamespace: string, ...args: string[]): DoctorRun {
  const r = spawnSync(
    process.execPath,
    [
      join(REPO_ROOT, 'dist/src/cli/main.js'),
      'doctor',
      '--kubeconfig',
      kubeconfigPath(),
      '--provisioner-namespace',
      provisionerNamespace,
      '-o',
      'json',
      ...args,
    ],
    { encoding: 'utf8' },
  );
  const findings = r.stdout ? (JSON.parse(r.stdout) as { findings: Finding[] }).findings : [];
  return { status: r.status, findings, stderr: r.stderr };
}
