import { afterEach, describe, expect, it } from '@jest/globals';
import {
  ApiException,
  CoordinationV1Api,
  HttpMethod,
  KubeConfig,
  RequestContext,
  V1MicroTime,
  type ConfigurationOptions,
  type V1Lease,
} from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import { pino } from 'pino';
import { LeaderElector, microTime, type LeaseApi, type StoppedReason } from '../src/kube/leader.js';
import { createMetrics } from '../src/runtime/metrics.js';

const logger = pino({ level: 'silent' });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await sleep(2);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function statusError(code: number, reason: string): ApiException<string> {
  return new ApiException(code, 'Unknown API Status Code!', JSON.stringify({ kind: 'Status', code, reason }), {});
}

/** The abort signal a call's options would hand to the request (runs the options' middleware like client-node). */
async function signalOf(options: ConfigurationOptions | undefined): Promise<AbortSignal | undefined> {
  let ctx = new RequestContext('http://127.0.0.1:1/x', HttpMethod.GET);
  for (const m of options?.middleware ?? []) ctx = await m.pre(ctx).toPromise();
  return ctx.getSignal();
}

/** An in-memory Lease API with optimistic concurrency, speaking the wire format (times as strings). */
class FakeLeases implements LeaseApi {
  lease: V1Lease | undefined;
  rv = 0;
  calls: string[] = [];
  /** Every call fails with this while set. */
  outage: Error | undefined;
  /** While set, reads never answer: they reject only when their abort signal fires (a hung connection). */
  hang = false;
  /** Delay before each read answers, ms (a slow API server). */
  latencyMs = 0;
  /** Reads rejected by their abort signal. */
  aborted = 0;
  /** Whether every read carried an abort signal. */
  everyReadAbortable = true;
  /** Runs between our read and our write, to simulate another replica. */
  beforeReplace: (() => void) | undefined;

  private wire(lease: V1Lease): V1Lease {
    // What the client returns: JSON round trip (MicroTime fields stay strings in client-node 2.x).
    return JSON.parse(JSON.stringify(ObjectSerializer.serialize(lease, 'V1Lease'))) as V1Lease;
  }
  async readNamespacedLease(_p: unknown, options?: ConfigurationOptions): Promise<V1Lease> {
    const signal = await signalOf(options);
    this.calls.push('read');
    if (signal === undefined) this.everyReadAbortable = false;
    if (this.hang) {
      return new Promise<V1Lease>((_resolve, reject) => {
        const abort = () => {
          this.aborted++;
          reject(signal?.reason as Error);
        };
        if (signal?.aborted) abort();
        else signal?.addEventListener('abort', abort, { once: true });
      });
    }
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    if (this.outage) return Promise.reject(this.outage);
    if (!this.lease) return Promise.reject(statusError(404, 'NotFound'));
    return Promise.resolve(this.wire(this.lease));
  }
  createNamespacedLease(p: { namespace: string; body: V1Lease }): Promise<V1Lease> {
    this.calls.push('create');
    if (this.outage) return Promise.reject(this.outage);
    if (this.lease) return Promise.reject(statusError(409, 'AlreadyExists'));
    this.lease = this.wire({ ...p.body, metadata: { ...p.body.metadata, resourceVersion: String(++this.rv) } });
    return Promise.resolve(this.wire(this.lease));
  }
  replaceNamespacedLease(p: { name: string; namespace: string; body: V1Lease }): Promise<V1Lease> {
    this.calls.push('replace');
    if (this.outage) return Promise.reject(this.outage);
    this.beforeReplace?.();
    if (p.body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) {
      return Promise.reject(statusError(409, 'Conflict'));
    }
    this.lease = this.wire({ ...p.body, metadata: { ...p.body.metadata, resourceVersion: String(++this.rv) } });
    return Promise.resolve(this.wire(this.lease));
  }
  /** Another replica writes the Lease. */
  setHolder(holder: string, spec: Partial<NonNullable<V1Lease['spec']>> = {}): void {
    this.lease = this.wire({
      metadata: { name: 'microk8s.io-hostpath', namespace: 'kube-system', resourceVersion: String(++this.rv) },
      spec: {
        holderIdentity: holder,
        leaseDurationSeconds: 15,
        acquireTime: microTime(0),
        renewTime: microTime(0), // the remote clock says "1970": must not matter
        leaseTransitions: 4,
        ...spec,
      },
    });
  }
}

const MICRO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

interface Run {
  elector: LeaderElector;
  api: FakeLeases;
  clock: { mono: number };
  started: number;
  stopped: StoppedReason[];
  done: Promise<void>;
  metrics: ReturnType<typeof createMetrics>;
}
const runs: Run[] = [];
afterEach(async () => {
  for (const r of runs.splice(0)) {
    r.api.outage = undefined;
    await r.elector.release();
    await r.done;
  }
});

function start(
  api = new FakeLeases(),
  identity = 'me',
  timing: { lease: number; deadline: number; retry: number; realClock?: boolean } = {
    lease: 15,
    deadline: 10,
    retry: 0.005, // real timers drive attempts; the fake monotonic clock drives expiry
  },
): Run {
  const clock = { mono: 1_000_000 };
  const metrics = createMetrics();
  const elector = new LeaderElector({
    coordination: api,
    namespace: 'kube-system',
    name: 'microk8s.io-hostpath',
    identity,
    leaseDurationSeconds: timing.lease,
    renewDeadlineSeconds: timing.deadline,
    retryPeriodSeconds: timing.retry,
    logger,
    metrics,
    monotonic: timing.realClock === true ? () => performance.now() : () => clock.mono,
    now: () => Date.parse('2026-11-29T12:00:00.123Z'),
    random: () => 0,
  });
  const run: Run = { elector, api, clock, started: 0, stopped: [], done: Promise.resolve(), metrics };
  run.done = elector.run({
    onStartedLeading: () => run.started++,
    onStoppedLeading: (reason) => run.stopped.push(reason),
  });
  runs.push(run);
  return run;
}

async function leaderGauge(r: Run): Promise<number> {
  return (await r.metrics.leader.get()).values[0]?.value ?? -1;
}

describe('LeaderElector', () => {
  it('creates an absent Lease and leads, with microsecond times on the wire', async () => {
    const r = start();
    await until(() => r.started === 1);
    expect(r.elector.isLeader()).toBe(true);
    expect(await leaderGauge(r)).toBe(1);
    const spec = r.api.lease?.spec;
    expect(spec).toMatchObject({ holderIdentity: 'me', leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(spec?.renewTime).toBe('2026-11-29T12:00:00.123000Z');
    expect(String(spec?.acquireTime)).toMatch(MICRO);
    expect(r.elector.currentLeader()).toBe('me');
  });

  it('renews every retry period, keeping acquireTime and leaseTransitions', async () => {
    const r = start();
    await until(() => r.started === 1);
    const rv = r.api.rv;
    await until(() => r.api.rv >= rv + 3, 'renewals');
    expect(r.api.lease?.spec).toMatchObject({ holderIdentity: 'me', leaseTransitions: 0 });
    expect(r.stopped).toEqual([]);
  });

  it('does not take a fresh Lease of another holder, whatever its remote renewTime says', async () => {
    const api = new FakeLeases();
    api.setHolder('other');
    const r = start(api);
    await until(() => api.calls.filter((c) => c === 'read').length >= 5);
    expect(r.elector.isLeader()).toBe(false);
    expect(api.calls).not.toContain('replace');
    expect(r.elector.currentLeader()).toBe('other');
    expect(await leaderGauge(r)).toBe(0);
  });

  it('takes over once the record has not changed for the lease duration on the local clock', async () => {
    const api = new FakeLeases();
    api.setHolder('other');
    const r = start(api);
    await until(() => api.calls.includes('read'));
    r.clock.mono += 14_900;
    await sleep(20);
    expect(r.elector.isLeader()).toBe(false);
    r.clock.mono += 200;
    await until(() => r.started === 1, 'takeover');
    expect(api.lease?.spec).toMatchObject({ holderIdentity: 'me', leaseTransitions: 5, leaseDurationSeconds: 15 });
    expect(api.lease?.spec?.acquireTime).toBe('2026-11-29T12:00:00.123000Z');
  });

  it('never takes over while the holder keeps renewing', async () => {
    const api = new FakeLeases();
    api.setHolder('other');
    const r = start(api);
    for (let i = 0; i < 10; i++) {
      await until(() => api.calls.includes('read'));
      r.clock.mono += 5_000; // 50 s in total, but the record changes every 5 s
      api.setHolder('other', { renewTime: microTime(i * 1000) });
      await sleep(10);
    }
    expect(r.elector.isLeader()).toBe(false);
    expect(r.started).toBe(0);
  });

  it('takes a released Lease (empty holder) at once', async () => {
    const api = new FakeLeases();
    api.setHolder('', { leaseDurationSeconds: 1 });
    const r = start(api);
    await until(() => r.started === 1);
    expect(api.lease?.spec).toMatchObject({ holderIdentity: 'me', leaseTransitions: 5 });
  });

  it('resumes its own Lease after a restart without a transition', async () => {
    const api = new FakeLeases();
    api.setHolder('me');
    const r = start(api);
    await until(() => r.started === 1);
    expect(api.lease?.spec).toMatchObject({ holderIdentity: 'me', leaseTransitions: 4 });
    expect(api.lease?.spec?.acquireTime).toBe('1970-01-01T00:00:00.000000Z');
  });

  it('loses a race (409 on update) and stays standby', async () => {
    const api = new FakeLeases();
    api.setHolder('', { leaseDurationSeconds: 1 });
    let raced = false;
    api.beforeReplace = () => {
      if (!raced) {
        raced = true;
        api.setHolder('fast-replica'); // wins between our read and our write
      }
    };
    const r = start(api);
    await until(() => raced && api.calls.filter((c) => c === 'read').length >= 3);
    expect(r.elector.isLeader()).toBe(false);
    expect(api.lease?.spec?.holderIdentity).toBe('fast-replica');
  });

  it('gives up leadership when renewals fail for the renew deadline', async () => {
    const r = start();
    await until(() => r.started === 1);
    r.api.outage = new Error('connect ECONNREFUSED');
    await sleep(20);
    expect(r.elector.isLeader()).toBe(true); // still within the deadline
    r.clock.mono += 10_001;
    await r.done;
    expect(r.stopped).toEqual(['lost']);
    expect(r.elector.isLeader()).toBe(false);
    expect(await leaderGauge(r)).toBe(0);
  });

  it('retries a failing renewal every retry period within one renew deadline, and keeps leading when one succeeds', async () => {
    const r = start();
    await until(() => r.started === 1);
    r.api.outage = new Error('connect ECONNREFUSED');
    const reads = r.api.calls.filter((c) => c === 'read').length;
    await until(() => r.api.calls.filter((c) => c === 'read').length >= reads + 3, 'retries');
    r.clock.mono += 9_000; // still inside the deadline of this renewal
    r.api.outage = undefined;
    const rv = r.api.rv;
    await until(() => r.api.rv > rv, 'a successful renewal');
    r.clock.mono += 9_000; // a new renewal starts after a success: its own deadline
    await sleep(20);
    expect(r.elector.isLeader()).toBe(true);
    expect(r.stopped).toEqual([]);
    expect(r.api.everyReadAbortable).toBe(true);
  });

  it('aborts a hung renewal request at the renew deadline and stops leading within retry period + renew deadline', async () => {
    // Real clock, short timings: the renewal's request never answers, only its abort signal ends it.
    const r = start(new FakeLeases(), 'me', { lease: 0.6, deadline: 0.3, retry: 0.05, realClock: true });
    await until(() => r.started === 1);
    const lastSuccess = performance.now();
    r.api.hang = true;
    await r.done;
    const tookMs = performance.now() - lastSuccess;
    expect(r.stopped).toEqual(['lost']);
    expect(r.api.aborted).toBe(1);
    expect(tookMs).toBeGreaterThanOrEqual(300);
    // The bound RELIABILITY.md states: retry period + renew deadline after the last success (plus timer slack).
    expect(tookMs).toBeLessThan(350 + 250);
    expect(r.elector.isLeader()).toBe(false);
  });

  it('a slow answer does not extend leadership: it ends retry period + renew deadline after the last successful attempt started', async () => {
    const api = new FakeLeases();
    const r = start(api, 'me', { lease: 0.6, deadline: 0.3, retry: 0.05, realClock: true });
    await until(() => r.started === 1);
    // The next renewal succeeds, but its answer takes 200 ms; then the API server stops answering.
    api.latencyMs = 200;
    const rv = api.rv;
    const attemptStarted = performance.now();
    await until(() => api.rv > rv, 'the slow renewal');
    api.hang = true;
    await r.done;
    const tookMs = performance.now() - attemptStarted;
    expect(r.stopped).toEqual(['lost']);
    // client-go's bound would be 200 ms (answer) + 50 ms + 300 ms after the attempt started; ours is 50 + 300 ms.
    expect(tookMs).toBeLessThan(350 + 150);
  });

  it('gives up leadership when another replica took the Lease', async () => {
    const r = start();
    await until(() => r.started === 1);
    r.api.setHolder('usurper');
    const reads = r.api.calls.filter((c) => c === 'read').length;
    await until(() => r.api.calls.filter((c) => c === 'read').length >= reads + 2, 'a renewal that sees the usurper');
    r.clock.mono += 10_001; // its renew deadline passes while the usurper keeps the Lease
    await r.done;
    expect(r.stopped).toEqual(['lost']);
  });

  it('every request of a campaign carries an abort signal too', async () => {
    const api = new FakeLeases();
    api.setHolder('other');
    const r = start(api);
    await until(() => api.calls.filter((c) => c === 'read').length >= 3);
    expect(r.elector.isLeader()).toBe(false);
    expect(api.everyReadAbortable).toBe(true);
  });

  it('releases the Lease as client-go does: empty holder, 1 s duration', async () => {
    const r = start();
    await until(() => r.started === 1);
    await r.elector.release();
    await r.done;
    expect(r.stopped).toEqual(['released']);
    expect(r.elector.isLeader()).toBe(false);
    expect(r.api.lease?.spec).toMatchObject({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 0 });
    expect(String(r.api.lease?.spec?.renewTime)).toMatch(MICRO);
    // A standby then takes it over at once.
    const s = start(r.api, 'standby');
    await until(() => s.started === 1);
    expect(r.api.lease?.spec).toMatchObject({ holderIdentity: 'standby', leaseTransitions: 1 });
  });

  it('release before leading only stops the campaign', async () => {
    const api = new FakeLeases();
    api.setHolder('other');
    const r = start(api);
    await until(() => api.calls.includes('read'));
    await r.elector.release();
    await r.done;
    expect(r.stopped).toEqual([]);
    expect(api.lease?.spec?.holderIdentity).toBe('other');
  });

  it('refuses inconsistent timings', () => {
    const base = {
      coordination: new FakeLeases(),
      namespace: 'ns',
      name: 'l',
      identity: 'me',
      logger,
      retryPeriodSeconds: 2,
    };
    expect(() => new LeaderElector({ ...base, leaseDurationSeconds: 10, renewDeadlineSeconds: 10 })).toThrow(
      RangeError,
    );
    expect(
      () => new LeaderElector({ ...base, leaseDurationSeconds: 15, renewDeadlineSeconds: 10, identity: '' }),
    ).toThrow(RangeError);
  });
});

describe('MicroTime wire format', () => {
  it('serialises Lease times with 6 fractional digits through client-node', () => {
    const lease: V1Lease = { spec: { renewTime: microTime(Date.parse('2026-11-29T12:00:00.123Z')) } };
    const json = JSON.stringify(ObjectSerializer.serialize(lease, 'V1Lease'));
    expect(json).toContain('"renewTime":"2026-11-29T12:00:00.123000Z"');
    // The pitfall this guards against: a plain Date goes out with 3 digits.
    const plain = JSON.stringify(ObjectSerializer.serialize({ spec: { renewTime: new Date(0) } }, 'V1Lease'));
    expect(plain).toContain('"renewTime":"1970-01-01T00:00:00.000Z"');
    expect(microTime(0)).toBeInstanceOf(V1MicroTime);
  });

  it("LeaseApi is satisfied by client-node's CoordinationV1Api", () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'http://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const api: LeaseApi = kc.makeApiClient(CoordinationV1Api);
    expect(typeof api.replaceNamespacedLease).toBe('function');
  });
});
