/**
 * The class configuration local-path-provisioner users rely on (issue 17).
 *
 * Ownership and mode of the volume directory (its userPattern/groupPattern/permPattern): a class with `uid`, `gid`
 * and `mode` gets directories owned and moded as asked, writable by a non-root pod through its fsGroup and closed to
 * one outside the group; a class without them keeps the addon's 0777 root directory and helpers without CAP_CHOWN;
 * an invalid value is refused before any helper runs.
 *
 * Shared file system (its sharedFileSystemPath): a class with `sharedFileSystem: "true"` and allowedTopologies over a
 * node label makes PVs pinned to the labelled nodes, not to one; one folder mounted into two stand-in nodes at the
 * class's pvDir serves a ReadWriteMany claim to pods on both nodes, and its deletion runs one helper, once.
 *
 * Per-node base directories (its nodePathMap): a class with `pvDirFromNode: "true"` puts a volume in the directory
 * the node's `hostpath-provisioner.io/pv-dir` annotation gives, deletion removes it there; an invalid annotation is
 * refused before any helper runs.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { CLUSTER_DIR, nodePath } from './support/cluster.js';
import { provisionerSuite } from './support/suite.js';
import { applyDefaultStorageClass } from './support/provisioner.js';
import {
  applyStorageClass,
  claim,
  consumerPod,
  core,
  createClaim,
  readClaim,
  volumeDirOnNode,
  waitForBound,
  waitForEvent,
  waitForVolumeGone,
} from './support/volumes.js';

const NODE = 'hpp-plain';
const owned = {
  metadata: { name: 'owned' },
  provisioner: 'microk8s.io/hostpath',
  volumeBindingMode: 'WaitForFirstConsumer',
  reclaimPolicy: 'Delete',
  parameters: { uid: '1000', gid: '2000', mode: '2770' },
};
const invalid = {
  metadata: { name: 'owned-invalid' },
  provisioner: 'microk8s.io/hostpath',
  volumeBindingMode: 'WaitForFirstConsumer',
  reclaimPolicy: 'Delete',
  parameters: { uid: 'www-data', mode: '0999' },
};

const perNode = {
  metadata: { name: 'per-node' },
  provisioner: 'microk8s.io/hostpath',
  volumeBindingMode: 'WaitForFirstConsumer',
  reclaimPolicy: 'Delete',
  parameters: { pvDirFromNode: 'true' },
};

const SHARED_LABEL = 'hpp.test/shared-fs';
const SHARED_NODES = ['hpp-plain', 'hpp-gpu'];
const shared = {
  metadata: { name: 'shared-fs' },
  provisioner: 'microk8s.io/hostpath',
  volumeBindingMode: 'WaitForFirstConsumer',
  reclaimPolicy: 'Delete',
  parameters: { pvDir: '/srv/shared-fs', sharedFileSystem: 'true' },
  allowedTopologies: [{ matchLabelExpressions: [{ key: SHARED_LABEL, values: ['yes'] }] }],
};

const suite = provisionerSuite('owner', {
  setup: async () => {
    await applyDefaultStorageClass();
    await applyStorageClass(owned);
    await applyStorageClass(invalid);
    await applyStorageClass(perNode);
    await applyStorageClass(shared);
  },
});

/** A non-root consumer (uid 3000) on NODE, with the given fsGroup or none. */
function nonRootPod(name: string, claimName: string, script: string, fsGroup?: number) {
  const pod = consumerPod(name, claimName, script, { node: NODE, runAsUser: 3000 });
  if (fsGroup !== undefined) pod.spec!.securityContext = { fsGroup };
  return pod;
}

/** The capabilities the create helper of a volume added. */
function createHelperCapabilities(volumeName: string): string[] | undefined {
  const helper = suite.helpers.seen.get(`hostpath-create-${volumeName}`);
  return helper?.spec?.containers[0]?.securityContext?.capabilities?.add;
}

describe('ownership and mode of the volume directory', () => {
  it('uid 1000, gid 2000, mode 2770: the directory is owned so, a non-root pod writes through fsGroup 2000', async () => {
    await createClaim(suite.ns.name, claim('shared', { className: 'owned' }));
    await suite.ns.createPod(nonRootPod('writer', 'shared', 'echo from-3000 > /data/f && ls -ln /data/f', 2000));
    const pv = await waitForBound(suite.ns.name, 'shared');
    await suite.ns.waitForPhase('writer', ['Succeeded']);
    const dir = volumeDirOnNode(NODE, pv);
    const st = statSync(dir);
    expect({ uid: st.uid, gid: st.gid, mode: (st.mode & 0o7777).toString(8) }).toEqual({
      uid: 1000,
      gid: 2000,
      mode: '2770',
    });
    // The setgid bit gives the pod's file the directory's group.
    const file = statSync(`${dir}/f`);
    expect({ uid: file.uid, gid: file.gid }).toEqual({ uid: 3000, gid: 2000 });
    // Only this helper may chown.
    expect(createHelperCapabilities(pv.metadata!.name!)).toEqual(['DAC_OVERRIDE', 'FOWNER', 'CHOWN']);
  });

  it('the same directory is closed to a non-root pod outside its group', async () => {
    await suite.ns.createPod(nonRootPod('outsider', 'shared', 'echo x > /data/g'));
    const pod = await suite.ns.waitForPhase('outsider', ['Succeeded', 'Failed']);
    expect(pod.status?.phase).toBe('Failed');
    expect(await suite.ns.podLog('outsider')).toMatch(/[Pp]ermission denied/);
  });

  it('a class without them: the addon’s root-owned 0777 directory, and no CAP_CHOWN for its helper', async () => {
    await createClaim(suite.ns.name, claim('plain'));
    await suite.ns.createPod(nonRootPod('plain-writer', 'plain', 'echo ok > /data/f'));
    const pv = await waitForBound(suite.ns.name, 'plain');
    await suite.ns.waitForPhase('plain-writer', ['Succeeded']);
    const st = statSync(volumeDirOnNode(NODE, pv));
    expect({ uid: st.uid, gid: st.gid, mode: (st.mode & 0o7777).toString(8) }).toEqual({ uid: 0, gid: 0, mode: '777' });
    expect(createHelperCapabilities(pv.metadata!.name!)).toEqual(['DAC_OVERRIDE', 'FOWNER']);
  });

  it('invalid uid and mode: one ProvisioningFailed naming both, before any helper', async () => {
    await createClaim(suite.ns.name, claim('refused', { className: 'owned-invalid' }));
    await suite.ns.createPod(consumerPod('refused-app', 'refused', 'true', { node: NODE }));
    const event = await waitForEvent('PersistentVolumeClaim', 'refused', suite.ns.name, 'ProvisioningFailed');
    expect(event.message).toContain('parameter uid "www-data"');
    expect(event.message).toContain('parameter mode "0999"');
    const helpers = [...suite.helpers.seen.values()].filter(
      (h) => h.metadata?.annotations?.['hostpath-provisioner.io/claim'] === `${suite.ns.name}/refused`,
    );
    expect(helpers).toEqual([]);
    expect((await readClaim(suite.ns.name, 'refused')).status?.phase).toBe('Pending');
  });
});

const PV_DIR_ANNOTATION = 'hostpath-provisioner.io/pv-dir';
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Sets (or, with null, removes) NODE's pv-dir annotation. */
async function annotateNode(dir: string | null): Promise<void> {
  await core.patchNode({ name: NODE, body: { metadata: { annotations: { [PV_DIR_ANNOTATION]: dir } } } }, MERGE);
}

describe('per-node base directory: pvDirFromNode and the node’s pv-dir annotation', () => {
  afterAll(() => annotateNode(null));

  it('the volume is made in the node’s own directory, the pod’s file lands there, deletion removes it', async () => {
    await annotateNode('/srv/nvme-data');
    const ns = suite.ns.name;
    await createClaim(ns, claim('fast', { className: 'per-node' }));
    await suite.ns.createPod(consumerPod('fast-app', 'fast', 'echo on-nvme > /data/f', { node: NODE }));
    const pv = await waitForBound(ns, 'fast');
    await suite.ns.waitForPhase('fast-app', ['Succeeded']);
    expect(pv.spec?.hostPath?.path).toBe(`/srv/nvme-data/${ns}-fast-${pv.metadata!.name!}`);
    const dir = volumeDirOnNode(NODE, pv);
    expect(readFileSync(`${dir}/f`, 'utf8')).toBe('on-nvme\n');
    await core.deleteNamespacedPod({ name: 'fast-app', namespace: ns });
    await suite.ns.waitForPodGone('fast-app');
    await core.deleteNamespacedPersistentVolumeClaim({ name: 'fast', namespace: ns });
    await waitForVolumeGone(pv.metadata!.name!);
    expect(existsSync(dir)).toBe(false);
  });

  it('an invalid annotation: one ProvisioningFailed naming the node and the annotation, before any helper', async () => {
    await annotateNode('srv/nvme-data');
    const ns = suite.ns.name;
    await createClaim(ns, claim('bad-node-dir', { className: 'per-node' }));
    await suite.ns.createPod(consumerPod('bad-node-dir-app', 'bad-node-dir', 'true', { node: NODE }));
    const event = await waitForEvent('PersistentVolumeClaim', 'bad-node-dir', ns, 'ProvisioningFailed');
    expect(event.message).toBe(
      `node ${NODE} has annotation ${PV_DIR_ANNOTATION} "srv/nvme-data", which is not an absolute path`,
    );
    const helpers = [...suite.helpers.seen.values()].filter(
      (h) => h.metadata?.annotations?.['hostpath-provisioner.io/claim'] === `${ns}/bad-node-dir`,
    );
    expect(helpers).toEqual([]);
    expect((await readClaim(ns, 'bad-node-dir')).status?.phase).toBe('Pending');
  });
});

describe('shared file system: sharedFileSystem and allowedTopologies', () => {
  const folder = join(CLUSTER_DIR, 'shared-fs');
  const label = (value: string | null) =>
    Promise.all(
      SHARED_NODES.map((name) =>
        core.patchNode({ name, body: { metadata: { labels: { [SHARED_LABEL]: value } } } }, MERGE),
      ),
    );
  beforeAll(async () => {
    // One folder "mounted" at /srv/shared-fs of both stand-in nodes (a link: the node agent bind-mounts its target).
    mkdirSync(folder, { recursive: true });
    for (const node of SHARED_NODES) {
      const mountPoint = nodePath(node, '/srv/shared-fs');
      mkdirSync(dirname(mountPoint), { recursive: true });
      rmSync(mountPoint, { recursive: true, force: true });
      symlinkSync(folder, mountPoint);
    }
    await label('yes');
  });
  afterAll(async () => {
    await label(null);
    for (const node of SHARED_NODES) rmSync(nodePath(node, '/srv/shared-fs'), { force: true });
  });

  it('a ReadWriteMany claim used by pods on two nodes at once; the PV pinned to the label; deleted once', async () => {
    const ns = suite.ns.name;
    await createClaim(ns, claim('both', { className: 'shared-fs', accessModes: ['ReadWriteMany'] }));
    await suite.ns.createPod(consumerPod('both-writer', 'both', 'echo from-plain > /data/f', { node: 'hpp-plain' }));
    const pv = await waitForBound(ns, 'both');
    await suite.ns.waitForPhase('both-writer', ['Succeeded']);
    expect(pv.spec?.nodeAffinity?.required?.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: SHARED_LABEL, operator: 'In', values: ['yes'] }] },
    ]);
    expect(pv.metadata?.annotations?.['hostpath-provisioner.io/shared-file-system']).toBe('true');
    const taints = (await core.readNode({ name: 'hpp-gpu' })).spec?.taints ?? [];
    await suite.ns.createPod(
      consumerPod('both-reader', 'both', 'cat /data/f && echo from-gpu >> /data/f', {
        node: 'hpp-gpu',
        tolerations: taints.map((t) => ({ key: t.key, operator: 'Equal', value: t.value ?? '', effect: t.effect })),
      }),
    );
    await suite.ns.waitForPhase('both-reader', ['Succeeded']);
    expect(await suite.ns.podLog('both-reader')).toBe('from-plain\n');
    const dir = join(folder, `${ns}-both-${pv.metadata!.name!}`);
    expect(readFileSync(join(dir, 'f'), 'utf8')).toBe('from-plain\nfrom-gpu\n');

    for (const pod of ['both-writer', 'both-reader']) await core.deleteNamespacedPod({ name: pod, namespace: ns });
    for (const pod of ['both-writer', 'both-reader']) await suite.ns.waitForPodGone(pod);
    await core.deleteNamespacedPersistentVolumeClaim({ name: 'both', namespace: ns });
    await waitForVolumeGone(pv.metadata!.name!);
    expect(existsSync(dir)).toBe(false);
    // One delete helper, on the untainted node that mounts it.
    const deleters = [...suite.helpers.seen.values()].filter(
      (h) => h.metadata?.name === `hostpath-delete-${pv.metadata!.name!}`,
    );
    expect(deleters.map((h) => h.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution)).toEqual(
      [{ nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['hpp-plain'] }] }] }],
    );
  });
});
