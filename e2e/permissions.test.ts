/**
 * C13: every volume directory ends up exactly 0777 — even when an earlier attempt left it 0755 — so pods running as
 * a non-root user without fsGroup can write, on every node alike.
 */
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { provisionerSuite } from './support/suite.js';
import { nodePath } from './support/cluster.js';
import {
  claim,
  consumerPod,
  createClaim,
  DEFAULT_PV_DIR,
  modeOf,
  volumeDirOnNode,
  waitForBound,
} from './support/volumes.js';

const suite = provisionerSuite('perm');

describe('permissions', () => {
  it('C13 directories end up 0777 whatever their earlier mode; uid 1001 writes without fsGroup on two nodes', async () => {
    const cases = [
      { name: 'perm-plain', node: 'hpp-plain', tolerations: [] },
      {
        name: 'perm-gpu',
        node: 'hpp-gpu',
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }],
      },
    ];
    for (const c of cases) {
      const created = await createClaim(suite.ns.name, claim(c.name));
      // An earlier attempt left the directory with mode 0755 (umask 022).
      const dir = nodePath(c.node, `${DEFAULT_PV_DIR}/${suite.ns.name}-${c.name}-pvc-${created.metadata!.uid}`);
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o755);
      await suite.ns.createPod(
        consumerPod(`${c.name}-app`, c.name, 'id -u > /data/who', {
          node: c.node,
          tolerations: c.tolerations,
          runAsUser: 1001,
        }),
      );
    }
    for (const c of cases) {
      const pv = await waitForBound(suite.ns.name, c.name);
      const dir = volumeDirOnNode(c.node, pv);
      expect(modeOf(dir)).toBe(0o777);
      await suite.ns.waitForPhase(`${c.name}-app`, ['Succeeded']);
      expect(readFileSync(`${dir}/who`, 'utf8').trim()).toBe('1001');
    }
  });
});
