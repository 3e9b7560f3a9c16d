/**
 * Orphan directories: a directory under a base directory that no PV points to is reported — a Warning log line naming
 * it and `hostpath_provisioner_orphan_directories{node}` — and never removed. Directories of live PVs are not reported.
 * The listing is done by a read-only `list` helper per node, which is deleted afterwards.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, nodePath, waitFor, type TestNamespace } from './support/cluster.js';
import { logLines } from './support/faults.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  claim,
  consumerPod,
  core,
  createClaim,
  DEFAULT_PV_DIR,
  volumeDirOnNode,
  waitForBound,
  drainNamespace,
} from './support/volumes.js';

const STRAY = '00-stray-left-by-hand';

let ns: TestNamespace;
let provisioner: Provisioner | undefined;

beforeAll(async () => {
  await applyDefaultStorageClass();
  ns = await createTestNamespace('orphans');
});

afterAll(async () => {
  // Let the provisioner clean up this file's volumes before it stops.
  if (ns) await drainNamespace(ns);
  await provisioner?.stop();
});

describe('orphan directories', () => {
  it('a directory no PV points to is reported in the log and the metric, never removed; live volumes are not reported', async () => {
    const first = await startProvisioner();
    const namespace = first.namespace;
    await createClaim(ns.name, claim('kept'));
    await ns.createPod(consumerPod('kept-app', 'kept', 'echo ok > /data/f', { node: 'hpp-plain' }));
    const pv = await waitForBound(ns.name, 'kept');
    await ns.waitForPhase('kept-app', ['Succeeded']);
    await first.stop();

    const stray = nodePath('hpp-plain', join(DEFAULT_PV_DIR, STRAY));
    mkdirSync(stray, { recursive: true });
    writeFileSync(join(stray, 'data'), 'precious\n');

    provisioner = await startProvisioner({ namespace });
    const report = await waitFor(
      'the orphan report for hpp-plain',
      () =>
        logLines(provisioner!, /^orphan directories/).find((r) => r.node === 'hpp-plain' && r.base === DEFAULT_PV_DIR),
      { timeoutMs: 60_000 },
    );
    const names = report.directories as string[];
    expect(names).toContain(STRAY);
    expect(names).not.toContain(volumeDirOnNode('hpp-plain', pv).split('/').at(-1));
    const metric = /^hostpath_provisioner_orphan_directories\{node="hpp-plain"\} (\d+)$/m.exec(
      await provisioner.metrics(),
    );
    expect(Number(metric?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(metric?.[1])).toBe(report.count);

    // Nothing was removed: neither the orphan nor the live volume.
    expect(readFileSync(join(stray, 'data'), 'utf8')).toBe('precious\n');
    expect(existsSync(volumeDirOnNode('hpp-plain', pv))).toBe(true);
    // The list helpers are gone.
    await waitFor('no list helper left', async () =>
      (
        await core.listNamespacedPod({ namespace, labelSelector: 'hostpath-provisioner.io/operation=list' })
      ).items.every((p) => p.metadata?.deletionTimestamp),
    );
  });
});
