/**
 * Helpers that fail on a real node, each with the same contract: a clear Warning on the claim, no PV, the helper
 * deleted, retries with backoff, and success once the cause is removed.
 * - exit 1: the base directory on the node is immutable (`chattr +i`), so mkdir fails with EPERM;
 * - hang: the base directory cannot be set up (a regular file is in the way), so the helper stays
 *   ContainerCreating until the helper timeout; on a NoExecute-tainted node it is never evicted meanwhile;
 * - evicted: a NoExecute taint is added to the node while the helper runs; the retry tolerates it.
 * (An image that cannot be pulled is C07 in failures.test.ts.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1Pod, V1Taint } from '@kubernetes/client-node';
import { createTestNamespace, nodePath, waitFor, type TestNamespace } from './support/cluster.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  applyStorageClass,
  claim,
  consumerPod,
  core,
  createClaim,
  eventsFor,
  liveHelpers,
  modeOf,
  readClaim,
  readVolume,
  recordHelpers,
  storage,
  volumeDirOnNode,
  waitForBound,
  waitForEvent,
  type HelperRecorder,
  drainNamespace,
} from './support/volumes.js';

const HELPER_TIMEOUT = 10;
const IMMUTABLE_DIR = '/srv/hpp-immutable';
const BLOCKED_DIR = '/srv/hpp-blocked/base';
const EVICT_TAINT: V1Taint = { key: 'hpp.test/evict', value: 'now', effect: 'NoExecute' };

let ns: TestNamespace;
let provisioner: Provisioner;
let helpers: HelperRecorder;
const cleanups: (() => unknown)[] = [];
/** StorageClasses of this file, deleted after its volumes are cleaned up. */
const classes: string[] = [];

function chattr(flag: '+i' | '-i', path: string): void {
  const r = spawnSync('chattr', [flag, path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`chattr ${flag} ${path}: ${r.stderr}`);
}

/** Puts a regular file where the parent of BLOCKED_DIR should be, on `node`; returns the remover. */
function blockBase(node: string): () => void {
  const file = nodePath(node, '/srv/hpp-blocked');
  rmSync(file, { recursive: true, force: true });
  mkdirSync(nodePath(node, '/srv'), { recursive: true });
  writeFileSync(file, 'not a directory\n');
  // Only the file: once the cause is removed the helper makes a directory there, which belongs to the volume.
  return () => {
    if (existsSync(file) && lstatSync(file).isFile()) rmSync(file);
  };
}

async function setTaints(node: string, taints: V1Taint[]): Promise<void> {
  await core.patchNode({ name: node, body: [{ op: 'add', path: '/spec/taints', value: taints }] });
}

/** Helpers recorded for a claim of the test namespace, in the order first seen. */
function helpersFor(claimName: string): V1Pod[] {
  return [...helpers.seen.values()].filter(
    (h) => h.metadata?.annotations?.['hostpath-provisioner.io/claim'] === `${ns.name}/${claimName}`,
  );
}

/** No PV exists for the claim, and no helper of it is left once a failure was reported. */
async function expectNoVolume(claimName: string): Promise<void> {
  const uid = (await readClaim(ns.name, claimName)).metadata!.uid!;
  expect(await readVolume(`pvc-${uid}`)).toBeUndefined();
}

/** The ProvisioningFailed Warning matching `message` is repeated (retries with backoff make events, not piles). */
async function waitForRetry(claimName: string, message: RegExp): Promise<void> {
  await waitFor(
    `a retried ${String(message)} on ${claimName}`,
    async () =>
      (await eventsFor('PersistentVolumeClaim', claimName, ns.name)).some(
        (e) => e.reason === 'ProvisioningFailed' && message.test(e.message ?? '') && (e.count ?? 1) >= 2,
      ),
    { timeoutMs: 90_000 },
  );
}

beforeAll(async () => {
  await applyDefaultStorageClass();
  for (const [name, pvDir] of [
    ['hpp-immutable', IMMUTABLE_DIR],
    ['hpp-blocked', BLOCKED_DIR],
  ] as const) {
    await applyStorageClass({
      metadata: { name },
      provisioner: 'microk8s.io/hostpath',
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Delete',
      parameters: { pvDir },
    });
    classes.push(name);
  }
  provisioner = await startProvisioner({
    args: ['--helper-timeout', String(HELPER_TIMEOUT), '--retry-base-delay', '1', '--retry-max-delay', '5'],
  });
  helpers = await recordHelpers(provisioner.namespace);
  ns = await createTestNamespace('faults');
});

afterAll(async () => {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch (err) {
      process.stderr.write(`cleanup failed: ${String(err)}\n`);
    }
  }
  // Let the provisioner clean up this file's volumes before it stops (their classes name the base directories).
  if (ns) await drainNamespace(ns);
  helpers?.stop();
  await provisioner?.stop();
  for (const name of classes) await storage.deleteStorageClass({ name }).catch(() => undefined);
});

describe('helper faults on a real node', () => {
  it('helper exits 1 (immutable base directory): Warning with exit code and stderr, no PV, retries, binds once fixed', async () => {
    const base = nodePath('hpp-plain', IMMUTABLE_DIR);
    mkdirSync(base, { recursive: true });
    chattr('+i', base);
    let immutable = true;
    cleanups.push(() => immutable && chattr('-i', base));

    await createClaim(ns.name, claim('immutable', { className: 'hpp-immutable' }));
    await ns.createPod(consumerPod('immutable-app', 'immutable', 'echo ok > /data/f', { node: 'hpp-plain' }));
    const event = await waitForEvent('PersistentVolumeClaim', 'immutable', ns.name, 'ProvisioningFailed', /code 1/);
    expect(event.type).toBe('Warning');
    expect(event.message).toMatch(/helper pod hostpath-create-pvc-\S+ on node hpp-plain failed \(failed\)/);
    expect(event.message).toMatch(/Operation not permitted/);
    await expectNoVolume('immutable');
    await waitForRetry('immutable', /code 1/);
    expect(helpersFor('immutable').length).toBeGreaterThanOrEqual(1);
    // Retries make events, not piles of helpers: at most the one being retried now.
    const ownLive = (await liveHelpers(provisioner.namespace)).filter(
      (h) => h.metadata?.annotations?.['hostpath-provisioner.io/claim'] === `${ns.name}/immutable`,
    );
    expect(ownLive.length).toBeLessThanOrEqual(1);

    chattr('-i', base);
    immutable = false;
    const pv = await waitForBound(ns.name, 'immutable', { timeoutMs: 60_000 });
    await ns.waitForPhase('immutable-app', ['Succeeded']);
    expect(modeOf(volumeDirOnNode('hpp-plain', pv))).toBe(0o777);
    await waitFor('no helper left', async () => (await liveHelpers(provisioner.namespace)).length === 0);
  });

  it('helper hangs (ContainerCreating) on a NoExecute-tainted node: timeout Warning, never evicted meanwhile, binds once fixed', async () => {
    const unblock = blockBase('hpp-noexec');
    cleanups.push(unblock);
    const tolerateDb = [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoExecute' }];
    await createClaim(ns.name, claim('hang', { className: 'hpp-blocked' }));
    await ns.createPod(
      consumerPod('hang-app', 'hang', 'echo ok > /data/f', { node: 'hpp-noexec', tolerations: tolerateDb }),
    );
    const event = await waitForEvent(
      'PersistentVolumeClaim',
      'hang',
      ns.name,
      'ProvisioningFailed',
      new RegExp(`did not finish within ${HELPER_TIMEOUT}s`),
    );
    expect(event.type).toBe('Warning');
    expect(event.message).toMatch(/\(timeout\)/);
    expect(event.message).toMatch(/ContainerCreating/);
    await expectNoVolume('hang');
    // The helper tolerated the node's NoExecute taint with no tolerationSeconds: it ran (hung) until our timeout
    // deleted it, and the taint-eviction controller never evicted it.
    const first = helpersFor('hang')[0]!;
    const noExec = first.spec?.tolerations?.find((t) => t.key === 'dedicated' && t.effect === 'NoExecute');
    expect(noExec).toMatchObject({ key: 'dedicated', value: 'db', effect: 'NoExecute' });
    expect(noExec?.tolerationSeconds).toBeUndefined();
    const all = await eventsFor('PersistentVolumeClaim', 'hang', ns.name);
    expect(all.filter((e) => /evicted/.test(e.message ?? ''))).toHaveLength(0);
    await waitForRetry('hang', /did not finish/);

    unblock();
    const pv = await waitForBound(ns.name, 'hang', { timeoutMs: 60_000 });
    await ns.waitForPhase('hang-app', ['Succeeded']);
    expect(existsSync(volumeDirOnNode('hpp-noexec', pv))).toBe(true);
    await waitFor('no helper left', async () => (await liveHelpers(provisioner.namespace)).length === 0);
  });

  it('helper evicted by a NoExecute taint added while it runs: Warning names the eviction, the retry tolerates the taint', async () => {
    const unblock = blockBase('hpp-plain');
    cleanups.push(unblock);
    cleanups.push(() => setTaints('hpp-plain', []));
    await createClaim(ns.name, claim('evict', { className: 'hpp-blocked' }));
    await ns.createPod(
      consumerPod('evict-app', 'evict', 'echo ok > /data/f', {
        node: 'hpp-plain',
        tolerations: [{ key: EVICT_TAINT.key, operator: 'Exists', effect: 'NoExecute' }],
      }),
    );
    await waitFor('the helper on the node', () => helpersFor('evict').find((h) => h.spec?.nodeName === 'hpp-plain'));
    await setTaints('hpp-plain', [EVICT_TAINT]);

    const event = await waitForEvent('PersistentVolumeClaim', 'evict', ns.name, 'ProvisioningFailed', /evicted/);
    expect(event.type).toBe('Warning');
    expect(event.message).toMatch(/\(evicted\)/);
    expect(event.message).toMatch(/NoExecute/);
    await expectNoVolume('evict');
    // The retry reads the node again and tolerates its new taint without tolerationSeconds.
    const retry = await waitFor('a retry helper tolerating the new taint', () =>
      helpersFor('evict').find((h) => h.spec?.tolerations?.some((t) => t.key === EVICT_TAINT.key)),
    );
    const t = retry.spec!.tolerations!.find((x) => x.key === EVICT_TAINT.key)!;
    expect(t).toMatchObject({ value: 'now', effect: 'NoExecute' });
    expect(t.tolerationSeconds).toBeUndefined();

    unblock();
    const pv = await waitForBound(ns.name, 'evict', { timeoutMs: 60_000 });
    await ns.waitForPhase('evict-app', ['Succeeded']);
    expect(modeOf(volumeDirOnNode('hpp-plain', pv))).toBe(0o777);
    await setTaints('hpp-plain', []);
    await waitFor('no helper left', async () => (await liveHelpers(provisioner.namespace)).length === 0);
  });
});
