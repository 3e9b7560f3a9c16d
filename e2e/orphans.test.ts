/**
 * Orphan directories: a directory under a base directory that no PV points to is reported — a Warning log line naming
 * it and `hostpath_provisioner_orphan_directories{node}` — and never removed. Directories of live PVs are not reported,
 * nor a known base directory nested in another. The listing is done by a read-only `list` helper per node (no priority
 * class, base mounted with hostPath type Directory), which is deleted afterwards; a node without the base directory is
 * skipped quietly and the directory is not created there.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, nodePath, waitFor, type TestNamespace } from './support/cluster.js';
import { logLines } from './support/faults.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  applyStorageClass,
  claim,
  consumerPod,
  core,
  createClaim,
  DEFAULT_PV_DIR,
  recordHelpers,
  storage,
  volumeDirOnNode,
  affinityHostname,
  waitForBound,
  drainNamespace,
} from './support/volumes.js';

const STRAY = '00-stray-left-by-hand';
/** A class whose pvDir is nested in PV_DIR: on a node, PV_DIR lists it, and it must not be called an orphan. */
const NESTED_CLASS = 'e2e-orphans-nested';
const NESTED = 'nested-base';
/** A node that gets no volume in this file: its PV_DIR is removed (when empty) to play a node that never had one. */
const BARE_NODE = 'hpp-cp';
/** Reports every 6 s (the first after 1.5 to 6 s), helpers time out after 10 s. */
const FAST_REPORTS = { env: { ORPHAN_REPORT_INTERVAL: '0.1' }, args: ['--helper-timeout', '10'] };

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
  await storage.deleteStorageClass({ name: NESTED_CLASS }).catch(() => undefined);
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

    provisioner = await startProvisioner({ namespace, ...FAST_REPORTS });
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

  it('a base directory nested in another is not an orphan; a node without the base directory is skipped quietly and gets no directory', async () => {
    await provisioner?.stop();
    provisioner = undefined;
    await applyStorageClass({
      metadata: { name: NESTED_CLASS },
      provisioner: 'microk8s.io/hostpath',
      parameters: { pvDir: `${DEFAULT_PV_DIR}/${NESTED}` },
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Delete',
    });
    mkdirSync(nodePath('hpp-plain', join(DEFAULT_PV_DIR, NESTED, 'ns-x-pvc-inside')), { recursive: true });
    // The bare node holds no volume: make its PV_DIR absent, as on a node that never had one.
    const pinned = (await core.listPersistentVolume()).items.map(affinityHostname);
    expect(pinned).not.toContain(BARE_NODE);
    const bareBase = nodePath(BARE_NODE, DEFAULT_PV_DIR);
    // Directories no PV points to any more, left there by an earlier file (a volume's pod started by the node agent
    // after the volume was removed): set aside for this test and put back after it, never removed.
    const aside = `${bareBase}.set-aside-by-orphans-test`;
    if (existsSync(bareBase)) {
      if (readdirSync(bareBase).length > 0) renameSync(bareBase, aside);
      else rmdirSync(bareBase);
    }

    provisioner = await startProvisioner(FAST_REPORTS);
    const helpers = await recordHelpers(provisioner.namespace);
    try {
      const plain = await waitFor(
        'the orphan report for hpp-plain',
        () =>
          logLines(provisioner!, /^orphan directories/).find(
            (r) => r.node === 'hpp-plain' && r.base === DEFAULT_PV_DIR,
          ),
        { timeoutMs: 60_000 },
      );
      expect(plain.directories).toContain(STRAY);
      expect(plain.directories).not.toContain(NESTED);
      await waitFor(
        `the bare node ${BARE_NODE} skipped`,
        () =>
          logLines(provisioner!, /^base directory not mounted within the helper timeout/).find(
            (r) => r.node === BARE_NODE && r.base === DEFAULT_PV_DIR,
          ),
        { timeoutMs: 90_000 },
      );
      expect(existsSync(bareBase)).toBe(false);
      expect(
        logLines(provisioner, /^cannot list base directory|^orphan report failed/).filter((r) => r.node === BARE_NODE),
      ).toEqual([]);
      const metric = new RegExp(`^hostpath_provisioner_orphan_directories\\{node="${BARE_NODE}"\\} (\\d+)$`, 'm');
      await waitFor('the bare node counted 0', async () => metric.exec(await provisioner!.metrics())?.[1] === '0');
      // The list helpers mounted their base as type Directory and ran without a priority class.
      const lists = [...helpers.seen.values()].filter(
        (p) => p.metadata?.labels?.['hostpath-provisioner.io/operation'] === 'list',
      );
      expect(lists.length).toBeGreaterThan(0);
      for (const p of lists) {
        expect(p.spec?.priorityClassName).toBeUndefined();
        expect(p.spec?.volumes?.[0]?.hostPath?.type).toBe('Directory');
      }
    } finally {
      helpers.stop();
      if (existsSync(aside) && !existsSync(bareBase)) renameSync(aside, bareBase);
    }
  });
});
