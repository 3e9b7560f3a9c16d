import { Command } from 'commander';
import { ProvisionerManager } from '../../controllers/manager.js';
import { createClients, loadKubeConfig } from '../kube/client.js';
import { LeaderElector, type StoppedReason } from '../kube/leader.js';
import { addRunOptions, ConfigError, loadConfig, type Config } from '../runtime/config.js';
import { createHealth } from '../runtime/health.js';
import { startHttpServer } from '../runtime/http.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import { createMetrics } from '../runtime/metrics.js';
import { readPackageInfo } from './package-info.js';

/** Exit code when the configuration is invalid (like sysexits' EX_CONFIG). */
export const EXIT_CONFIG = 78;

/**
 * What happens when leadership ends: a lost Lease exits the process with code 1 at once — also while a SIGTERM
 * shutdown drains in-flight work, since another replica may lead now and nothing of ours may act any more
 * (`process.exit` is synchronous: no reconcile runs after it). A released Lease (the end of a shutdown) does nothing.
 *
 * @param logger - root logger.
 * @param shuttingDown - whether a SIGTERM/SIGINT shutdown is in progress (logged only).
 * @param exit - process.exit (tests pass a fake).
 * @returns the `onStoppedLeading` callback for {@link LeaderElector.run}.
 */
export function onStoppedLeading(
  logger: Logger,
  shuttingDown: () => boolean,
  exit: (code: number) => void = (code) => process.exit(code),
): (reason: StoppedReason) => void {
  return (reason) => {
    if (reason !== 'lost') return;
    logger.error({ shuttingDown: shuttingDown() }, 'lost the Lease: exiting so that the new leader acts alone');
    exit(1);
  };
}

/**
 * Runs the provisioner until SIGTERM/SIGINT: HTTP endpoints first (standbys are observable), then informers, then —
 * once this replica holds the Lease (or with leader election off) — the work queues. Losing the Lease exits the
 * process (code 1) at once, also during a SIGTERM shutdown, so a fresh start rebuilds state and no reconcile of this
 * replica runs beside the new leader, as client-go's leader election does. Leader election uses its own client and
 * rate limit (`clients.coordination`).
 *
 * @param config - validated configuration.
 * @param logger - root logger.
 * @returns when shut down cleanly.
 */
export async function runProvisioner(config: Config, logger: Logger): Promise<void> {
  const info = readPackageInfo(import.meta.url);
  const metrics = createMetrics(undefined, { version: info.version });
  const kc = loadKubeConfig(config.kubeconfig);
  const clients = createClients(kc, { qps: config.kubeApiQps, burst: config.kubeApiBurst });
  const manager = new ProvisionerManager({ config, clients, metrics, logger });
  let elector: LeaderElector | undefined;
  const health = createHealth({ informers: manager.informers(), isLeader: () => manager.isLeading() });
  const http = await startHttpServer({
    address: config.metricsAddress,
    registry: metrics.registry,
    logger,
    health: health.health,
  });
  logger.info(
    { version: info.version, port: http.port, namespace: config.namespace, provisioners: config.provisionerNames },
    'hostpath-provisioner starting',
  );

  let stopping = false;
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, graceSeconds: config.shutdownGraceSeconds }, 'shutting down: finishing in-flight work');
      void (async () => {
        await manager.shutdown(config.shutdownGraceSeconds);
        await elector?.release();
        await http.close();
        health.stop();
        resolve();
      })();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

  await manager.startInformers();
  if (config.leaderElect) {
    elector = new LeaderElector({
      coordination: clients.coordination,
      namespace: config.namespace,
      name: config.leaseName,
      identity: `${config.nodeName}_${process.pid}_${Math.random().toString(16).slice(2, 8)}`,
      leaseDurationSeconds: config.leaseDurationSeconds,
      renewDeadlineSeconds: config.renewDeadlineSeconds,
      retryPeriodSeconds: config.retryPeriodSeconds,
      logger,
      metrics,
    });
    void elector.run({
      onStartedLeading: () => {
        logger.info({ lease: `${config.namespace}/${config.leaseName}` }, 'became leader');
        void manager.startLeading();
      },
      onStoppedLeading: onStoppedLeading(logger, () => stopping),
    });
  } else {
    metrics.leader.set(1);
    await manager.startLeading();
  }
  await stopped;
  logger.info('stopped');
}

/**
 * The `run` subcommand: every configuration flag (each with an environment variable, see `run --help`).
 *
 * @returns the commander command to add to the program.
 */
export function runCommand(): Command {
  const cmd = new Command('run').description(
    "watch claims and provision hostPath volumes with helper pods that tolerate the target node's taints",
  );
  addRunOptions(cmd);
  cmd.action(async (opts: Record<string, unknown>) => {
    let config: Config;
    try {
      config = loadConfig(opts, process.env);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`hostpath-provisioner: ${err.message}\n`);
        process.exit(EXIT_CONFIG);
      }
      throw err;
    }
    const logger = createLogger({ level: config.logLevel, format: config.logFormat });
    try {
      await runProvisioner(config, logger);
    } catch (err) {
      logger.fatal({ err }, 'provisioner failed');
      process.exitCode = 1;
      throw err;
    }
    // Reconciles still running after the shutdown deadline must not act once the Lease is released: a new leader
    // owns the work now. Exit rather than wait for their timers.
    process.exit(process.exitCode ?? 0);
  });
  return cmd;
}
