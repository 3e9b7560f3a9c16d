/**
 * Jest global setup for e2e/: bring the local cluster up once per run with `bash e2e/cluster/up.sh` (which reuses
 * a healthy running cluster and returns once every node is Ready), then export the admin kubeconfig path as
 * `HPP_KUBECONFIG` for the tests. The cluster stays up afterwards; `make cluster-down` stops it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * The provisioner `make demo` leaves running serves every claim of the cluster; the tests run their own, so two would
 * act on each test's claims. Stop it (the demo starts it again when run).
 */
function stopDemoProvisioner(repo: string): void {
  const pidFile = resolve(repo, '.cluster', 'pids', 'demo-provisioner.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  try {
    process.kill(pid, 'SIGTERM');
    process.stdout.write(`e2e: stopped the demo's provisioner (pid ${pid}); the tests run their own\n`);
  } catch {
    // not running
  }
  rmSync(pidFile, { force: true });
}

/** The same for the Deployment a `make demo` in its default pod mode leaves on the real nodes (e2e/demo.sh). */
function stopDemoDeployment(repo: string): void {
  const marker = resolve(repo, '.cluster', 'demo-deployment');
  if (!existsSync(marker)) return;
  const kubectl = resolve(repo, '.cluster', 'bin', 'kubectl');
  const kubeconfig = resolve(repo, '.cluster', 'kubeconfig');
  const r = spawnSync(
    kubectl,
    ['--kubeconfig', kubeconfig, '-n', 'hostpath-provisioner', 'delete', 'deployment', 'hostpath-provisioner'].concat([
      '--ignore-not-found',
      '--cascade=foreground',
      '--wait=true',
      '--timeout=120s',
    ]),
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`could not stop the demo's provisioner Deployment: ${r.stderr}`);
  process.stdout.write("e2e: deleted the demo's provisioner Deployment; the tests run their own\n");
  rmSync(marker, { force: true });
}

export default function globalSetup(): void {
  const repo = resolve(import.meta.dirname, '..', '..');
  const script = resolve(repo, 'e2e', 'cluster', 'up.sh');
  if (!existsSync(script)) throw new Error(`e2e tests need the cluster scripts: ${script} is missing`);
  const started = Date.now();
  const result = spawnSync('bash', [script], { cwd: repo, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) {
    throw new Error(`e2e/cluster/up.sh failed (exit ${result.status ?? result.signal}); see .cluster/logs/`);
  }
  stopDemoProvisioner(repo);
  stopDemoDeployment(repo);
  process.env.HPP_KUBECONFIG = resolve(repo, '.cluster', 'kubeconfig');
  process.stdout.write(`e2e: cluster ready in ${Math.round((Date.now() - started) / 1000)} s\n`);
}
