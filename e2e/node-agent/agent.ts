/**
 * The node agent: for every node of the nodes file, a kubelet API server (logs), a registered Node with its
 * heartbeat, and pod workers fed by one watch of all bound pods.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { posix } from 'node:path';
import { CoordinationV1Api, CoreV1Api, KubeConfig, VersionApi } from '@kubernetes/client-node';
import { realHostFs } from './host-fs.js';
import { describeError } from './kube.js';
import { startLogServer } from './log-server.js';
import type { Logger } from './logger.js';
import { goArch, type HostFacts } from './node-object.js';
import { startHeartbeat } from './node-heartbeat.js';
import type { NodeSpec } from './nodes-file.js';
import { PodManager } from './pod-manager.js';
import { watchPods } from './pod-watch.js';
import type { WorkerContext, WorkerTiming } from './pod-worker.js';

/** Parsed command line of the agent. */
export interface AgentConfig {
  kubeconfig: string;
  nodes: NodeSpec[];
  /** Folder of node folders: `<root>/<node>/<hostPath>`. */
  root: string;
  /** Container logs (`<logDir>/<ns>_<pod>_<uid>/<container>/<n>.log`). */
  logDir: string;
  /** Per-pod state: volumes and container roots. */
  stateDir: string;
  tlsCert: string;
  tlsKey: string;
  /** The nodes' InternalIP and the log servers' bind address. */
  address: string;
  unpullableImages: string[];
  heartbeatSeconds: number;
  timing: WorkerTiming;
}

function osImage(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    return m?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * Start the agent.
 *
 * @returns a function that stops it: watch and heartbeats stop, every container is killed; Nodes stay.
 * @throws Error when the TLS files cannot be read or a log server cannot listen.
 */
export async function startAgent(config: AgentConfig, log: Logger): Promise<() => Promise<void>> {
  const kc = new KubeConfig();
  kc.loadFromFile(config.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const coordination = kc.makeApiClient(CoordinationV1Api);
  const server = new URL(kc.getCurrentCluster()?.server ?? 'https://127.0.0.1:6443');

  let kubeletVersion = 'v0.0.0-hpp';
  try {
    kubeletVersion = (await kc.makeApiClient(VersionApi).getCode()).gitVersion;
  } catch (err) {
    log.warn({ err: describeError(err) }, 'cannot read the API server version; reporting a placeholder');
  }
  const host: HostFacts = {
    address: config.address,
    arch: goArch(process.arch),
    kernelVersion: release(),
    osImage: osImage(),
    kubeletVersion,
    bootID: bootId(),
  };
  const tls = { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) };
  const now = () => new Date();

  const contexts = new Map<string, WorkerContext>();
  const manager = new PodManager(contexts);
  const stops: (() => void)[] = [];
  const servers: { close(): void }[] = [];
  const unpullableEnv = config.unpullableImages;

  for (const spec of config.nodes) {
    const ctx: WorkerContext = {
      core,
      log,
      node: spec.name,
      address: config.address,
      root: config.root,
      podsDir: posix.join(config.stateDir, 'pods'),
      logDir: config.logDir,
      unpullable: [...unpullableEnv, ...spec.unpullableImages],
      envDefaults: { apiServer: { host: server.hostname, port: server.port || '443' } },
      hostFs: realHostFs,
      timing: config.timing,
      now,
    };
    contexts.set(spec.name, ctx);
    const { server: https, port } = await startLogServer(
      tls,
      config.address,
      0,
      {
        find: (ns, pod, container, previous) => {
          const found = manager.findLog(spec.name, ns, pod, container, previous);
          const worker = found.worker;
          return { ...found, ...(worker ? { running: () => worker.isRunning(container) } : {}) };
        },
      },
      log,
    );
    servers.push(https);
    log.info({ node: spec.name, kubeletEndpoint: `${config.address}:${port}` }, 'kubelet API (logs) listening');
    stops.push(
      startHeartbeat({
        core,
        coordination,
        log,
        spec,
        host,
        kubeletPort: port,
        periodMs: config.heartbeatSeconds * 1000,
        now,
        onGone: (node) => {
          https.close();
          void manager.dropNode(node);
        },
      }),
    );
  }
  stops.push(watchPods(kc, core, 'spec.nodeName!=', manager, log));

  return async () => {
    for (const s of stops) s();
    for (const s of servers) s.close();
    await manager.shutdown();
  };
}
