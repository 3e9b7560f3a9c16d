/**
 * The agent's record of a pod and the status patch built from it, following the kubelet's status manager
 * (pkg/kubelet/kubelet_pods.go `getPhase`, `generateAPIPodStatus`; pkg/kubelet/status/generate.go).
 * Pure: times are arguments.
 */
import { rfc3339 } from './time.js';

export interface Waiting {
  kind: 'waiting';
  reason: string;
  message?: string;
}
export interface Running {
  kind: 'running';
  startedAt: Date;
}
export interface Terminated {
  kind: 'terminated';
  exitCode: number;
  /** Signal number when the process was killed by one. */
  signal?: number;
  reason: string;
  message?: string;
  startedAt?: Date;
  finishedAt: Date;
}
export type ContainerState = Waiting | Running | Terminated;

/** One container of a pod as the agent sees it. */
export interface ContainerRecord {
  name: string;
  image: string;
  restartCount: number;
  state: ContainerState;
  lastState?: Terminated;
  /** `hpp://<pod uid>/<name>/<restartCount>` once a process was started. */
  containerID?: string;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';
export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';

export interface PodCondition {
  type: string;
  status: 'True' | 'False';
  reason?: string;
  message?: string;
  lastTransitionTime: Date;
}

/** Everything the agent reports for a pod. */
export interface PodRecord {
  phase: PodPhase;
  hostIP: string;
  podIP: string;
  startTime: Date;
  containers: ContainerRecord[];
  conditions: PodCondition[];
}

/**
 * The pod phase from its containers, like the kubelet's `getPhase`: a container that never ran keeps the pod
 * Pending; any running container makes it Running; when all have stopped, Always (and OnFailure with a failure)
 * means Running (restarts follow) unless the pod is terminal (being deleted), Never means Failed unless all
 * exited 0.
 *
 * @param terminal true when no container will run again (deletion, or the agent gave up).
 */
export function podPhase(policy: RestartPolicy, containers: readonly ContainerRecord[], terminal = false): PodPhase {
  let pending = 0;
  let running = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const c of containers) {
    if (c.state.kind === 'running') running++;
    else if (c.state.kind === 'terminated') {
      stopped++;
      if (c.state.exitCode === 0) succeeded++;
    } else if (c.lastState) stopped++;
    else pending++;
  }
  if (terminal) {
    if (running > 0 || pending > 0) return 'Failed';
    return stopped === succeeded ? 'Succeeded' : 'Failed';
  }
  if (pending > 0) return 'Pending';
  if (running > 0) return 'Running';
  if (policy === 'Always') return 'Running';
  if (stopped === succeeded) return 'Succeeded';
  return policy === 'Never' ? 'Failed' : 'Running';
}

/**
 * Whether the kubelet restarts a container that exited with `exitCode` (ContainerRestartPolicy semantics).
 */
export function shouldRestart(policy: RestartPolicy, exitCode: number): boolean {
  return policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
}

/**
 * Delay before restarting a container (CrashLoopBackOff): `base · 2^(restarts)` capped at `max`, seconds.
 * The kubelet uses base 10 s and max 300 s; the agent uses shorter ones so tests stay quick.
 */
export function restartDelaySeconds(restartCount: number, base = 1, max = 10): number {
  return Math.min(max, base * 2 ** Math.max(0, restartCount));
}

/** Terminated reason for an exit code, as containerd/the kubelet report it. */
export function terminatedReason(exitCode: number): 'Completed' | 'Error' {
  return exitCode === 0 ? 'Completed' : 'Error';
}

/**
 * The conditions a kubelet owns for this record (PodScheduled belongs to the scheduler and is left out, so a
 * strategic merge patch keeps it): PodReadyToStartContainers, Initialized, ContainersReady, Ready.
 * `lastTransitionTime` is carried over from `previous` when the status did not change, else `now`.
 */
export function podConditions(
  phase: PodPhase,
  containers: readonly ContainerRecord[],
  previous: readonly PodCondition[],
  now: Date,
): PodCondition[] {
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  const unready = containers.filter((c) => c.state.kind !== 'running').map((c) => c.name);
  const ready: Omit<PodCondition, 'type' | 'lastTransitionTime'> = terminal
    ? { status: 'False', reason: 'PodCompleted' }
    : unready.length > 0
      ? {
          status: 'False',
          reason: 'ContainersNotReady',
          message: `containers with unready status: [${unready.join(' ')}]`,
        }
      : { status: 'True' };
  const desired: Omit<PodCondition, 'lastTransitionTime'>[] = [
    { type: 'PodReadyToStartContainers', status: terminal ? 'False' : 'True' },
    terminal
      ? { type: 'Initialized', status: 'True', reason: 'PodCompleted' }
      : { type: 'Initialized', status: 'True' },
    { type: 'ContainersReady', ...ready },
    { type: 'Ready', ...ready },
  ];
  return desired.map((d) => {
    const prev = previous.find((p) => p.type === d.type);
    return { ...d, lastTransitionTime: prev && prev.status === d.status ? prev.lastTransitionTime : now };
  });
}

function stateJson(state: ContainerState) {
  switch (state.kind) {
    case 'waiting':
      return { reason: state.reason, ...(state.message ? { message: state.message } : {}) };
    case 'running':
      return { startedAt: rfc3339(state.startedAt) };
    case 'terminated':
      return {
        exitCode: state.exitCode,
        ...(state.signal !== undefined ? { signal: state.signal } : {}),
        reason: state.reason,
        ...(state.message ? { message: state.message } : {}),
        ...(state.startedAt ? { startedAt: rfc3339(state.startedAt) } : {}),
        finishedAt: rfc3339(state.finishedAt),
      };
  }
}

/**
 * A `V1ContainerState` for a strategic merge patch: the current state's key set and the two others `null`, so the
 * merge drops a previous state (two states at once fail validation).
 */
export function containerStateJson(state: ContainerState) {
  return {
    waiting: state.kind === 'waiting' ? stateJson(state) : null,
    running: state.kind === 'running' ? stateJson(state) : null,
    terminated: state.kind === 'terminated' ? stateJson(state) : null,
  };
}

/** A `V1ContainerStatus` (ready = running; no probes). */
export function containerStatusJson(c: ContainerRecord) {
  return {
    name: c.name,
    image: c.image,
    imageID: c.containerID ? `hpp-node-agent://${c.image}` : '',
    ...(c.containerID ? { containerID: c.containerID } : {}),
    ready: c.state.kind === 'running',
    started: c.state.kind === 'running',
    restartCount: c.restartCount,
    state: containerStateJson(c.state),
    ...(c.lastState ? { lastState: containerStateJson(c.lastState) } : {}),
  };
}

/**
 * The body of a strategic merge patch on `pods/status` that reports `record`. Conditions merge by type and
 * container statuses by name, so the scheduler's PodScheduled stays.
 */
export function buildPodStatusPatch(record: PodRecord) {
  return {
    status: {
      phase: record.phase,
      conditions: record.conditions.map((c) => ({
        type: c.type,
        status: c.status,
        reason: c.reason ?? null,
        message: c.message ?? null,
        lastProbeTime: null,
        lastTransitionTime: rfc3339(c.lastTransitionTime),
      })),
      hostIP: record.hostIP,
      hostIPs: [{ ip: record.hostIP }],
      podIP: record.podIP,
      podIPs: [{ ip: record.podIP }],
      startTime: rfc3339(record.startTime),
      containerStatuses: record.containers.map(containerStatusJson),
    },
  };
}

/**
 * The patch of a pod the kubelet refuses at admission (`Kubelet.rejectPod`): phase Failed with a pod-level reason
 * and `Pod was rejected: <message>`; no container statuses.
 *
 * @param reason a single word, e.g. `TaintToleration` (the predicate name), `UnexpectedAdmissionError`.
 */
export function buildRejectedPatch(reason: string, message: string, hostIP: string, now: Date) {
  return {
    status: {
      phase: 'Failed',
      reason,
      message: `Pod was rejected: ${message}`,
      hostIP,
      hostIPs: [{ ip: hostIP }],
      startTime: rfc3339(now),
    },
  };
}
