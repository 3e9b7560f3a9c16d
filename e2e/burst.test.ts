/**
 * A burst: 50 claims and 50 pods over several nodes, tainted ones included, all at once → all Bound, 50 directories,
 * no helper left, no duplicate PV. Many claims are not serialised behind a few workers.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { provisionerSuite } from './support/suite.js';
import type { V1Toleration } from '@kubernetes/client-node';
import { waitFor } from './support/cluster.js';
import {
  claim,
  consumerPod,
  core,
  createClaim,
  liveHelpers,
  modeOf,
  volumeDirOnNode,
  waitForBound,
} from './support/volumes.js';

const suite = provisionerSuite('burst');

const NODES: { node: string; tolerations: V1Toleration[] }[] = [
  { node: 'hpp-plain', tolerations: [] },
  { node: 'hpp-gpu', tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }] },
  { node: 'hpp-noexec', tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoExecute' }] },
];

describe('burst', () => {
  it('50 claims and 50 pods at once: all Bound, 50 directories, no helper left, no duplicate PV', async () => {
    const work = Array.from({ length: 50 }, (_, i) => ({ name: `b${i}`, ...NODES[i % NODES.length]! }));
    await Promise.all(
      work.map(async (w) => {
        await createClaim(suite.ns.name, claim(w.name));
        await suite.ns.createPod(consumerPod(`${w.name}-app`, w.name, 'echo ok > /data/f', w));
      }),
    );
    const pvs = await Promise.all(work.map((w) => waitForBound(suite.ns.name, w.name, { timeoutMs: 170_000 })));
    expect(new Set(pvs.map((pv) => pv.metadata!.name)).size).toBe(50);
    const ours = (await core.listPersistentVolume()).items.filter(
      (pv) => pv.spec?.claimRef?.namespace === suite.ns.name,
    );
    expect(ours).toHaveLength(50);
    work.forEach((w, i) => {
      const dir = volumeDirOnNode(w.node, pvs[i]!);
      expect(existsSync(dir)).toBe(true);
      expect(modeOf(dir)).toBe(0o777);
    });
    await waitFor('no helper left', async () => (await liveHelpers(suite.provisioner.namespace)).length === 0, {
      timeoutMs: 60_000,
    });
  });
});
