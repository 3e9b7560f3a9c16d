/**
 * One pod on one node, from admission to removal — the kubelet's pod worker, much reduced:
 * admit (NoExecute taints) → pull (unpullable images) → volumes → run containers with the restart policy →
 * report status (strategic merge patch on pods/status) → on deletion kill, report, DELETE with grace 0.
 */
import { rm } from 'node:fs/promises';
import { posix } from 'node:path';
import type { CoreV1Api, V1Container, V1Pod } from '@kubernetes/client-node';
import { containerCapabilities, setprivCapabilityArgs } from './capabilities.js';
import { planContainerRoot, renderRootScript, type HostFs } from './container-root.js';
import {
  CreateContainerConfigError,
  envReferences,
  expandVars,
  resolveEnv,
  type EnvDefaults,
} from './container-env.js';
import { startContainerProcess, type ContainerProcess } from './container-process.js';
import { errImagePullMessage, imagePullBackOffMessage, isUnpullable } from './images.js';
import { apiStatus, describeError, sleep, strategicMerge } from './kube.js';
import { containerLogPath } from './log-store.js';
import type { Logger } from './logger.js';
import {
  buildPodStatusPatch,
  buildRejectedPatch,
  podConditions,
  podPhase,
  restartDelaySeconds,
  shouldRestart,
  terminatedReason,
  type ContainerRecord,
  type PodRecord,
  type RestartPolicy,
  type Terminated,
} from './pod-status.js';
import { untoleratedNoExecuteTaints } from './tolerations.js';
import { containerVolumeMounts, planPodVolumes, type ReadyVolume } from './volume-plan.js';
import { FailedMountError, prepareVolumes } from './volumes.js';

/** Timings, in milliseconds unless named otherwise; short so that tests stay quick. */
export interface WorkerTiming {
  /** How long ErrImagePull shows before ImagePullBackOff, and between pull attempts. */
  imagePullMs: number;
  /** Retry period for volume setup and env errors. */
  retryMs: number;
  /** Crash-loop back-off base and cap, seconds. */
  restartBaseSeconds: number;
  restartMaxSeconds: number;
  /** Upper bound on the termination grace period honoured on deletion, seconds. */
  maxGraceSeconds: number;
}

/** Everything a pod worker needs from the agent. */
export interface WorkerContext {
  core: CoreV1Api;
  log: Logger;
  node: string;
  /** This node's address: hostIP and podIP (pods share the host network). */
  address: string;
  /** Folder of node folders (`<root>/<node>/<hostPath>`). */
  root: string;
  /** Folder for per-pod state (volumes, container roots). */
  podsDir: string;
  logDir: string;
  unpullable: readonly string[];
  envDefaults: EnvDefaults;
  hostFs: HostFs;
  timing: WorkerTiming;
  now: () => Date;
}

/** Look up a container's log file for the log server. */
export interface LogLookup {
  file?: string;
  error?: string;
}

export class PodWorker {
  private pod: V1Pod;
  private record: PodRecord | undefined;
  private readonly processes = new Map<string, ContainerProcess>();
  private readonly stop = new AbortController();
  private terminal = false;
  private gone = false;
  private started = false;
  private deleting: Promise<void> | undefined;
  private running: Promise<void> = Promise.resolve();
  private syncWanted = false;
  private syncing: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(
    private readonly ctx: WorkerContext,
    pod: V1Pod,
  ) {
    this.pod = pod;
    this.log = ctx.log.child({ pod: `${this.namespace}/${this.name}`, uid: this.uid, node: ctx.node });
  }

  get node(): string {
    return this.ctx.node;
  }
  get uid(): string {
    return this.pod.metadata?.uid ?? '';
  }
  get name(): string {
    return this.pod.metadata?.name ?? '';
  }
  get namespace(): string {
    return this.pod.metadata?.namespace ?? '';
  }
  private get policy(): RestartPolicy {
    return (this.pod.spec?.restartPolicy ?? 'Always') as RestartPolicy;
  }

  /** Take the latest version of the pod (level-based): start it the first time, terminate it once deleting. */
  update(pod: V1Pod): void {
    this.pod = pod;
    if (!this.started) {
      this.started = true;
      this.running = this.run().catch((err) => this.log.error({ err: describeError(err) }, 'pod worker failed'));
    }
    if (pod.metadata?.deletionTimestamp && !this.deleting) {
      this.deleting = this.terminate().catch((err) =>
        this.log.error({ err: describeError(err) }, 'termination failed'),
      );
    }
  }

  /** The pod is gone from the API (deleted, or its node was): kill everything and forget it. */
  async remove(): Promise<void> {
    this.gone = true;
    this.stop.abort();
    for (const p of this.processes.values()) p.kill('SIGKILL');
    await this.running;
    await rm(posix.join(this.ctx.podsDir, this.uid), { recursive: true, force: true }).catch(() => undefined);
  }

  /**
   * The log file of a container for `/containerLogs`: the current run, or the previous one with `previous`.
   * An error text when the container has not started (as the kubelet answers 400).
   */
  logFile(container: string, previous: boolean): LogLookup {
    const c = this.record?.containers.find((x) => x.name === container);
    if (!c) {
      const known = (this.pod.spec?.containers ?? []).some((x) => x.name === container);
      return known
        ? { error: `container "${container}" in pod "${this.name}" is waiting to start: ContainerCreating` }
        : { error: `container ${container} is not valid for pod ${this.name}` };
    }
    const run = previous ? c.restartCount - 1 : c.restartCount;
    if (previous && run < 0)
      return { error: `previous terminated container "${container}" in pod "${this.name}" not found` };
    if (!previous && c.state.kind === 'waiting' && !c.containerID) {
      return { error: `container "${container}" in pod "${this.name}" is waiting to start: ${c.state.reason}` };
    }
    return { file: containerLogPath(this.ctx.logDir, this.podRef(), container, run) };
  }

  /** Whether a container is running now (the log server stops following when it is not). */
  isRunning(container: string): boolean {
    return this.record?.containers.find((c) => c.name === container)?.state.kind === 'running';
  }

  private podRef() {
    return { namespace: this.namespace, name: this.name, uid: this.uid };
  }

  private async run(): Promise<void> {
    const pod = this.pod;
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') {
      this.terminal = true;
      return; // finished before (agent restart): never run it again
    }
    // Admission: the kubelet refuses pods that do not tolerate the node's NoExecute taints.
    const node = await this.ctx.core.readNode({ name: this.ctx.node });
    const untolerated = untoleratedNoExecuteTaints(pod.spec?.tolerations, node.spec?.taints);
    if (untolerated.length > 0) {
      this.terminal = true;
      this.log.info({ taints: untolerated }, 'rejecting pod: untolerated NoExecute taints');
      await this.patch(
        buildRejectedPatch('TaintToleration', 'Predicate TaintToleration failed', this.ctx.address, this.ctx.now()),
      );
      return;
    }
    this.record = this.initialRecord(pod);
    await this.requestSync();

    // Images.
    const containers = pod.spec?.containers ?? [];
    const missing = (c: V1Container) => isUnpullable(c.image ?? '', this.ctx.unpullable);
    while (!this.stop.signal.aborted && containers.some(missing)) {
      for (const c of containers.filter(missing)) {
        this.setState(c.name, { kind: 'waiting', reason: 'ErrImagePull', message: errImagePullMessage(c.image ?? '') });
      }
      await this.requestSync();
      await sleep(this.ctx.timing.imagePullMs, this.stop.signal);
      if (this.stop.signal.aborted) return;
      for (const c of containers.filter(missing)) {
        this.setState(c.name, {
          kind: 'waiting',
          reason: 'ImagePullBackOff',
          message: imagePullBackOffMessage(c.image ?? ''),
        });
      }
      await this.requestSync();
      await sleep(this.ctx.timing.imagePullMs * 4, this.stop.signal);
    }

    // Volumes.
    let ready: Map<string, ReadyVolume> | undefined;
    while (!this.stop.signal.aborted && !ready) {
      try {
        const plan = planPodVolumes(pod.spec?.volumes, {
          root: this.ctx.root,
          node: this.ctx.node,
          podDir: this.podDir(),
          podName: pod.metadata?.name ?? '',
        });
        ready = await prepareVolumes({ core: this.ctx.core, root: this.ctx.root, node: this.ctx.node }, pod, plan);
      } catch (err) {
        this.log.warn(
          { err: describeError(err), failedMount: err instanceof FailedMountError },
          'volume setup failed; retrying',
        );
        await sleep(this.ctx.timing.retryMs, this.stop.signal);
      }
    }
    if (!ready) return;
    await Promise.all(containers.map((c) => this.runContainer(c, ready)));
    await this.requestSync();
  }

  private podDir(): string {
    return posix.join(this.ctx.podsDir, this.uid);
  }

  /** The first record: containers waiting in ContainerCreating, or as the status says after an agent restart. */
  private initialRecord(pod: V1Pod): PodRecord {
    const now = this.ctx.now();
    const statuses = pod.status?.containerStatuses ?? [];
    const containers: ContainerRecord[] = (pod.spec?.containers ?? []).map((c) => {
      const s = statuses.find((x) => x.name === c.name);
      const t = s?.state?.terminated;
      const record: ContainerRecord = {
        name: c.name,
        image: c.image ?? '',
        restartCount: s?.restartCount ?? 0,
        state: { kind: 'waiting', reason: 'ContainerCreating' },
      };
      if (t && !shouldRestart(this.policy, t.exitCode)) {
        record.state = {
          kind: 'terminated',
          exitCode: t.exitCode,
          reason: t.reason ?? terminatedReason(t.exitCode),
          finishedAt: t.finishedAt ? new Date(t.finishedAt) : now,
          ...(t.startedAt ? { startedAt: new Date(t.startedAt) } : {}),
        };
        if (s?.containerID) record.containerID = s.containerID;
      } else if (s?.state?.running || t) {
        // A run the agent lost (restart): the kubelet's ContainerStatusUnknown, then a fresh run.
        record.lastState = {
          kind: 'terminated',
          exitCode: 137,
          reason: 'ContainerStatusUnknown',
          message: 'The container could not be located when the pod was terminated',
          finishedAt: now,
        };
        record.restartCount += 1;
      }
      return record;
    });
    const startTime = pod.status?.startTime ? new Date(pod.status.startTime) : now;
    return {
      phase: 'Pending',
      hostIP: this.ctx.address,
      podIP: this.ctx.address,
      startTime,
      containers,
      conditions: [],
    };
  }

  private container(name: string): ContainerRecord {
    const c = this.record?.containers.find((x) => x.name === name);
    if (!c) throw new Error(`no record for container ${name}`);
    return c;
  }

  private setState(name: string, state: ContainerRecord['state']): void {
    const c = this.container(name);
    if (c.state.kind === 'terminated' && state.kind !== 'terminated') return; // never move a terminated container back
    c.state = state;
  }

  private async runContainer(spec: V1Container, volumes: ReadonlyMap<string, ReadyVolume>): Promise<void> {
    const signal = this.stop.signal;
    while (!signal.aborted) {
      const record = this.container(spec.name);
      if (record.state.kind === 'terminated') return;
      let proc: ContainerProcess;
      const startedAt = this.ctx.now();
      const logFile = containerLogPath(this.ctx.logDir, this.podRef(), spec.name, record.restartCount);
      const rootDir = posix.join(this.podDir(), 'roots', `${spec.name}-${record.restartCount}`);
      try {
        const script = await this.containerScript(spec, volumes, rootDir);
        proc = startContainerProcess(script, rootDir, logFile);
      } catch (err) {
        const reason =
          err instanceof CreateContainerConfigError ? 'CreateContainerConfigError' : 'CreateContainerError';
        this.log.warn({ container: spec.name, err: describeError(err) }, 'cannot create container; retrying');
        this.setState(spec.name, { kind: 'waiting', reason, message: describeError(err) });
        await this.requestSync();
        await sleep(this.ctx.timing.retryMs, signal);
        continue;
      }
      this.processes.set(spec.name, proc);
      record.containerID = `hpp://${this.uid}/${spec.name}/${record.restartCount}`;
      this.setState(spec.name, { kind: 'running', startedAt });
      this.log.info({ container: spec.name, pid: proc.pid, restartCount: record.restartCount }, 'container started');
      void this.requestSync();
      const exit = await proc.exited;
      this.processes.delete(spec.name);
      const terminated: Terminated = {
        kind: 'terminated',
        exitCode: exit.exitCode,
        ...(exit.signal !== undefined ? { signal: exit.signal } : {}),
        reason: terminatedReason(exit.exitCode),
        startedAt,
        finishedAt: this.ctx.now(),
      };
      this.log.info({ container: spec.name, exitCode: exit.exitCode }, 'container exited');
      if (signal.aborted || !shouldRestart(this.policy, exit.exitCode)) {
        this.setState(spec.name, terminated);
        await this.requestSync();
        return;
      }
      const delay = restartDelaySeconds(
        record.restartCount,
        this.ctx.timing.restartBaseSeconds,
        this.ctx.timing.restartMaxSeconds,
      );
      record.lastState = terminated;
      record.restartCount += 1;
      this.setState(spec.name, {
        kind: 'waiting',
        reason: 'CrashLoopBackOff',
        message: `back-off ${delay}s restarting failed container=${spec.name} pod=${this.name}_${this.namespace}(${this.uid})`,
      });
      await this.requestSync();
      await sleep(delay * 1000, signal);
    }
  }

  /** Resolve env, mounts and identity of a container into its start script. */
  private async containerScript(spec: V1Container, volumes: ReadonlyMap<string, ReadyVolume>, rootDir: string) {
    const pod = this.pod;
    const ns = this.namespace;
    const refs = envReferences(spec);
    const configMaps = new Map<string, Record<string, string>>();
    const secrets = new Map<string, Record<string, string>>();
    for (const name of refs.configMaps) {
      const cm = await this.ctx.core.readNamespacedConfigMap({ name, namespace: ns }).catch(() => undefined);
      if (cm) configMaps.set(name, cm.data ?? {});
    }
    for (const name of refs.secrets) {
      const s = await this.ctx.core.readNamespacedSecret({ name, namespace: ns }).catch(() => undefined);
      if (s) {
        const data: Record<string, string> = {};
        for (const [k, v] of Object.entries(s.data ?? {})) data[k] = Buffer.from(v, 'base64').toString('utf8');
        secrets.set(name, data);
      }
    }
    const ips = { hostIP: this.ctx.address, podIP: this.ctx.address };
    const env = resolveEnv(
      pod,
      spec,
      { configMap: (n) => configMaps.get(n), secret: (n) => secrets.get(n) },
      ips,
      this.ctx.envDefaults,
    );
    const argv = [...(spec.command ?? []), ...(spec.args ?? [])].map((a) => expandVars(a, env));
    if (argv.length === 0) {
      throw new CreateContainerConfigError(
        `container ${spec.name} has no command: the node agent runs no image entrypoint`,
      );
    }
    const psc = pod.spec?.securityContext;
    const csc = spec.securityContext;
    const uid = csc?.runAsUser ?? psc?.runAsUser;
    const gid = csc?.runAsGroup ?? psc?.runAsGroup ?? 0;
    const groups = [...(psc?.supplementalGroups ?? []), ...(psc?.fsGroup !== undefined ? [psc.fsGroup] : [])];
    const mounts = containerVolumeMounts(spec, volumes);
    const steps = planContainerRoot(mounts, this.ctx.hostFs);
    const privileges = setprivCapabilityArgs(containerCapabilities(csc), csc?.allowPrivilegeEscalation === false);
    return renderRootScript(rootDir, steps, {
      argv,
      env,
      workingDir: spec.workingDir || '/',
      ...(pod.spec?.hostNetwork ? {} : { hostname: env.HOSTNAME ?? this.name }),
      ...(uid !== undefined && uid !== 0 ? { user: { uid, gid, supplementaryGroups: groups } } : {}),
      ...(privileges.length > 0 ? { privileges } : {}),
    });
  }

  /** Deletion requested: stop the containers (SIGTERM, SIGKILL after the grace period), report, then DELETE. */
  private async terminate(): Promise<void> {
    const grace = Math.min(this.pod.metadata?.deletionGracePeriodSeconds ?? 30, this.ctx.timing.maxGraceSeconds);
    this.log.info({ graceSeconds: grace }, 'pod deleted: killing containers');
    this.stop.abort();
    for (const p of this.processes.values()) p.kill('SIGTERM');
    const killer = setTimeout(() => {
      for (const p of this.processes.values()) p.kill('SIGKILL');
    }, grace * 1000);
    await this.running;
    clearTimeout(killer);
    if (this.gone) return;
    if (this.record) {
      this.terminal = true;
      for (const c of this.record.containers) {
        if (c.state.kind === 'waiting') {
          const exitCode = c.containerID ? 137 : 0;
          c.state = {
            kind: 'terminated',
            exitCode,
            reason: c.containerID ? 'Error' : 'ContainerStatusUnknown',
            finishedAt: this.ctx.now(),
          };
        }
      }
      await this.requestSync();
    }
    try {
      await this.ctx.core.deleteNamespacedPod({
        name: this.name,
        namespace: this.namespace,
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid: this.uid } },
      });
      this.log.info('pod removed');
    } catch (err) {
      if (apiStatus(err) !== 404 && apiStatus(err) !== 409) throw err;
    }
  }

  /** Ask for the current record to be written; resolves once a write that includes it has been attempted. */
  private requestSync(): Promise<void> {
    this.syncWanted = true;
    this.syncing ??= this.syncLoop().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async syncLoop(): Promise<void> {
    let failures = 0;
    while (this.syncWanted && !this.gone && this.record) {
      this.syncWanted = false;
      const record = this.record;
      const previous = record.phase;
      if (previous !== 'Succeeded' && previous !== 'Failed') {
        record.phase = podPhase(this.policy, record.containers, this.terminal);
      }
      record.conditions = podConditions(record.phase, record.containers, record.conditions, this.ctx.now());
      try {
        await this.patch(buildPodStatusPatch(record));
        failures = 0;
      } catch (err) {
        if (apiStatus(err) === 404) return;
        this.log.warn({ err: describeError(err) }, 'status update failed; retrying');
        if (++failures > 10) return;
        this.syncWanted = true;
        await sleep(500);
      }
    }
  }

  private async patch(body: object): Promise<void> {
    await this.ctx.core.patchNamespacedPodStatus({ name: this.name, namespace: this.namespace, body }, strategicMerge);
  }
}
