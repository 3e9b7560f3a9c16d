/**
 * An idle informer is not restarted: on a cluster where nothing changes, the watches of all six informers stay open
 * for longer than client-node's default 30 s inactivity timeout, kept alive by the API server's bookmarks (about one a
 * minute); `hostpath_provisioner_informer_restarts_total` stays flat and every informer keeps hearing from the server.
 */
import { describe, expect, it } from '@jest/globals';
import { logLines } from './support/faults.js';
import { parseSamples, sumOf } from './support/metrics.js';
import { provisionerSuite } from './support/suite.js';

const suite = provisionerSuite('idle');

/** Longer than the server's bookmark interval (~60 s) and twice client-node's 30 s default timeout. */
const IDLE_SECONDS = 65;

describe('idle informers', () => {
  it(
    `an idle cluster for ${IDLE_SECONDS} s: no informer restart, no watch idle timeout, every informer heard from the server within the last 150 s`,
    async () => {
      const before = sumOf(await suite.provisioner.metrics(), 'hostpath_provisioner_informer_restarts_total');
      const idleTimeoutsBefore = logLines(suite.provisioner, /watch idle timeout/).length;
      await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
      const text = await suite.provisioner.metrics();
      expect(sumOf(text, 'hostpath_provisioner_informer_restarts_total')).toBe(before);
      // With client-node's 30 s default every informer would have timed out and re-watched about twice.
      expect(logLines(suite.provisioner, /watch idle timeout/).length - idleTimeoutsBefore).toBe(0);
      const ages = parseSamples(text).filter((s) => s.name === 'hostpath_provisioner_informer_last_event_age_seconds');
      expect(ages.map((s) => s.labels['resource']).sort()).toEqual([
        'helperpods',
        'nodes',
        'persistentvolumeclaims',
        'persistentvolumes',
        'pods',
        'storageclasses',
      ]);
      for (const age of ages) expect(age.value).toBeLessThan(150);
      expect(suite.provisioner.child.exitCode).toBeNull();
    },
    (IDLE_SECONDS + 60) * 1000,
  );
});
