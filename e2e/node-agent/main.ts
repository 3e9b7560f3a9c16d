#!/usr/bin/env node
/**
 * hpp-node-agent: plays the kubelet for the nodes of a YAML file against a real control plane (e2e tests only).
 * Must run as root (mount namespaces, bind mounts, setpriv).
 */
import { resolve, posix } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { startAgent, type AgentConfig } from './agent.js';
import { createLogger } from './logger.js';
import { loadNodesFile } from './nodes-file.js';

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

const program = new Command('hpp-node-agent')
  .description('Play the kubelet for the nodes listed in a YAML file (e2e tests of hostpath-provisioner)')
  .requiredOption('--kubeconfig <file>', 'admin kubeconfig of the cluster')
  .option('--nodes <file>', 'nodes file', 'e2e/node-agent/nodes.yaml')
  .option('--root <dir>', 'folder of node folders: a hostPath /x of node n is <root>/n/x', '.cluster/nodes')
  .option('--log-dir <dir>', 'container logs (default <root>/../logs/pods)')
  .option('--state-dir <dir>', 'per-pod volumes and container roots (default <root>/../node-agent)')
  .option('--tls-cert <file>', 'kubelet serving certificate', '.cluster/pki/kubelet.crt')
  .option('--tls-key <file>', 'kubelet serving key', '.cluster/pki/kubelet.key')
  .option('--address <ip>', "nodes' InternalIP and the log servers' bind address", '127.0.0.1')
  .option('--unpullable-images <list>', 'comma-separated images that fail to pull (also env UNPULLABLE_IMAGES)')
  .option('--heartbeat-seconds <s>', 'Lease renew and status period', positive, 10)
  .option('--max-grace-seconds <s>', 'cap on the termination grace period honoured on deletion', positive, 10)
  .option('--log-level <level>', 'pino log level', 'info');

program.parse();
const o = program.opts<{
  kubeconfig: string;
  nodes: string;
  root: string;
  logDir?: string;
  stateDir?: string;
  tlsCert: string;
  tlsKey: string;
  address: string;
  unpullableImages?: string;
  heartbeatSeconds: number;
  maxGraceSeconds: number;
  logLevel: string;
}>();

const log = createLogger(o.logLevel);
const root = resolve(o.root);
const config: AgentConfig = {
  kubeconfig: o.kubeconfig,
  nodes: loadNodesFile(o.nodes),
  root,
  logDir: resolve(o.logDir ?? posix.join(root, '..', 'logs', 'pods')),
  stateDir: resolve(o.stateDir ?? posix.join(root, '..', 'node-agent')),
  tlsCert: o.tlsCert,
  tlsKey: o.tlsKey,
  address: o.address,
  unpullableImages: [...list(o.unpullableImages), ...list(process.env.UNPULLABLE_IMAGES)],
  heartbeatSeconds: o.heartbeatSeconds,
  timing: {
    imagePullMs: 1000,
    retryMs: 1000,
    restartBaseSeconds: 1,
    restartMaxSeconds: 10,
    maxGraceSeconds: o.maxGraceSeconds,
  },
};
log.info({ nodes: config.nodes.map((n) => n.name), root, logDir: config.logDir }, 'node agent starting');
const stop = await startAgent(config, log);

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: killing containers');
    void stop().finally(() => process.exit(0));
  });
}
