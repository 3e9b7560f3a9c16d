/**
 * C13: every volume directory ends up exactly 0777 — even when an earlier attempt left it 0755 — so pods running as
 * a non-root user without fsGroup can write, on every node alike.
 */
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, nodePath, type TestNamespace } from './support/cluster.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  claim,
  consumerPod,
  createClaim,
  DEFAULT_PV_DIR,
  modeOf,
  volumeDirOnNode,
  waitForBound,
} from './support/volumes.js';

let ns: TestNamespace;
let provisioner: Provisioner;

beforeAll(async () => {
  await applyDefaultStorageClass();
  provisioner = await startProvisioner();
  ns = await createTestNamespace('perm');
});

afterAll(async () => {
  await provisioner?.stop();
  await ns?.cleanup();
});

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
      const created = await createClaim(ns.name, claim(c.name));
      // An earlier attempt left the directory with mode 0755 (umask 022).
      const dir = nodePath(c.node, `${DEFAULT_PV_DIR}/${ns.name}-${c.name}-pvc-${created.metadata!.uid}`);
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o755);
      await ns.createPod(
        consumerPod(`${c.name}-app`, c.name, 'id -u > /data/who', {
          node: c.node,
          tolerations: c.tolerations,
          runAsUser: 1001,
        }),
      );
    }
    for (const c of cases) {
      const pv = await waitForBound(ns.name, c.name);
      const dir = volumeDirOnNode(c.node, pv);
      expect(modeOf(dir)).toBe(0o777);
      await ns.waitForPhase(`${c.name}-app`, ['Succeeded']);
      expect(readFileSync(`${dir}/who`, 'utf8').trim()).toBe('1001');
    }
  });
});
