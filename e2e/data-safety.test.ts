/**
 * Data safety of deletion (review H2, M1): a delete helper that cannot start — its node's base directory cannot be
 * mounted, so it stays ContainerCreating like a helper on a node that is down — must never remove data once the PV
 * no longer marks it for deletion. The administrator's two rescues are tried: switching the PV to Retain and
 * re-binding it (removing its claimRef). With a restart in between (the helper outlives the process that made it)
 * and without one (the running provisioner sees the PV change). In every case the helper is removed, the base
 * directory is brought back, and the data is still there afterwards.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1PersistentVolume, V1Pod } from '@kubernetes/client-node';
import { createTestNamespace, nodePath, waitFor, type TestNamespace } from './support/cluster.js';
import { FAST_LEASE_ARGS } from './support/faults.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  applyStorageClass,
  claim,
  consumerPod,
  core,
  createClaim,
  drainNamespace,
  liveHelpers,
  readVolume,
  storage,
  volumeDirOnNode,
  waitForBound,
} from './support/volumes.js';

const NODE = 'hpp-plain';
const CLASS = 'hpp-safety';
const BASE_PARENT = '/srv/hpp-safety';
const BASE = `${BASE_PARENT}/base`;
/** Long enough that no helper times out during a case: a removal must come from the PV's change. */
const ARGS = [...FAST_LEASE_ARGS, '--helper-timeout', '600', '--retry-base-delay', '1', '--retry-max-delay', '5'];

let ns: TestNamespace;
let provisioner: Provisioner;
const volumes: string[] = [];

beforeAll(async () => {
  await applyDefaultStorageClass();
  await applyStorageClass({
    metadata: { name: CLASS },
    provisioner: 'microk8s.io/hostpath',
    volumeBindingMode: 'WaitForFirstConsumer',
    reclaimPolicy: 'Delete',
    parameters: { pvDir: BASE },
  });
  provisioner = await startProvisioner({ args: ARGS });
  ns = await createTestNamespace('safety');
});

afterAll(async () => {
  restoreBase();
  // The kept volumes are ours to remove now: their objects first (Retain: nothing is deleted), then the data.
  for (const name of volumes) await core.deletePersistentVolume({ name }).catch(() => undefined);
  if (ns) await drainNamespace(ns);
  await provisioner?.stop();
  await storage.deleteStorageClass({ name: CLASS }).catch(() => undefined);
  rmSync(nodePath(NODE, BASE_PARENT), { recursive: true, force: true });
});

/** Where the base directory's parent is kept while a regular file stands in its place. */
const saved = () => `${nodePath(NODE, BASE_PARENT)}.saved`;

/** Makes the class's base directory unmountable on the node: its parent moved aside, a regular file in its place. */
function blockBase(): void {
  renameSync(nodePath(NODE, BASE_PARENT), saved());
  writeFileSync(nodePath(NODE, BASE_PARENT), 'not a directory\n');
}

/** Undoes {@link blockBase}. */
function restoreBase(): void {
  const path = nodePath(NODE, BASE_PARENT);
  if (!existsSync(saved())) return;
  rmSync(path, { force: true });
  renameSync(saved(), path);
}

/** A Bound volume on NODE whose directory holds a file the consumer wrote; the consumer is gone again. */
async function volumeWithData(name: string): Promise<{ pv: V1PersistentVolume; file: string }> {
  mkdirSync(nodePath(NODE, BASE), { recursive: true });
  await createClaim(ns.name, claim(name, { className: CLASS }));
  await ns.createPod(consumerPod(`${name}-app`, name, 'echo precious > /data/keep', { node: NODE }));
  const pv = await waitForBound(ns.name, name);
  volumes.push(pv.metadata!.name!);
  await ns.waitForPhase(`${name}-app`, ['Succeeded']);
  await core.deleteNamespacedPod({ name: `${name}-app`, namespace: ns.name, gracePeriodSeconds: 0 });
  await ns.waitForPodGone(`${name}-app`);
  const file = `${volumeDirOnNode(NODE, pv)}/keep`;
  expect(readFileSync(file, 'utf8')).toBe('precious\n');
  return { pv, file };
}

/** The delete helper of a PV, as the API server has it now. */
async function deleteHelper(pvName: string): Promise<V1Pod | undefined> {
  return (await liveHelpers(provisioner.namespace)).find(
    (p) =>
      p.metadata?.labels?.['hostpath-provisioner.io/operation'] === 'delete' &&
      p.metadata.annotations?.['hostpath-provisioner.io/volume-name'] === pvName,
  );
}

/** Deletes the claim with the base blocked and waits until its delete helper is scheduled and stuck starting. */
async function stuckDeleteHelper(name: string, pvName: string): Promise<void> {
  blockBase();
  await core.deleteNamespacedPersistentVolumeClaim({ name, namespace: ns.name });
  await waitFor('the delete helper scheduled on the node', async () => !!(await deleteHelper(pvName))?.spec?.nodeName);
  const helper = await deleteHelper(pvName);
  expect(helper?.status?.phase).toBe('Pending');
}

/** The administrator's rescues of a volume whose deletion is stuck (JSON patches). */
const rescues = {
  Retain: (name: string) =>
    core.patchPersistentVolume({
      name,
      body: [{ op: 'replace', path: '/spec/persistentVolumeReclaimPolicy', value: 'Retain' }],
    }),
  'Re-bound': (name: string) => core.patchPersistentVolume({ name, body: [{ op: 'remove', path: '/spec/claimRef' }] }),
} as const;

describe('a delete helper never removes data its PV no longer marks for deletion', () => {
  it.each([
    ['Retain', true],
    ['Re-bound', true],
    ['Retain', false],
  ] as const)('PV %s while its delete helper is stuck (provisioner restarted: %s)', async (rescue, restart) => {
    const name = `${rescue.toLowerCase().replace('-', '')}-${restart ? 'restart' : 'live'}`;
    const { pv, file } = await volumeWithData(name);
    const pvName = pv.metadata!.name!;
    await stuckDeleteHelper(name, pvName);
    if (restart) await provisioner.stop('SIGKILL');
    await rescues[rescue](pvName);
    if (restart) provisioner = await startProvisioner({ namespace: provisioner.namespace, args: ARGS });
    await waitFor('the stuck delete helper removed', async () => (await deleteHelper(pvName)) === undefined, {
      timeoutMs: 60_000,
    });
    restoreBase();
    // Give a kubelet that still had the helper every chance to start it: the data must survive.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(readFileSync(file, 'utf8')).toBe('precious\n');
    expect(await deleteHelper(pvName)).toBeUndefined();
    const kept = await readVolume(pvName);
    expect(kept?.metadata?.deletionTimestamp).toBeUndefined();
    expect(kept?.status?.phase).toBe(rescue === 'Retain' ? 'Released' : 'Available');
  });
});
