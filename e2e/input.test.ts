/**
 * Bad and unusual input: misspelt parameters and custom directories (C17), paths that escape (C18), long names
 * (C19), raw block claims (C20), access modes (X01). Every refusal is an event on the claim, before any helper runs.
 */
import { existsSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { provisionerSuite } from './support/suite.js';
import { nodePath, waitFor } from './support/cluster.js';
import {
  affinityHostname,
  applyStorageClass,
  claim,
  consumerPod,
  core,
  createClaim,
  eventsFor,
  readClaim,
  readVolume,
  volumeDirOnNode,
  waitForBound,
  waitForEvent,
  waitForVolumeGone,
  DEFAULT_PV_DIR,
} from './support/volumes.js';

const suite = provisionerSuite('input');

const sc = (name: string, parameters: Record<string, string>) => ({
  metadata: { name },
  provisioner: 'microk8s.io/hostpath',
  volumeBindingMode: 'WaitForFirstConsumer',
  reclaimPolicy: 'Delete',
  parameters,
});

/** A claim of `className` with a pod on hpp-plain; expects a ProvisioningFailed matching `message` and no PV. */
async function expectRefused(name: string, className: string, message: RegExp): Promise<void> {
  await createClaim(suite.ns.name, claim(name, { className }));
  await suite.ns.createPod(consumerPod(`${name}-app`, name, 'true', { node: 'hpp-plain' }));
  const event = await waitForEvent('PersistentVolumeClaim', name, suite.ns.name, 'ProvisioningFailed', message);
  expect(event.type).toBe('Warning');
  const c = await readClaim(suite.ns.name, name);
  expect(c.status?.phase).toBe('Pending');
  expect(
    [...suite.helpers.seen.values()].filter(
      (h) => h.metadata?.annotations?.['hostpath-provisioner.io/claim'] === `${suite.ns.name}/${name}`,
    ),
  ).toEqual([]);
}

describe('StorageClass parameters', () => {
  it('C17 custom directory via pvDir: created there, PV path there, removed there', async () => {
    await applyStorageClass(sc('usb-hostpath', { pvDir: '/mnt/usb' }));
    await createClaim(suite.ns.name, claim('usb', { className: 'usb-hostpath' }));
    await suite.ns.createPod(consumerPod('usb-app', 'usb', 'echo x > /data/f', { node: 'hpp-plain' }));
    const pv = await waitForBound(suite.ns.name, 'usb');
    expect(pv.spec?.hostPath?.path).toBe(`/mnt/usb/${suite.ns.name}-usb-${pv.metadata!.name}`);
    const dir = volumeDirOnNode('hpp-plain', pv);
    await suite.ns.waitForPhase('usb-app', ['Succeeded']);
    expect(existsSync(`${dir}/f`)).toBe(true);
    await core.deleteNamespacedPod({ name: 'usb-app', namespace: suite.ns.name });
    await suite.ns.waitForPodGone('usb-app');
    await core.deleteNamespacedPersistentVolumeClaim({ name: 'usb', namespace: suite.ns.name });
    await waitForVolumeGone(pv.metadata!.name!);
    expect(existsSync(dir)).toBe(false);
  });

  it('C17 a misspelt key is a clear failure, not a silent fallback to the default directory', async () => {
    await applyStorageClass(sc('misspelt', { pvdir: '/mnt/usb' }));
    await expectRefused('misspelt', 'misspelt', /unknown parameter "pvdir" \(did you mean "pvDir"\?\)/);
  });

  it('C18 A: pvDir escaping with .. is refused before any helper runs', async () => {
    await applyStorageClass(sc('escape', { pvDir: `${DEFAULT_PV_DIR}/../../../../etc` }));
    await expectRefused('escape', 'escape', /pvDir ".*\/etc" contains "\.\."/);
  });

  it('C18 B: relative pvDir and pvDir / are refused', async () => {
    await applyStorageClass(sc('relative', { pvDir: 'data/rel' }));
    await expectRefused('relative', 'relative', /pvDir "data\/rel" is not an absolute path/);
    await applyStorageClass(sc('root', { pvDir: '/' }));
    await expectRefused('root', 'root', /pvDir "\/" is the root directory/);
  });

  it('C18 C: a hand-made PV claiming to be ours, pointing at /srv/important, is never removed', async () => {
    const important = nodePath('hpp-plain', '/srv/important');
    mkdirSync(important, { recursive: true });
    writeFileSync(`${important}/keep`, 'precious');
    try {
      await createClaim(suite.ns.name, {
        ...claim('handmade'),
        spec: { ...claim('handmade').spec, storageClassName: '', volumeName: 'handmade-pv' },
      });
      const c = await readClaim(suite.ns.name, 'handmade');
      await core.createPersistentVolume({
        body: {
          metadata: { name: 'handmade-pv', annotations: { 'pv.kubernetes.io/provisioned-by': 'microk8s.io/hostpath' } },
          spec: {
            capacity: { storage: '1Gi' },
            accessModes: ['ReadWriteOnce'],
            persistentVolumeReclaimPolicy: 'Delete',
            storageClassName: '',
            hostPath: { path: '/srv/important' },
            claimRef: { namespace: suite.ns.name, name: 'handmade', uid: c.metadata!.uid! },
            nodeAffinity: {
              required: {
                nodeSelectorTerms: [
                  { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['hpp-plain'] }] },
                ],
              },
            },
          },
        },
      });
      await waitForBound(suite.ns.name, 'handmade');
      await core.deleteNamespacedPersistentVolumeClaim({ name: 'handmade', namespace: suite.ns.name });
      const event = await waitForEvent(
        'PersistentVolume',
        'handmade-pv',
        '',
        'VolumeFailedDelete',
        /refusing to remove/,
      );
      expect(event.message).toMatch(/\/srv\/important is not directly under a known base directory/);
      expect(readFileSync(`${important}/keep`, 'utf8')).toBe('precious');
      expect(await readVolume('handmade-pv')).toBeDefined();
      expect(suite.helpers.seen.has('hostpath-delete-handmade-pv')).toBe(false);
    } finally {
      // The PV has our finalizer now: remove it by hand so the test leaves nothing behind.
      await core.deletePersistentVolume({ name: 'handmade-pv' }).catch(() => undefined);
      await core
        .patchPersistentVolume({
          name: 'handmade-pv',
          body: [{ op: 'replace', path: '/metadata/finalizers', value: [] }],
        })
        .catch(() => undefined);
      rmSync(important, { recursive: true, force: true });
    }
  });
});

describe('names and modes', () => {
  it('C19 A: a node name longer than 63 characters', async () => {
    const node = 'hpp-node-with-a-very-long-name-that-is-longer-than-sixty-three-characters';
    await createClaim(suite.ns.name, claim('longnode'));
    await suite.ns.createPod({
      ...consumerPod('longnode-app', 'longnode', 'echo x > /data/f'),
      spec: {
        ...consumerPod('longnode-app', 'longnode', 'echo x > /data/f').spec!,
        nodeSelector: { 'hpp.test/role': 'long-name' },
      },
    });
    const pv = await waitForBound(suite.ns.name, 'longnode');
    expect(affinityHostname(pv)).toBe('hpp-long');
    const app = await suite.ns.waitForPhase('longnode-app', ['Succeeded']);
    expect(app.spec?.nodeName).toBe(node);
    expect(existsSync(`${volumeDirOnNode(node, pv)}/f`)).toBe(true);
  });

  it('C19 B: a 63-character namespace and a ~200-character claim name', async () => {
    const longNs = `e2e-${'n'.repeat(59)}`;
    await core.createNamespace({ body: { metadata: { name: longNs, labels: { 'hpp.test/e2e': 'true' } } } });
    try {
      await waitFor('default service account', () =>
        core.readNamespacedServiceAccount({ name: 'default', namespace: longNs }).then(() => true),
      );
      const name = `c${'x'.repeat(198)}`;
      await createClaim(longNs, claim(name));
      await core.createNamespacedPod({
        namespace: longNs,
        body: consumerPod('app', name, 'echo x > /data/f', { node: 'hpp-plain' }),
      });
      const pv = await waitForBound(longNs, name);
      const leaf = (pv.spec?.hostPath?.path ?? '').split('/').at(-1) ?? '';
      expect(Buffer.byteLength(leaf)).toBeLessThanOrEqual(255);
      expect(leaf.endsWith(pv.metadata!.name!)).toBe(true);
      for (const h of suite.helpers.seen.values()) {
        expect(h.metadata!.name!.length).toBeLessThanOrEqual(63);
        for (const v of Object.values(h.metadata?.labels ?? {})) expect(v.length).toBeLessThanOrEqual(63);
      }
      await core.deleteNamespacedPod({ name: 'app', namespace: longNs });
      await core.deleteNamespacedPersistentVolumeClaim({ name, namespace: longNs });
      await waitForVolumeGone(pv.metadata!.name!);
      expect(existsSync(volumeDirOnNode('hpp-plain', pv))).toBe(false);
    } finally {
      await core.deleteNamespace({ name: longNs }).catch(() => undefined);
    }
  });

  it('C20 raw block request: no helper, no PV, a Warning saying block volumes are not supported', async () => {
    await createClaim(suite.ns.name, claim('block', { volumeMode: 'Block' }));
    const pod = consumerPod('block-app', 'block', 'true', { node: 'hpp-plain' });
    const container = pod.spec!.containers[0]!;
    delete container.volumeMounts;
    container.volumeDevices = [{ name: 'data', devicePath: '/dev/xvda' }];
    await suite.ns.createPod(pod);
    const event = await waitForEvent(
      'PersistentVolumeClaim',
      'block',
      suite.ns.name,
      'ProvisioningFailed',
      /block volumes/,
    );
    expect(event.type).toBe('Warning');
    expect([...suite.helpers.seen.keys()].filter((n) => n.includes('block'))).toEqual([]);
    expect((await readClaim(suite.ns.name, 'block')).spec?.volumeName).toBeUndefined();
    expect(
      (await eventsFor('PersistentVolumeClaim', 'block', suite.ns.name)).some(
        (e) => e.reason === 'ProvisioningSucceeded',
      ),
    ).toBe(false);
  });

  it('X01 access modes are copied; a second pod on another node is Pending, never given another empty directory', async () => {
    for (const [name, mode] of [
      ['rwx', 'ReadWriteMany'],
      ['rox', 'ReadOnlyMany'],
      ['rwop', 'ReadWriteOncePod'],
    ] as const) {
      await createClaim(suite.ns.name, claim(name, { accessModes: [mode] }));
      await suite.ns.createPod(consumerPod(`${name}-app`, name, 'sleep 3600', { node: 'hpp-plain' }));
      const pv = await waitForBound(suite.ns.name, name);
      expect(pv.spec?.accessModes).toEqual([mode]);
    }
    await suite.ns.createPod(
      consumerPod('rwx-elsewhere', 'rwx', 'true', {
        node: 'hpp-gpu',
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }],
      }),
    );
    const pending = await suite.ns.waitForPod('rwx-elsewhere', 'Unschedulable', (p) =>
      (p.status?.conditions ?? []).some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable'),
    );
    expect(pending.status?.conditions?.find((c) => c.type === 'PodScheduled')?.message).toMatch(
      /didn't match PersistentVolume's node affinity/,
    );
  });
});
