/**
 * Immediate binding (C09) and the MicroK8s custom-storage test: a class with `pvDir` and Immediate binding
 * provisions without any consumer pod, on a Ready, schedulable node, and says which in an event; a node where the
 * helper just failed is skipped on the next attempt (M4).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { provisionerSuite } from './support/suite.js';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { nodePath, waitFor } from './support/cluster.js';
import {
  affinityHostname,
  applyStorageClass,
  claim,
  consumerPod,
  core,
  createClaim,
  readClaim,
  volumeDirOnNode,
  waitForBound,
  waitForEvent,
} from './support/volumes.js';

const IMMEDIATE = {
  metadata: { name: 'hostpath-immediate' },
  provisioner: 'microk8s.io/hostpath',
  volumeBindingMode: 'Immediate',
  reclaimPolicy: 'Delete',
};
const CUSTOM = { ...IMMEDIATE, metadata: { name: 'custom-hostpath' }, parameters: { pvDir: '/mnt/custom' } };
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

const suite = provisionerSuite('immediate', {
  setup: async () => {
    await applyStorageClass(IMMEDIATE);
    await applyStorageClass(CUSTOM);
  },
});

describe('Immediate binding', () => {
  it('C09 provisions without a pod on a Ready node, names it in an event, and the pod follows the volume', async () => {
    await createClaim(suite.ns.name, claim('now', { className: 'hostpath-immediate' }));
    const pv = await waitForBound(suite.ns.name, 'now');
    // NODE_NAME of the provisioner (hpp-plain) is preferred, as the addon placed every volume on its own node.
    expect(affinityHostname(pv)).toBe('hpp-plain');
    const event = await waitForEvent('PersistentVolumeClaim', 'now', suite.ns.name, 'NodeChosen');
    expect(event.message).toContain('hpp-plain');
    expect(existsSync(volumeDirOnNode('hpp-plain', pv))).toBe(true);

    await suite.ns.createPod(consumerPod('now-app', 'now', 'echo hi > /data/f'));
    const app = await suite.ns.waitForPhase('now-app', ['Succeeded']);
    expect(app.spec?.nodeName).toBe('hpp-plain');
  });

  it('C09 a pod of a volume whose node is cordoned stays Pending with a volume node affinity reason', async () => {
    await createClaim(suite.ns.name, claim('pinned', { className: 'hostpath-immediate' }));
    const pv = await waitForBound(suite.ns.name, 'pinned');
    expect(affinityHostname(pv)).toBe('hpp-plain');
    await core.patchNode({ name: 'hpp-plain', body: { spec: { unschedulable: true } } }, MERGE);
    try {
      await suite.ns.createPod(consumerPod('pinned-app', 'pinned', 'true'));
      const pending = await suite.ns.waitForPod('pinned-app', 'Unschedulable', (p) =>
        (p.status?.conditions ?? []).some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable'),
      );
      const message = pending.status?.conditions?.find((c) => c.type === 'PodScheduled')?.message ?? '';
      expect(message).toMatch(/didn't match PersistentVolume's node affinity/);
      expect(pending.spec?.nodeName).toBeUndefined();
    } finally {
      await core.patchNode({ name: 'hpp-plain', body: { spec: { unschedulable: false } } }, MERGE);
    }
  });

  it('C09 with the preferred node cordoned, an untainted node is chosen, never a dedicated (tainted) one', async () => {
    await core.patchNode({ name: 'hpp-plain', body: { spec: { unschedulable: true } } }, MERGE);
    try {
      const names = ['spread-0', 'spread-1', 'spread-2'];
      for (const name of names) await createClaim(suite.ns.name, claim(name, { className: 'hostpath-immediate' }));
      for (const name of names) {
        const pv = await waitForBound(suite.ns.name, name);
        const hostname = affinityHostname(pv) ?? '';
        const chosen = (await core.listNode({ labelSelector: `kubernetes.io/hostname=${hostname}` })).items[0];
        expect(chosen?.metadata?.name).not.toBe('hpp-plain');
        expect(chosen?.spec?.taints ?? []).toEqual([]);
      }
    } finally {
      await core.patchNode({ name: 'hpp-plain', body: { spec: { unschedulable: false } } }, MERGE);
    }
  });

  it('C09 no schedulable node matches: ProvisioningFailed, no PV', async () => {
    await applyStorageClass({
      metadata: { name: 'hostpath-nowhere' },
      provisioner: 'microk8s.io/hostpath',
      volumeBindingMode: 'Immediate',
      allowedTopologies: [{ matchLabelExpressions: [{ key: 'kubernetes.io/hostname', values: ['no-such-node'] }] }],
    });
    await createClaim(suite.ns.name, claim('nowhere', { className: 'hostpath-nowhere' }));
    const event = await waitForEvent(
      'PersistentVolumeClaim',
      'nowhere',
      suite.ns.name,
      'ProvisioningFailed',
      /no Ready, schedulable node/,
    );
    expect(event.type).toBe('Warning');
    expect((await readClaim(suite.ns.name, 'nowhere')).status?.phase).toBe('Pending');
  });

  it('M4 a helper that fails on the preferred node: the next attempt goes to another node and the event names the node skipped', async () => {
    const dir = '/srv/hpp-immediate-broken';
    await applyStorageClass({ ...IMMEDIATE, metadata: { name: 'hostpath-broken' }, parameters: { pvDir: dir } });
    // On the preferred node (the provisioner's, hpp-plain) the base directory is immutable: mkdir fails there.
    const base = nodePath('hpp-plain', dir);
    rmSync(base, { recursive: true, force: true });
    mkdirSync(base, { recursive: true });
    const chattr = (flag: string) => {
      const r = spawnSync('chattr', [flag, base], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`chattr ${flag} ${base}: ${r.stderr}`);
    };
    chattr('+i');
    try {
      await createClaim(suite.ns.name, claim('broken', { className: 'hostpath-broken' }));
      await waitForEvent(
        'PersistentVolumeClaim',
        'broken',
        suite.ns.name,
        'ProvisioningFailed',
        /on node hpp-plain failed/,
      );
      const pv = await waitForBound(suite.ns.name, 'broken', { timeoutMs: 90_000 });
      expect(affinityHostname(pv)).not.toBe('hpp-plain');
      const chosen = await waitForEvent(
        'PersistentVolumeClaim',
        'broken',
        suite.ns.name,
        'NodeChosen',
        /skipped: .*hpp-plain \(a helper failed there recently\)/,
      );
      expect(chosen.message).not.toMatch(/provisioning on node hpp-plain /);
    } finally {
      chattr('-i');
    }
  });

  it('MicroK8s custom storage: pvDir and Immediate binding, a pod writes "dates" there', async () => {
    await createClaim(suite.ns.name, claim('custom', { className: 'custom-hostpath' }));
    const pv = await waitForBound(suite.ns.name, 'custom');
    const path = pv.spec?.hostPath?.path ?? '';
    expect(path.startsWith('/mnt/custom/')).toBe(true);
    expect(path.endsWith(`${suite.ns.name}-custom-${pv.metadata!.name}`)).toBe(true);
    await suite.ns.createPod(consumerPod('custom-app', 'custom', 'date > /data/dates'));
    await suite.ns.waitForPhase('custom-app', ['Succeeded']);
    const node = affinityHostname(pv)!;
    const file = `${volumeDirOnNode(node, pv)}/dates`;
    await waitFor(`${file} written`, () => existsSync(file));
    expect(readFileSync(file, 'utf8')).toMatch(/\d\d:\d\d/);
  });
});
