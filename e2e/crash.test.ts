/**
 * Crash safety: the provisioner is frozen (SIGSTOP) the moment a watch shows it reached a step, the state is
 * checked, then it is SIGKILLed and restarted. Steps: create helper exists; create helper succeeded but no PV yet;
 * PV created; delete helper running; directory removed and PV object deleted but our finalizer still on it.
 * Every case ends with exactly one PV per live claim, no helper left, and no directory removed that a PV points to.
 */
import { existsSync, lstatSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1PersistentVolume, V1Pod } from '@kubernetes/client-node';
import { createTestNamespace, nodePath, waitFor, type TestNamespace } from './support/cluster.js';
import { actWhen, FAST_LEASE_ARGS, pause, resume } from './support/faults.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  applyStorageClass,
  claim,
  consumerPod,
  core,
  createClaim,
  liveHelpers,
  modeOf,
  readClaim,
  readVolume,
  volumeDirOnNode,
  waitForBound,
  waitForVolumeGone,
  drainNamespace,
  storage,
} from './support/volumes.js';

const HELPERS = { labelSelector: 'app.kubernetes.io/managed-by=hostpath-provisioner' };
const NODE = 'hpp-plain';
/**
 * A class whose base directory's parent can be made unmountable on NODE (a regular file in its place): its create
 * helper then stays ContainerCreating until the file goes, so the helper cannot succeed before the provisioner is
 * frozen, however late the test's watch reports it.
 */
const HELD_CLASS = 'hpp-crash-held';
const HELD_PARENT = '/srv/hpp-crash-held';

let ns: TestNamespace;
let provisioner: Provisioner | undefined;
let namespace: string;

beforeAll(async () => {
  await applyDefaultStorageClass();
  await applyStorageClass({
    metadata: { name: HELD_CLASS },
    provisioner: 'microk8s.io/hostpath',
    volumeBindingMode: 'WaitForFirstConsumer',
    reclaimPolicy: 'Delete',
    parameters: { pvDir: `${HELD_PARENT}/base` },
  });
  rmSync(nodePath(NODE, HELD_PARENT), { recursive: true, force: true });
  rmSync(held(), { recursive: true, force: true });
  provisioner = await startProvisioner({ args: FAST_LEASE_ARGS });
  namespace = provisioner.namespace;
  ns = await createTestNamespace('crash');
});

afterAll(async () => {
  if (provisioner) {
    resume(provisioner);
    // Let the provisioner clean up this file's volumes before it stops.
    if (ns) await drainNamespace(ns);
    await provisioner.stop();
  } else await ns?.cleanup();
  await storage.deleteStorageClass({ name: HELD_CLASS }).catch(() => undefined);
  releaseHelpers();
  rmSync(nodePath(NODE, HELD_PARENT), { recursive: true, force: true });
});

/** Where HELD_PARENT is kept while a regular file stands in its place. */
const held = () => `${nodePath(NODE, HELD_PARENT)}.held`;

/** Makes HELD_CLASS's base unmountable on NODE: its helpers wait (ContainerCreating) until {@link releaseHelpers}. */
function holdHelpers(): void {
  mkdirSync(nodePath(NODE, '/srv'), { recursive: true });
  if (existsSync(nodePath(NODE, HELD_PARENT))) renameSync(nodePath(NODE, HELD_PARENT), held());
  writeFileSync(nodePath(NODE, HELD_PARENT), 'not a directory\n');
}

/** Undoes {@link holdHelpers}: the waiting helpers mount and run. */
function releaseHelpers(): void {
  const path = nodePath(NODE, HELD_PARENT);
  if (existsSync(path) && lstatSync(path).isFile()) rmSync(path);
  if (existsSync(held())) renameSync(held(), path);
}

// A failed case must not leave the provisioner frozen for the next one (SIGCONT to a running process is harmless).
afterEach(() => {
  if (provisioner) resume(provisioner);
});

/** SIGKILLs the frozen provisioner and starts a new one in the same namespace (it waits for the Lease to expire). */
async function killAndRestart(): Promise<void> {
  await provisioner!.stop('SIGKILL');
  provisioner = await startProvisioner({ namespace, args: FAST_LEASE_ARGS });
}

/** Freezes the provisioner when a helper pod matching `match` is first reported by the API server. */
function freezeOnHelper(match: (pod: V1Pod) => boolean) {
  return actWhen<V1Pod>(
    `/api/v1/namespaces/${namespace}/pods`,
    HELPERS,
    (type, pod) => type === 'ADDED' && match(pod),
    () => pause(provisioner!),
  );
}

const forClaim = (name: string) => (pod: V1Pod) =>
  pod.metadata?.annotations?.['hostpath-provisioner.io/claim'] === `${ns.name}/${name}`;

/** The PVs of claims in the test namespace. */
async function testVolumes(): Promise<V1PersistentVolume[]> {
  return (await core.listPersistentVolume()).items.filter((v) => v.spec?.claimRef?.namespace === ns.name);
}

/** Invariants after every restart: one PV per live claim, every PV's directory exists, no helper left. */
async function expectConsistent(): Promise<void> {
  await waitFor('no helper left', async () => (await liveHelpers(namespace)).length === 0);
  const claims = (await core.listNamespacedPersistentVolumeClaim({ namespace: ns.name })).items;
  const volumes = await testVolumes();
  for (const c of claims) {
    expect(volumes.filter((v) => v.spec?.claimRef?.uid === c.metadata?.uid)).toHaveLength(1);
  }
  for (const v of volumes) {
    if (v.metadata?.deletionTimestamp || v.status?.phase === 'Released') continue;
    expect({ pv: v.metadata?.name, exists: existsSync(volumeDirOnNode(NODE, v)) }).toEqual({
      pv: v.metadata?.name,
      exists: true,
    });
  }
}

async function claimAndPod(name: string, className?: string): Promise<string> {
  const c = await createClaim(ns.name, claim(name, className ? { className } : {}));
  await ns.createPod(consumerPod(`${name}-app`, name, 'echo ok > /data/f', { node: NODE }));
  return `pvc-${c.metadata!.uid!}`;
}

describe('crash safety (SIGSTOP at an observed step, then SIGKILL and restart)', () => {
  it('killed after the create helper was created: exactly one PV, claim Bound, no helper left', async () => {
    holdHelpers();
    const frozen = await freezeOnHelper(forClaim('step1'));
    try {
      const pvName = await claimAndPod('step1', HELD_CLASS);
      await frozen.ready;
      expect((await liveHelpers(namespace)).map((p) => p.metadata?.name)).toContain(`hostpath-create-${pvName}`);
      expect(await readVolume(pvName)).toBeUndefined();
    } finally {
      frozen.stop();
      releaseHelpers();
    }
    await killAndRestart();
    const pv = await waitForBound(ns.name, 'step1');
    await ns.waitForPhase('step1-app', ['Succeeded']);
    expect(modeOf(volumeDirOnNode(NODE, pv))).toBe(0o777);
    await expectConsistent();
  });

  it('killed after the create helper succeeded, before the PV exists: the helper is adopted, one PV, no helper left', async () => {
    // The helper is held on the node until the provisioner is frozen, then let go to succeed while it is.
    holdHelpers();
    const frozen = await freezeOnHelper(forClaim('step2'));
    let pvName: string;
    try {
      pvName = await claimAndPod('step2', HELD_CLASS);
      await frozen.ready;
    } finally {
      frozen.stop();
      releaseHelpers();
    }
    const helper = `hostpath-create-${pvName}`;
    await waitFor(
      'the helper to succeed while the provisioner is frozen',
      async () => (await core.readNamespacedPod({ name: helper, namespace })).status?.phase === 'Succeeded',
    );
    expect(await readVolume(pvName)).toBeUndefined();
    await killAndRestart();
    const pv = await waitForBound(ns.name, 'step2');
    expect(pv.metadata?.name).toBe(pvName);
    expect(modeOf(volumeDirOnNode(NODE, pv))).toBe(0o777);
    await ns.waitForPhase('step2-app', ['Succeeded']);
    await expectConsistent();
  });

  it('killed right after the PV was created: the claim binds to that PV, no second PV, no helper left', async () => {
    const uid = { value: '' };
    const frozen = await actWhen<V1PersistentVolume>(
      '/api/v1/persistentvolumes',
      {},
      (type, pv) => type === 'ADDED' && pv.spec?.claimRef?.name === 'step3' && pv.spec.claimRef.namespace === ns.name,
      () => pause(provisioner!),
    );
    try {
      await claimAndPod('step3');
      const pv = await frozen.ready;
      uid.value = pv.spec?.claimRef?.uid ?? '';
    } finally {
      frozen.stop();
    }
    await killAndRestart();
    const pv = await waitForBound(ns.name, 'step3');
    expect(pv.metadata?.name).toBe(`pvc-${uid.value}`);
    await ns.waitForPhase('step3-app', ['Succeeded']);
    await expectConsistent();
  });

  it('killed while the delete helper runs: the directory and the PV go, the other volumes keep their directories', async () => {
    const pv = await waitForBound(ns.name, 'step1');
    const dir = volumeDirOnNode(NODE, pv);
    const others = (await testVolumes()).filter((v) => v.metadata?.name !== pv.metadata?.name);
    expect(others.length).toBeGreaterThanOrEqual(2);
    const frozen = await freezeOnHelper(
      (p) => p.metadata?.annotations?.['hostpath-provisioner.io/volume-name'] === pv.metadata?.name,
    );
    try {
      await core.deleteNamespacedPod({ name: 'step1-app', namespace: ns.name, gracePeriodSeconds: 0 });
      await ns.waitForPodGone('step1-app');
      holdHelpers();
      await core.deleteNamespacedPersistentVolumeClaim({ name: 'step1', namespace: ns.name });
      const helper = await frozen.ready;
      expect(helper.metadata?.labels?.['hostpath-provisioner.io/operation']).toBe('delete');
    } finally {
      frozen.stop();
      releaseHelpers();
    }
    expect(await readVolume(pv.metadata!.name!)).toBeDefined();
    await killAndRestart();
    await waitForVolumeGone(pv.metadata!.name!);
    expect(existsSync(dir)).toBe(false);
    for (const v of others) expect(existsSync(volumeDirOnNode(NODE, v))).toBe(true);
    await expectConsistent();
  });

  it('killed after the PV object was deleted but before our finalizer was removed: the PV goes on restart', async () => {
    const pv = await waitForBound(ns.name, 'step2');
    const dir = volumeDirOnNode(NODE, pv);
    const frozen = await actWhen<V1PersistentVolume>(
      '/api/v1/persistentvolumes',
      {},
      (type, v) => type === 'MODIFIED' && v.metadata?.name === pv.metadata?.name && !!v.metadata?.deletionTimestamp,
      () => pause(provisioner!),
    );
    try {
      await core.deleteNamespacedPod({ name: 'step2-app', namespace: ns.name, gracePeriodSeconds: 0 });
      await ns.waitForPodGone('step2-app');
      await core.deleteNamespacedPersistentVolumeClaim({ name: 'step2', namespace: ns.name });
      await frozen.ready;
    } finally {
      frozen.stop();
    }
    const stuck = await readVolume(pv.metadata!.name!);
    expect(stuck?.metadata?.finalizers).toContain('external-provisioner.volume.kubernetes.io/finalizer');
    await killAndRestart();
    await waitForVolumeGone(pv.metadata!.name!);
    expect(existsSync(dir)).toBe(false);
    await expectConsistent();
    // The claims that remain are still Bound to their volumes.
    expect((await readClaim(ns.name, 'step3')).status?.phase).toBe('Bound');
  });
});
