import { describe, expect, it } from '@jest/globals';
import { ApiException, CoreV1Api, KubeConfig, type CoreV1Event, type KubernetesObject } from '@kubernetes/client-node';
import { pino } from 'pino';
import { COMBINED_PREFIX, EventAggregator, EventSpamFilter } from '../src/kube/event-correlator.js';
import { EventRecorder, type EventsApi } from '../src/kube/events.js';
import { createMetrics, type Metrics } from '../src/runtime/metrics.js';

async function dropped(metrics: Metrics, reason: string): Promise<number> {
  return (await metrics.eventsDropped.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

const logger = pino({ level: 'silent' });

type Call =
  | { op: 'create'; namespace: string; body: CoreV1Event }
  | { op: 'patch'; namespace: string; name: string; body: object; contentType: string | undefined };

class FakeEvents implements EventsApi {
  calls: Call[] = [];
  failCreate: Error | undefined;
  missing = new Set<string>();
  /** Patches whose options carried an abort signal. */
  patchSignals = 0;
  /** While set, creates wait for it (a slow API server). */
  gate: Promise<void> | undefined;
  /** Creates whose options carried a middleware (the abort signal). */
  createsWithOptions = 0;
  async createNamespacedEvent(
    param: { namespace: string; body: CoreV1Event },
    options?: { middleware?: unknown[] },
  ): Promise<CoreV1Event> {
    this.calls.push({ op: 'create', namespace: param.namespace, body: param.body });
    if ((options?.middleware?.length ?? 0) > 0) this.createsWithOptions++;
    if (this.gate) await this.gate;
    if (this.failCreate) throw this.failCreate;
    return param.body;
  }
  patchNamespacedEvent(
    param: { name: string; namespace: string; body: object },
    options?: { middleware?: unknown[] },
  ): Promise<CoreV1Event> {
    // setHeaderOptions builds a middleware; record that one was passed and its effect on a request.
    let contentType: string | undefined;
    for (const m of (options?.middleware ?? []) as {
      pre: (ctx: { setHeaderParam: (k: string, v: string) => void; setSignal: (s: AbortSignal) => void }) => unknown;
    }[]) {
      m.pre({
        setHeaderParam: (k, v) => (k === 'Content-Type' ? (contentType = v) : undefined),
        setSignal: (signal) => (this.patchSignals += signal instanceof AbortSignal ? 1 : 0),
      });
    }
    this.calls.push({ op: 'patch', namespace: param.namespace, name: param.name, body: param.body, contentType });
    if (this.missing.has(param.name)) {
      return Promise.reject(new ApiException(404, 'not found', JSON.stringify({ code: 404, reason: 'NotFound' }), {}));
    }
    return Promise.resolve({ involvedObject: {}, metadata: {} });
  }
}

const claim: KubernetesObject = {
  kind: 'PersistentVolumeClaim',
  apiVersion: 'v1',
  metadata: { name: 'data', namespace: 'apps', uid: 'uid-1', resourceVersion: '7' },
};
const volume: KubernetesObject = {
  kind: 'PersistentVolume',
  apiVersion: 'v1',
  metadata: { name: 'pvc-uid-1', uid: 'u2' },
};

function recorder(api: FakeEvents, extra: Partial<ConstructorParameters<typeof EventRecorder>[0]> = {}): EventRecorder {
  return new EventRecorder({ core: api, component: 'microk8s.io/hostpath', host: 'node-1', logger, ...extra });
}

describe('EventRecorder', () => {
  it("creates a core/v1 Event in the object's namespace, as client-go does", async () => {
    const api = new FakeEvents();
    const r = recorder(api, { now: () => new Date('2026-11-29T12:00:00.123Z') });
    r.event(claim, 'Warning', 'ProvisioningFailed', 'helper pod failed: exit 1');
    await r.flush();
    expect(api.calls).toHaveLength(1);
    const call = api.calls[0];
    if (call?.op !== 'create') throw new Error('expected a create');
    expect(call.namespace).toBe('apps');
    expect(call.body.metadata?.name).toMatch(/^data\.[0-9a-f]+$/);
    expect(call.body).toMatchObject({
      involvedObject: {
        kind: 'PersistentVolumeClaim',
        apiVersion: 'v1',
        name: 'data',
        namespace: 'apps',
        uid: 'uid-1',
        resourceVersion: '7',
      },
      type: 'Warning',
      reason: 'ProvisioningFailed',
      message: 'helper pod failed: exit 1',
      count: 1,
      firstTimestamp: new Date('2026-11-29T12:00:00.123Z'),
      lastTimestamp: new Date('2026-11-29T12:00:00.123Z'),
      source: { component: 'microk8s.io/hostpath', host: 'node-1' },
      reportingComponent: 'microk8s.io/hostpath',
      reportingInstance: 'node-1',
    });
  });

  it('puts Events of cluster-scoped objects in the default namespace', async () => {
    const api = new FakeEvents();
    const r = recorder(api);
    r.event(volume, 'Warning', 'VolumeFailedDelete', 'rm failed');
    await r.flush();
    expect(api.calls[0]).toMatchObject({ op: 'create', namespace: 'default' });
    expect((api.calls[0] as { body: CoreV1Event }).body.involvedObject.namespace).toBeUndefined();
  });

  it('aggregates repeats into count and lastTimestamp with a merge patch', async () => {
    const api = new FakeEvents();
    let now = new Date('2026-11-29T12:00:00Z');
    const r = recorder(api, { now: () => now });
    r.event(claim, 'Warning', 'ProvisioningFailed', 'boom');
    now = new Date('2026-11-29T12:00:05Z');
    r.event(claim, 'Warning', 'ProvisioningFailed', 'boom');
    now = new Date('2026-11-29T12:00:09Z');
    r.event(claim, 'Warning', 'ProvisioningFailed', 'boom');
    r.event(claim, 'Warning', 'ProvisioningFailed', 'different message');
    r.event(claim, 'Normal', 'ProvisioningFailed', 'boom');
    await r.flush();
    // Calls of different keys may interleave; per key they are in order.
    const creates = api.calls.filter((c) => c.op === 'create');
    const patches = api.calls.filter((c) => c.op === 'patch');
    expect(creates.map((c) => [c.body.type, c.body.message])).toEqual([
      ['Warning', 'boom'],
      ['Warning', 'different message'],
      ['Normal', 'boom'],
    ]);
    // The second repeat arrived while the first repeat's patch was still queued: one patch carries both.
    expect(patches).toHaveLength(1);
    const created = creates[0] as { body: CoreV1Event };
    expect(patches[0]).toMatchObject({
      op: 'patch',
      namespace: 'apps',
      name: created.body.metadata?.name,
      body: { count: 3, lastTimestamp: '2026-11-29T12:00:09.000Z', message: 'boom' },
      contentType: 'application/merge-patch+json',
    });
    expect(api.patchSignals).toBe(1); // every write is bounded in time
    expect(api.createsWithOptions).toBe(3);
    // Sent one by one, a later repeat is a patch of its own.
    r.event(claim, 'Warning', 'ProvisioningFailed', 'boom');
    await r.flush();
    expect(api.calls.filter((c) => c.op === 'patch').pop()).toMatchObject({ body: { count: 4 } });
  });

  it('starts a new Event after the aggregation window', async () => {
    const api = new FakeEvents();
    const r = recorder(api, { aggregationWindowSeconds: 0.01 });
    r.event(claim, 'Normal', 'Provisioning', 'x');
    await r.flush();
    await new Promise((res) => setTimeout(res, 20));
    r.event(claim, 'Normal', 'Provisioning', 'x');
    await r.flush();
    expect(api.calls.map((c) => c.op)).toEqual(['create', 'create']);
  });

  it('creates a new Event when the aggregated one was deleted', async () => {
    const api = new FakeEvents();
    const r = recorder(api);
    r.event(claim, 'Normal', 'Provisioning', 'x');
    await r.flush();
    const first = (api.calls[0] as { body: CoreV1Event }).body.metadata?.name ?? '';
    api.missing.add(first);
    r.event(claim, 'Normal', 'Provisioning', 'x');
    await r.flush();
    expect(api.calls.map((c) => c.op)).toEqual(['create', 'patch', 'create']);
    expect((api.calls[2] as { body: CoreV1Event }).body.count).toBe(1);
  });

  it('never throws, also when the API fails, and truncates long messages', async () => {
    const api = new FakeEvents();
    api.failCreate = new Error('connection refused');
    const r = recorder(api);
    expect(() => r.event(claim, 'Warning', 'X', 'm'.repeat(5000))).not.toThrow();
    expect(() => r.event({}, 'Warning', 'X', 'no metadata')).not.toThrow();
    await r.flush();
    expect((api.calls[0] as { body: CoreV1Event }).body.message).toHaveLength(1024);
  });

  it('bounds its memory with an LRU', async () => {
    const api = new FakeEvents();
    const r = recorder(api, { cacheSize: 3 });
    for (const reason of ['A', 'B', 'C']) r.event(claim, 'Normal', reason, 'm');
    r.event(claim, 'Normal', 'A', 'm'); // A is now the most recent
    r.event(claim, 'Normal', 'D', 'm'); // evicts B
    expect(r.size).toBe(3);
    r.event(claim, 'Normal', 'A', 'm');
    r.event(claim, 'Normal', 'B', 'm');
    await r.flush();
    const reasons = (op: string): string[] =>
      api.calls.flatMap((c) =>
        c.op === op && c.op === 'create' ? [c.body.reason ?? ''] : c.op === op ? ['patch'] : [],
      );
    expect(reasons('create').sort()).toEqual(['A', 'B', 'B', 'C', 'D']); // B was forgotten, so created again
    expect(reasons('patch')).toHaveLength(1); // both repeats of A, in one patch (the second came while it was queued)
  });
});

describe('EventRecorder budget (client-go spam filter and aggregator)', () => {
  const messages = (api: FakeEvents): string[] =>
    api.calls.flatMap((c) => (c.op === 'create' ? [c.body.message ?? ''] : []));

  it('drops what exceeds the per-object burst of 25 and counts it; other objects are unaffected; refills 1 per 300 s', async () => {
    const api = new FakeEvents();
    const metrics = createMetrics();
    const clock = { ms: 0 };
    const r = recorder(api, { metrics, monotonic: () => clock.ms, aggregator: { maxEvents: 1000 } });
    for (let i = 0; i < 30; i++) r.event(claim, 'Warning', 'ProvisioningFailed', `attempt ${i}`);
    r.event(volume, 'Warning', 'VolumeFailedDelete', 'other object');
    await r.flush();
    expect(messages(api)).toHaveLength(26);
    expect(messages(api)).toContain('other object');
    expect(messages(api)).not.toContain('attempt 25');
    expect(await dropped(metrics, 'spam_filter')).toBe(5);
    clock.ms += 299_000;
    r.event(claim, 'Warning', 'ProvisioningFailed', 'too early');
    clock.ms += 1_000;
    r.event(claim, 'Warning', 'ProvisioningFailed', 'after 300 s');
    await r.flush();
    expect(messages(api).slice(-1)).toEqual(['after 300 s']);
    expect(await dropped(metrics, 'spam_filter')).toBe(6);
  });

  it('counts repeats the budget dropped in the next Event it writes', async () => {
    const api = new FakeEvents();
    const clock = { ms: 0 };
    const r = recorder(api, { monotonic: () => clock.ms, spamFilter: { burst: 1, qps: 1 / 300 } });
    r.event(claim, 'Warning', 'ProvisioningFailed', 'same');
    await r.flush();
    r.event(claim, 'Warning', 'ProvisioningFailed', 'same'); // dropped: no token
    clock.ms += 300_000;
    r.event(claim, 'Warning', 'ProvisioningFailed', 'same');
    await r.flush();
    expect(api.calls.map((c) => c.op)).toEqual(['create', 'patch']);
    expect(api.calls[1]).toMatchObject({ body: { count: 3 } });
  });

  it('combines similar events: from the 10th distinct message within 600 s on, one Event updated', async () => {
    const api = new FakeEvents();
    const r = recorder(api, { monotonic: () => 0 });
    for (let i = 1; i <= 12; i++) r.event(claim, 'Warning', 'ProvisioningFailed', `node n${i} failed`);
    await r.flush();
    const creates = messages(api);
    expect(creates).toHaveLength(10);
    expect(creates.slice(0, 9)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => `node n${i} failed`));
    expect(creates[9]).toBe(`${COMBINED_PREFIX}node n10 failed`);
    const patches = api.calls.filter((c) => c.op === 'patch');
    expect(patches).toHaveLength(1); // n11 and n12, coalesced while queued
    expect(patches[0]).toMatchObject({ body: { count: 3, message: `${COMBINED_PREFIX}node n12 failed` } });
  });

  it('bounds the queue of writes and drops beyond it, counted as queue_full', async () => {
    const api = new FakeEvents();
    let open!: () => void;
    api.gate = new Promise((res) => (open = res));
    const metrics = createMetrics();
    const r = recorder(api, { metrics, queueSize: 5, spamFilter: { burst: 100 }, aggregator: { maxEvents: 100 } });
    const accepted: boolean[] = [];
    for (let i = 0; i < 20; i++) accepted.push(r.event(claim, 'Warning', 'ProvisioningFailed', `m${i}`));
    // One write is in flight, five wait, the rest are dropped — and the caller is told which.
    expect(accepted).toEqual([...Array<boolean>(6).fill(true), ...Array<boolean>(14).fill(false)]);
    expect(r.queued).toBe(5);
    expect(await dropped(metrics, 'queue_full')).toBe(14);
    open();
    await r.flush();
    expect(messages(api)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    expect(r.queued).toBe(0);
  });

  it('a write dropped because the queue is full takes nothing of the object budget and is no repeat', async () => {
    const api = new FakeEvents();
    let open!: () => void;
    api.gate = new Promise((res) => (open = res));
    const metrics = createMetrics();
    const r = recorder(api, { metrics, queueSize: 1, spamFilter: { burst: 3 }, aggregator: { maxEvents: 100 } });
    // Another object's writes fill the queue (one in flight, one waiting); the claim's refusal is said 30 times.
    const other: KubernetesObject = { ...claim, metadata: { ...claim.metadata, name: 'other', uid: 'u-other' } };
    r.event(other, 'Normal', 'A', 'a');
    r.event(other, 'Normal', 'B', 'b');
    const tries = Array.from({ length: 30 }, () => r.event(claim, 'Warning', 'ProvisioningFailed', 'refused'));
    expect(tries.every((t) => !t)).toBe(true);
    expect(await dropped(metrics, 'queue_full')).toBe(30);
    open();
    await r.flush();
    // Said once more after the queue drained: one Event, count 1, and the claim's budget of 3 is still whole.
    for (const [reason, message] of [
      ['ProvisioningFailed', 'refused'],
      ['Provisioning', 'p'],
      ['ProvisioningSucceeded', 's'],
    ] as const) {
      expect(r.event(claim, reason === 'ProvisioningFailed' ? 'Warning' : 'Normal', reason, message)).toBe(true);
      await r.flush();
    }
    const created = api.calls.filter((c) => c.op === 'create' && c.body.involvedObject.name === claim.metadata?.name);
    expect(created.map((c) => (c.op === 'create' ? [c.body.reason, c.body.count] : []))).toEqual([
      ['ProvisioningFailed', 1],
      ['Provisioning', 1],
      ['ProvisioningSucceeded', 1],
    ]);
    expect(await dropped(metrics, 'spam_filter')).toBe(0);
  });

  it('counts failed writes as api_error', async () => {
    const api = new FakeEvents();
    api.failCreate = new Error('connection refused');
    const metrics = createMetrics();
    const r = recorder(api, { metrics });
    r.event(claim, 'Warning', 'X', 'm');
    await r.flush();
    expect(await dropped(metrics, 'api_error')).toBe(1);
  });
});

describe('EventSpamFilter', () => {
  it.each([
    // [burst, qps, events at these ms, expected allow per event]
    [2, 1, [0, 0, 0], [true, true, false]],
    [2, 1, [0, 0, 999, 1000], [true, true, false, true]],
    [1, 1 / 300, [0, 150_000, 300_000], [true, false, true]],
    [25, 1 / 300, Array<number>(26).fill(0), [...Array<boolean>(25).fill(true), false]],
  ] as const)('burst %d, qps %d', (burst, qps, times, expected) => {
    const f = new EventSpamFilter({ burst, qps });
    expect(times.map((t) => f.allow('obj', t))).toEqual(expected);
  });

  it('keeps one bucket per object', () => {
    const f = new EventSpamFilter({ burst: 1, qps: 1 / 300 });
    expect([f.allow('a', 0), f.allow('b', 0), f.allow('a', 0)]).toEqual([true, true, false]);
  });
});

describe('EventAggregator', () => {
  it.each([
    [
      'nine distinct messages stay as they are',
      ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'],
      0,
      [false, false, false, false, false, false, false, false, false],
    ],
    [
      'the 10th distinct message is combined',
      ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'],
      0,
      [false, false, false, false, false, false, false, false, false, true],
    ],
    ['repeats of one message are never combined', Array<string>(20).fill('same'), 0, Array<boolean>(20).fill(false)],
  ] as const)('%s', (_what, msgs, step, expected) => {
    const a = new EventAggregator();
    expect(msgs.map((m, i) => a.aggregate('k', m, i * step).combined)).toEqual(expected);
  });

  it('starts over when the interval passed since the last similar event', () => {
    const a = new EventAggregator({ maxEvents: 2, intervalSeconds: 600 });
    expect(a.aggregate('k', 'x', 0)).toEqual({ message: 'x', combined: false });
    expect(a.aggregate('k', 'y', 600_001)).toEqual({ message: 'y', combined: false });
    expect(a.aggregate('k', 'z', 600_002)).toEqual({ message: `${COMBINED_PREFIX}z`, combined: true });
    expect(a.aggregate('other', 'z', 600_002).combined).toBe(false);
  });
});

describe('EventsApi', () => {
  it("is satisfied by client-node's CoreV1Api", () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'http://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const api: EventsApi = kc.makeApiClient(CoreV1Api);
    expect(typeof api.createNamespacedEvent).toBe('function');
  });
});
