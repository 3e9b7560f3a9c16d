/**
 * Ownership and mode of the volume directory (issue 17; local-path-provisioner's userPattern/groupPattern/
 * permPattern): a class with `uid`, `gid` and `mode` gets directories owned and moded as asked, writable by a
 * non-root pod through its fsGroup and closed to one outside the group; a class without them keeps the addon's 0777
 * root directory and helpers without CAP_CHOWN; an invalid value is refused before any helper runs.
 */
import { statSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { provisionerSuite } from './support/suite.js';
import { applyDefaultStorageClass } from './support/provisioner.js';
import {
  applyStorageClass,
  claim,
  consumerPod,
  createClaim,
  readClaim,
  volumeDirOnNode,
  waitForBound,
  waitForEvent,
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

const suite = provisionerSuite('owner', {
  setup: async () => {
    await applyDefaultStorageClass();
    await applyStorageClass(owned);
    await applyStorageClass(invalid);
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
