import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { HealthReport } from './http.js';

/** What health needs of an informer (ResilientInformer satisfies it). */
export interface HealthSource {
  readonly resource: string;
  hasSynced(): boolean;
  lastEventAgeSeconds(): number;
}

/** Options of {@link createHealth}. */
export interface HealthOptions {
  readonly informers: readonly HealthSource[];
  /** Whether this replica leads (for the /readyz body). */
  readonly isLeader: () => boolean;
  /** An informer silent for longer than this (seconds) makes the process not live. Default 180. */
  readonly maxEventAgeSeconds?: number;
  /** A longest event-loop stall between two probes above this (seconds) makes the process not live. Default 5. */
  readonly maxEventLoopDelaySeconds?: number;
}

/** A health function for {@link startHttpServer} plus the means to stop its event-loop monitor. */
export interface Health {
  readonly health: () => HealthReport;
  stop(): void;
}

/**
 * Builds the liveness/readiness computation of issue 6:
 * - live unless an informer has not heard from the API server for `maxEventAgeSeconds` (it keeps failing; it
 *   restarts itself, but a stuck process is better restarted by the kubelet) or the event loop stalled for more than
 *   `maxEventLoopDelaySeconds` since the previous probe (perf_hooks event-loop delay histogram, reset per probe);
 * - ready once every informer has synced; the role comes from `isLeader()`.
 *
 * @param options - see {@link HealthOptions}.
 * @returns the health function and `stop()` (disables the event-loop monitor).
 */
export function createHealth(options: HealthOptions): Health {
  const maxAge = options.maxEventAgeSeconds ?? 180;
  const maxDelay = options.maxEventLoopDelaySeconds ?? 5;
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  return {
    health(): HealthReport {
      const delaySeconds = loop.max / 1e9;
      loop.reset();
      const stale = options.informers.filter((i) => i.hasSynced() && i.lastEventAgeSeconds() > maxAge);
      const unsynced = options.informers.filter((i) => !i.hasSynced());
      const liveProblems: string[] = stale.map(
        (i) => `informer ${i.resource} silent for ${Math.round(i.lastEventAgeSeconds())} s`,
      );
      if (delaySeconds > maxDelay) liveProblems.push(`event loop stalled for ${delaySeconds.toFixed(1)} s`);
      const report: { -readonly [K in keyof HealthReport]: HealthReport[K] } = {
        live: liveProblems.length === 0,
        ready: unsynced.length === 0,
        leader: options.isLeader(),
      };
      if (liveProblems.length > 0) report.liveReason = liveProblems.join('; ');
      if (unsynced.length > 0) report.readyReason = `caches not synced: ${unsynced.map((i) => i.resource).join(', ')}`;
      return report;
    },
    stop(): void {
      loop.disable();
    },
  };
}
