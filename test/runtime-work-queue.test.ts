/* eslint-disable @typescript-eslint/require-await -- reconcile fakes are async functions by contract, some finish at once */
import { afterEach, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { pino } from 'pino';
import { createMetrics } from '../src/runtime/metrics.js';
import { WorkQueue, type Reconcile, type ReconcileContext, type WorkQueueOptions } from '../src/runtime/work-queue.js';

const logger = pino({ level: 'silent' });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Waits until the condition holds (real timers, polled every 2 ms, at most 2 s). */
async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await sleep(2);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const queues: WorkQueue[] = [];
function makeQueue(reconcile: Reconcile, opts: Partial<WorkQueueOptions> = {}): WorkQueue {
  const q = new WorkQueue(
    { name: 'test', concurrency: 4, baseDelaySeconds: 0.01, maxDelaySeconds: 0.05, logger, random: () => 0, ...opts },
    reconcile,
  );
  queues.push(q);
  return q;
}
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.shutdown(1)));
});

describe('WorkQueue', () => {
  it('processes nothing before start and de-duplicates waiting keys', async () => {
    const runs: string[] = [];
    const q = makeQueue(async (key) => {
      runs.push(key);
    });
    q.add('a');
    q.add('a');
    q.add('b');
    q.add('a');
    await sleep(10);
    expect(runs).toEqual([]);
    expect(q.length).toBe(2);
    q.start();
    await until(() => runs.length === 2 && q.inFlight === 0);
    await sleep(10);
    expect(runs.sort()).toEqual(['a', 'b']);
    expect(q.length).toBe(0);
  });

  it('never runs one key twice at once and collapses adds during a run into exactly one more run', async () => {
    const gates: Deferred[] = [];
    let running = 0;
    let maxRunning = 0;
    const q = makeQueue(async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      const gate = deferred();
      gates.push(gate);
      await gate.promise;
      running--;
    });
    q.start();
    q.add('k');
    await until(() => gates.length === 1);
    for (let i = 0; i < 5; i++) q.add('k');
    expect(q.inFlight).toBe(1);
    expect(q.length).toBe(0); // waiting for the running one, not queued beside it
    await sleep(10);
    expect(gates).toHaveLength(1);
    gates[0]?.resolve();
    await until(() => gates.length === 2, 'the collapsed run');
    gates[1]?.resolve();
    await until(() => q.inFlight === 0);
    await sleep(10);
    expect(gates).toHaveLength(2);
    expect(maxRunning).toBe(1);
  });

  it('runs different keys concurrently up to the concurrency', async () => {
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    const q = makeQueue(
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await gate.promise;
        running--;
      },
      { concurrency: 2 },
    );
    q.start();
    for (const k of ['a', 'b', 'c', 'd', 'e']) q.add(k);
    await until(() => q.inFlight === 2);
    expect(q.length).toBe(3);
    gate.resolve();
    await until(() => q.inFlight === 0 && q.length === 0);
    expect(maxRunning).toBe(2);
  });

  it('retries a failing key with growing backoff, passes the attempt, and resets after a success', async () => {
    const attempts: number[] = [];
    const times: number[] = [];
    let failuresLeft = 3;
    const q = makeQueue(
      async (_key, ctx) => {
        attempts.push(ctx.attempt);
        times.push(performance.now());
        if (failuresLeft-- > 0) throw new Error('transient');
      },
      { baseDelaySeconds: 0.02, maxDelaySeconds: 1 },
    );
    q.start();
    q.add('k');
    await until(() => attempts.length === 4, 'four runs');
    expect(attempts).toEqual([0, 1, 2, 3]);
    expect(q.failuresOf('k')).toBe(0);
    // Delays 20, 40, 80 ms (random = 0: no jitter). Timers never fire early.
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    expect(gaps[0]).toBeGreaterThanOrEqual(19);
    expect(gaps[1]).toBeGreaterThanOrEqual(39);
    expect(gaps[2]).toBeGreaterThanOrEqual(79);
    failuresLeft = 1;
    q.add('k');
    await until(() => attempts.length === 6);
    expect(attempts.slice(4)).toEqual([0, 1]);
  });

  it('keeps failure counts per key', async () => {
    const seen: Record<string, number[]> = { bad: [], good: [] };
    const q = makeQueue(async (key, ctx) => {
      seen[key]?.push(ctx.attempt);
      if (key === 'bad' && ctx.attempt < 2) throw new Error('no');
    });
    q.start();
    q.add('bad');
    q.add('good');
    await until(() => seen['bad']?.length === 3);
    expect(seen).toEqual({ bad: [0, 1, 2], good: [0] });
  });

  it('honours requeueAfterSeconds after a success', async () => {
    const times: number[] = [];
    const q = makeQueue(async () => {
      times.push(performance.now());
      return times.length === 1 ? { requeueAfterSeconds: 0.03 } : undefined;
    });
    q.start();
    q.add('k');
    await until(() => times.length === 2);
    expect((times[1] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(29);
    await sleep(50);
    expect(times).toHaveLength(2);
  });

  it('addAfter keeps the earliest pending delay and adds at once for a delay ≤ 0', async () => {
    const runs: string[] = [];
    const q = makeQueue(async (key) => {
      runs.push(key);
    });
    q.start();
    q.addAfter('a', 10);
    q.addAfter('a', 0.02);
    q.addAfter('a', 5);
    expect(q.delayedCount).toBe(1);
    q.addAfter('b', 0);
    await until(() => runs.length === 1);
    expect(runs).toEqual(['b']);
    await until(() => runs.length === 2);
    expect(runs).toEqual(['b', 'a']);
    expect(q.delayedCount).toBe(0);
  });

  it('addRateLimited requeues with the growing backoff without a throw', async () => {
    const attempts: number[] = [];
    const q = makeQueue(
      async (key, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt < 2) q.addRateLimited(key);
      },
      { baseDelaySeconds: 0.01, maxDelaySeconds: 1 },
    );
    q.start();
    q.add('k');
    await until(() => attempts.length === 3);
    expect(attempts).toEqual([0, 1, 2]);
    expect(q.failuresOf('k')).toBe(0);
  });

  it.each([
    ['no minimum: the backoff', undefined, 0.01],
    ['Retry-After above the backoff wins', 7, 7],
    ['Retry-After below the backoff: the backoff', 0.001, 0.01],
    ['zero is no minimum', 0, 0.01],
    ['negative is no minimum', -3, 0.01],
    ['NaN is no minimum', Number.NaN, 0.01],
    ['Infinity is no minimum', Number.POSITIVE_INFINITY, 0.01],
  ] as const)('addRateLimited(key, minSeconds): %s', (_what, minSeconds, expected) => {
    const q = makeQueue(async () => undefined, { baseDelaySeconds: 0.01, maxDelaySeconds: 1 });
    expect(q.addRateLimited('k', minSeconds)).toBeCloseTo(expected, 10);
    expect(q.failuresOf('k')).toBe(1);
    expect(q.delayedCount).toBe(1);
  });

  it('addRateLimited with a Retry-After keeps the key waiting that long, and counts a retry', async () => {
    const runs: string[] = [];
    const metrics = createMetrics();
    const q = makeQueue(
      async (key) => {
        runs.push(key);
      },
      { metrics },
    );
    q.start();
    expect(q.addRateLimited('throttled', 60)).toBe(60);
    q.add('other');
    await until(() => runs.length === 1);
    await sleep(30); // many base delays (0.01 s) later
    expect(runs).toEqual(['other']);
    expect(q.delayedCount).toBe(1);
    const retries = (await metrics.workqueueRetries.get()).values.find((v) => v.labels.queue === 'test')?.value;
    expect(retries).toBe(1);
  });

  it('a thrown error waits at least what minRetrySeconds says for it (a 429 Retry-After)', async () => {
    const runs: number[] = [];
    const q = makeQueue(
      async () => {
        runs.push(runs.length);
        if (runs.length === 1) throw Object.assign(new Error('Too Many Requests'), { retryAfter: 60 });
      },
      { minRetrySeconds: (err) => (err as { retryAfter?: number }).retryAfter },
    );
    q.start();
    q.add('k');
    await until(() => q.delayedCount === 1);
    await sleep(30); // many base delays later: still waiting for the Retry-After
    expect(runs).toEqual([0]);
    expect(q.failuresOf('k')).toBe(1);
  });

  it('forget cancels a pending retry and the failure count', async () => {
    let runs = 0;
    const q = makeQueue(
      async () => {
        runs++;
        throw new Error('always');
      },
      { baseDelaySeconds: 0.05, maxDelaySeconds: 0.05 },
    );
    q.start();
    q.add('k');
    await until(() => runs === 1 && q.delayedCount === 1);
    expect(q.failuresOf('k')).toBe(1);
    q.forget('k');
    expect(q.failuresOf('k')).toBe(0);
    await sleep(80);
    expect(runs).toBe(1);
  });

  it('gives each run a reconcile id and a child logger with the key', async () => {
    const lines: Record<string, unknown>[] = [];
    const captureLogger = pino(
      { level: 'info' },
      { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
    );
    const ctxs: ReconcileContext[] = [];
    const q = makeQueue(
      async (_key, ctx) => {
        ctxs.push(ctx);
        ctx.logger.info('hello');
      },
      { logger: captureLogger },
    );
    q.start();
    q.add('ns/claim');
    q.add('other');
    await until(() => ctxs.length === 2 && lines.length === 2);
    expect(ctxs[0]?.reconcileID).toMatch(/^[0-9a-f]{12}$/);
    expect(ctxs[0]?.reconcileID).not.toBe(ctxs[1]?.reconcileID);
    expect(lines[0]).toMatchObject({ queue: 'test', key: 'ns/claim', reconcileID: ctxs[0]?.reconcileID, msg: 'hello' });
  });

  it('records depth, in-flight, retries and queue wait', async () => {
    const metrics = createMetrics();
    const gate = deferred();
    let fail = true;
    const q = makeQueue(
      async (key) => {
        if (key === 'slow') await gate.promise;
        if (key === 'flaky' && fail) {
          fail = false;
          throw new Error('once');
        }
      },
      { metrics, concurrency: 1, name: 'claims', operation: 'provision' },
    );
    const value = async (name: string): Promise<number> =>
      (await metrics.registry.getSingleMetric(name)?.get())?.values.find((v) => v.labels['queue'] === 'claims')
        ?.value ?? -1;
    q.add('slow');
    q.add('flaky');
    expect(await value('hostpath_provisioner_workqueue_depth')).toBe(2);
    q.start();
    await until(() => q.inFlight === 1);
    expect(await value('hostpath_provisioner_workqueue_depth')).toBe(1);
    expect(await value('hostpath_provisioner_workqueue_in_flight')).toBe(1);
    gate.resolve();
    await until(() => q.inFlight === 0 && q.length === 0 && q.delayedCount === 0 && !fail);
    await until(() => q.inFlight === 0 && q.length === 0 && q.delayedCount === 0);
    await sleep(30);
    expect(await value('hostpath_provisioner_workqueue_retries_total')).toBe(1);
    expect(await value('hostpath_provisioner_workqueue_in_flight')).toBe(0);
    const wait = await metrics.phaseDuration.get();
    const count = wait.values.find(
      (v) =>
        v.metricName === 'hostpath_provisioner_phase_duration_seconds_count' &&
        v.labels['operation'] === 'provision' &&
        v.labels['phase'] === 'queue_wait',
    );
    expect(count?.value).toBe(3); // slow, flaky, flaky's retry
  });

  it('shutdown drops waiting keys, ignores new adds and waits for running ones', async () => {
    const gate = deferred();
    const runs: string[] = [];
    const q = makeQueue(
      async (key) => {
        runs.push(key);
        await gate.promise;
      },
      { concurrency: 1 },
    );
    q.start();
    q.add('a');
    q.add('b');
    q.addAfter('c', 0.01);
    await until(() => runs.length === 1);
    q.add('a'); // collapsed: would run again, but shutdown drops it
    let done = false;
    const stopping = q.shutdown(5).then(() => (done = true));
    q.add('d');
    await sleep(20);
    expect(done).toBe(false);
    gate.resolve();
    await stopping;
    await sleep(20);
    expect(runs).toEqual(['a']);
    expect(q.length).toBe(0);
  });

  it('shutdown gives up at the deadline', async () => {
    const q = makeQueue(() => new Promise<void>(() => undefined));
    q.start();
    q.add('hangs');
    await until(() => q.inFlight === 1);
    const t0 = performance.now();
    await q.shutdown(0.03);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    expect(q.inFlight).toBe(1);
  });

  it('property: any interleaving of adds — no key runs twice at once, and every add is followed by a run', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ key: fc.constantFrom('a', 'b', 'c'), pause: fc.integer({ min: 0, max: 3 }), fail: fc.boolean() }),
          { minLength: 1, maxLength: 25 },
        ),
        fc.integer({ min: 1, max: 3 }),
        async (ops, concurrency) => {
          const running = new Set<string>();
          let overlap = false;
          const lastAdd = new Map<string, number>();
          const lastStart = new Map<string, number>();
          let clock = 0;
          const failing = new Map<string, boolean>();
          const q = new WorkQueue(
            { name: 'prop', concurrency, baseDelaySeconds: 0.001, maxDelaySeconds: 0.002, logger, random: () => 0 },
            async (key) => {
              if (running.has(key)) overlap = true;
              running.add(key);
              lastStart.set(key, ++clock);
              await sleep(1);
              running.delete(key);
              if (failing.get(key)) {
                failing.set(key, false);
                throw new Error('once');
              }
            },
          );
          q.start();
          for (const op of ops) {
            failing.set(op.key, op.fail);
            lastAdd.set(op.key, ++clock);
            q.add(op.key);
            if (op.pause > 0) await sleep(op.pause);
          }
          await until(() => q.length === 0 && q.inFlight === 0 && q.delayedCount === 0);
          await q.shutdown(1);
          for (const [key, added] of lastAdd) {
            if ((lastStart.get(key) ?? 0) < added) return false;
          }
          return !overlap;
        },
      ),
      { numRuns: 40 },
    );
  });

  it('rejects a bad concurrency or delay', () => {
    const noop: Reconcile = async () => undefined;
    expect(() => makeQueue(noop, { concurrency: 0 })).toThrow(RangeError);
    expect(() => makeQueue(noop, { baseDelaySeconds: 0 })).toThrow(RangeError);
  });
});
