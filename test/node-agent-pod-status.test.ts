import { describe, expect, it } from '@jest/globals';
import {
  buildPodStatusPatch,
  buildRejectedPatch,
  containerStateJson,
  podConditions,
  podPhase,
  restartDelaySeconds,
  shouldRestart,
  type ContainerRecord,
} from '../e2e/node-agent/pod-status.js';
import {
  errImagePullMessage,
  imagePullBackOffMessage,
  isUnpullable,
  normalizeImageRef,
} from '../e2e/node-agent/images.js';

const t0 = new Date('2026-01-02T03:04:05Z');
const t1 = new Date('2026-01-02T03:04:09Z');
const waiting = (name: string, extra: Partial<ContainerRecord> = {}): ContainerRecord => ({
  name,
  image: 'busybox',
  restartCount: 0,
  state: { kind: 'waiting', reason: 'ContainerCreating' },
  ...extra,
});
const running = (name: string): ContainerRecord => ({ ...waiting(name), state: { kind: 'running', startedAt: t0 } });
const exited = (name: string, exitCode: number): ContainerRecord => ({
  ...waiting(name),
  state: {
    kind: 'terminated',
    exitCode,
    reason: exitCode === 0 ? 'Completed' : 'Error',
    startedAt: t0,
    finishedAt: t1,
  },
});

describe('podPhase', () => {
  it.each([
    ['Never', [waiting('a')], false, 'Pending'],
    ['Never', [running('a'), waiting('b')], false, 'Pending'],
    ['Never', [running('a'), exited('b', 0)], false, 'Running'],
    ['Never', [exited('a', 0), exited('b', 0)], false, 'Succeeded'],
    ['Never', [exited('a', 0), exited('b', 1)], false, 'Failed'],
    ['OnFailure', [exited('a', 1)], false, 'Running'],
    ['OnFailure', [exited('a', 0)], false, 'Succeeded'],
    ['Always', [exited('a', 0)], false, 'Running'],
    ['Always', [waiting('a', { lastState: exited('a', 1).state as never, restartCount: 1 })], false, 'Running'],
    ['Always', [exited('a', 0)], true, 'Succeeded'],
    ['Always', [exited('a', 137)], true, 'Failed'],
    ['Always', [running('a')], true, 'Failed'],
  ] as const)('%s with %j (terminal %s) is %s', (policy, containers, terminal, phase) => {
    expect(podPhase(policy, containers, terminal)).toBe(phase);
  });
});

describe('restarts', () => {
  it('follows the restart policy', () => {
    expect([shouldRestart('Always', 0), shouldRestart('OnFailure', 0), shouldRestart('OnFailure', 2)]).toEqual([
      true,
      false,
      true,
    ]);
    expect(shouldRestart('Never', 2)).toBe(false);
  });
  it('backs off exponentially up to the cap', () => {
    expect([0, 1, 2, 3, 4, 10].map((n) => restartDelaySeconds(n))).toEqual([1, 2, 4, 8, 10, 10]);
    expect(restartDelaySeconds(5, 10, 300)).toBe(300);
  });
});

describe('conditions', () => {
  it('reports unready containers and keeps transition times while the status holds', () => {
    const first = podConditions('Pending', [waiting('a'), waiting('b')], [], t0);
    expect(first.find((c) => c.type === 'Ready')).toEqual({
      type: 'Ready',
      status: 'False',
      reason: 'ContainersNotReady',
      message: 'containers with unready status: [a b]',
      lastTransitionTime: t0,
    });
    const second = podConditions('Running', [running('a'), running('b')], first, t1);
    expect(second.find((c) => c.type === 'Ready')).toEqual({ type: 'Ready', status: 'True', lastTransitionTime: t1 });
    expect(second.find((c) => c.type === 'Initialized')?.lastTransitionTime).toBe(t0);
    expect(second.map((c) => c.type)).not.toContain('PodScheduled');
  });

  it('marks a finished pod PodCompleted', () => {
    const done = podConditions('Succeeded', [exited('a', 0)], [], t1);
    expect(done.find((c) => c.type === 'ContainersReady')).toMatchObject({ status: 'False', reason: 'PodCompleted' });
  });
});

describe('status patches', () => {
  it('nulls the other container states so a strategic merge replaces the state', () => {
    expect(containerStateJson({ kind: 'running', startedAt: t0 })).toEqual({
      waiting: null,
      running: { startedAt: '2026-01-02T03:04:05Z' },
      terminated: null,
    });
  });

  it('builds a terminated container status and the pod-level fields', () => {
    const c = { ...exited('main', 3), containerID: 'hpp://u/main/0' };
    const patch = buildPodStatusPatch({
      phase: 'Failed',
      hostIP: '127.0.0.1',
      podIP: '127.0.0.1',
      startTime: t0,
      containers: [c],
      conditions: podConditions('Failed', [c], [], t1),
    });
    expect(patch.status).toMatchObject({
      phase: 'Failed',
      hostIP: '127.0.0.1',
      podIPs: [{ ip: '127.0.0.1' }],
      startTime: '2026-01-02T03:04:05Z',
    });
    expect(patch.status.containerStatuses).toEqual([
      {
        name: 'main',
        image: 'busybox',
        imageID: 'hpp-node-agent://busybox',
        containerID: 'hpp://u/main/0',
        ready: false,
        started: false,
        restartCount: 0,
        state: {
          waiting: null,
          running: null,
          terminated: {
            exitCode: 3,
            reason: 'Error',
            startedAt: '2026-01-02T03:04:05Z',
            finishedAt: '2026-01-02T03:04:09Z',
          },
        },
      },
    ]);
  });

  it('rejects like the kubelet', () => {
    expect(buildRejectedPatch('TaintToleration', 'Predicate TaintToleration failed', '127.0.0.1', t0)).toEqual({
      status: {
        phase: 'Failed',
        reason: 'TaintToleration',
        message: 'Pod was rejected: Predicate TaintToleration failed',
        hostIP: '127.0.0.1',
        hostIPs: [{ ip: '127.0.0.1' }],
        startTime: '2026-01-02T03:04:05Z',
      },
    });
  });
});

describe('images', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['org/app', 'docker.io/org/app:latest'],
    ['registry.k8s.io/pause:3.10', 'registry.k8s.io/pause:3.10'],
    ['localhost:5000/app', 'localhost:5000/app:latest'],
    ['app@sha256:abc', 'docker.io/library/app@sha256:abc'],
  ])('normalises %s to %s', (image, ref) => {
    expect(normalizeImageRef(image)).toBe(ref);
  });

  it('treats listed images and does-not-exist names as unpullable', () => {
    expect(isUnpullable('busybox', ['docker.io/library/busybox:latest'])).toBe(true);
    expect(isUnpullable('busybox:1.36', ['busybox'])).toBe(false);
    expect(isUnpullable('example.com/does-not-exist:1', [])).toBe(true);
    expect(errImagePullMessage('nope')).toBe(
      'rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/nope:latest": ' +
        'failed to resolve reference "docker.io/library/nope:latest": docker.io/library/nope:latest: not found',
    );
    expect(imagePullBackOffMessage('nope')).toMatch(/^Back-off pulling image "nope": ErrImagePull: /);
  });
});
