import type { V1Pod } from '@kubernetes/client-node';

/** Named outcomes of a helper pod (metric label `outcome`). */
export type HelperFailureReason = 'failed' | 'timeout' | 'image_pull' | 'unschedulable' | 'admission' | 'evicted';

/** Where a helper pod stands, read from its status alone. */
export type HelperState =
  | { readonly state: 'succeeded' }
  /** Terminated unsuccessfully; `exitCode` when the container ran. The caller reads the log tail for details. */
  | {
      readonly state: 'failed';
      readonly reason: HelperFailureReason;
      readonly message: string;
      readonly exitCode?: number;
    }
  /** Not scheduled yet; `message` is the scheduler's (e.g. "0/3 nodes are available: 1 node(s) had untolerated taint"). */
  | { readonly state: 'unscheduled'; readonly message: string }
  /** Scheduled, starting or running. */
  | { readonly state: 'running'; readonly message: string };

/** Container waiting reasons that will not fix themselves: fail fast instead of waiting for the timeout. */
const IMAGE_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
const CONFIG_REASONS = new Set(['CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);

/**
 * Classifies a helper pod's status like a kubelet writes it: phase, PodScheduled condition, container states.
 * Fails fast on image pull errors, container config errors and pods the kubelet rejected at admission
 * (phase Failed with no container ever started, e.g. reason `OutOfcpu`, `NodeAffinity`, `UnexpectedAdmissionError`).
 *
 * @param pod - the helper pod.
 */
export function classifyHelper(pod: V1Pod): HelperState {
  const status = pod.status ?? {};
  const container = status.containerStatuses?.[0];
  if (status.phase === 'Succeeded') return { state: 'succeeded' };
  const terminated = container?.state?.terminated;
  if (status.phase === 'Failed') {
    if (terminated) {
      return {
        state: 'failed',
        reason: 'failed',
        exitCode: terminated.exitCode,
        message: `exited with code ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ''}${
          terminated.message ? `: ${terminated.message}` : ''
        }`,
      };
    }
    return {
      state: 'failed',
      reason: 'admission',
      message: `rejected by the node: ${status.reason ?? 'Failed'}${status.message ? `: ${status.message}` : ''}`,
    };
  }
  if (terminated && terminated.exitCode !== 0) {
    return {
      state: 'failed',
      reason: 'failed',
      exitCode: terminated.exitCode,
      message: `exited with code ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ''}`,
    };
  }
  const waiting = container?.state?.waiting;
  if (waiting?.reason && IMAGE_REASONS.has(waiting.reason)) {
    return {
      state: 'failed',
      reason: 'image_pull',
      message: `image ${container?.image ?? ''} cannot be pulled: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`,
    };
  }
  if (waiting?.reason && CONFIG_REASONS.has(waiting.reason)) {
    return {
      state: 'failed',
      reason: 'admission',
      message: `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`,
    };
  }
  const scheduled = status.conditions?.find((c) => c.type === 'PodScheduled');
  if (!pod.spec?.nodeName) {
    const message =
      scheduled?.status === 'False'
        ? `${scheduled.reason ?? 'Unschedulable'}: ${scheduled.message ?? ''}`.trim()
        : 'waiting for the scheduler';
    return { state: 'unscheduled', message };
  }
  const detail = waiting?.reason
    ? `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`
    : (status.phase ?? 'Pending');
  return { state: 'running', message: `on node ${pod.spec.nodeName}: ${detail}` };
}

/**
 * Whether a helper pod is on its node but its container never started: phase Pending, and no container status shows
 * a running or terminated state, now or before. That is how a kubelet reports a pod whose volumes cannot be set up
 * (a hostPath of type Directory that does not exist: ContainerCreating, with a FailedMount event), and also a pod whose
 * sandbox or image is not ready yet.
 *
 * @param pod - the helper pod as last seen.
 */
export function helperNeverStarted(pod: V1Pod): boolean {
  if (!pod.spec?.nodeName || pod.status?.phase !== 'Pending') return false;
  return (pod.status.containerStatuses ?? []).every(
    (c) => !c.state?.running && !c.state?.terminated && !c.lastState?.terminated,
  );
}

/**
 * The failure to report when a helper has not finished within its timeout.
 *
 * @param last - the helper's last classified state.
 * @param timeoutSeconds - the configured timeout, for the message.
 */
export function timeoutFailure(last: HelperState, timeoutSeconds: number): Extract<HelperState, { state: 'failed' }> {
  if (last.state === 'unscheduled') {
    return {
      state: 'failed',
      reason: 'unschedulable',
      message: `not scheduled within ${timeoutSeconds}s: ${last.message}`,
    };
  }
  const detail = last.state === 'running' ? last.message : last.state;
  return { state: 'failed', reason: 'timeout', message: `did not finish within ${timeoutSeconds}s (${detail})` };
}

/**
 * The failure to report when a helper pod is deleted by someone else before it finished. A pod the taint-eviction
 * controller (or a preemption, or the eviction API) removes carries a `DisruptionTarget` condition saying why; then the
 * reason is `evicted` and the message quotes it. Otherwise the reason is `failed`.
 *
 * @param last - the pod as last seen (the deleted object, when known).
 */
export function deletedFailure(last: V1Pod | undefined): Extract<HelperState, { state: 'failed' }> {
  const disruption = last?.status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  if (disruption) {
    const node = last?.spec?.nodeName ? ` from node ${last.spec.nodeName}` : '';
    return {
      state: 'failed',
      reason: 'evicted',
      message: `the helper pod was evicted${node} before it finished (${disruption.reason ?? 'DisruptionTarget'}${
        disruption.message ? `: ${disruption.message}` : ''
      })`,
    };
  }
  return { state: 'failed', reason: 'failed', message: 'the helper pod was deleted before it finished' };
}
