/**
 * The benchmark's tiny run (K=5, this project, one stand-in node), so `make bench` does not rot: every figure it
 * reports is measured, and the API requests attributed to the provisioner's ServiceAccount are the ones the claims
 * need. Never a timed test: the figures are checked for being measured, not for being fast (BENCHMARKS.md).
 */
import { describe, expect, it } from '@jest/globals';
import { runOnce } from '../bench/run.js';
import { THIS_PROJECT } from '../bench/provisioners.js';

describe('bench', () => {
  it('a run of 5 claims measures latency, deletion, CPU, memory and the requests per claim', async () => {
    const result = await runOnce({ spec: THIS_PROJECT, claims: 5, nodes: ['hpp-plain'], timeoutSeconds: 150 });
    expect(result).toMatchObject({ provisioner: 'hostpath-provisioner', claims: 5, nodes: 1, oomKills: 0 });
    for (const seconds of [result.allBoundSeconds, result.latency.p50, result.latency.p99, result.deleteAllSeconds]) {
      expect(seconds).toBeGreaterThan(0);
      expect(seconds).toBeLessThan(150);
    }
    expect(result.latency.p50).toBeLessThanOrEqual(result.latency.p99);
    expect(result.latency.p99).toBeLessThanOrEqual(result.allBoundSeconds);
    expect(result.cpuSeconds).toBeGreaterThan(0);
    expect(result.peakRssBytes).toBeGreaterThan(10 * 1024 * 1024);
    // One PV created and deleted per claim, a create and a delete helper per claim: the audit log saw them all.
    expect(result.requests.byVerbResource).toMatchObject({
      'create persistentvolumes': 5,
      'delete persistentvolumes': 5,
      'create pods': 10,
    });
    expect(result.requestsPerClaim).toBe(result.requests.total / 5);
  });
});
