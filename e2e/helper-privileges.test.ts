/**
 * Helpers with only DAC_OVERRIDE and FOWNER (the default `--helper-capabilities`) still create, list and remove
 * directories of other users with restrictive modes: a base directory 0700 (sticky) owned by uid 1234, a volume
 * directory turned 0700 and uid 1234 with a 0600 file and a 0500 subdirectory in it. The node stand-in runs each
 * helper with exactly the capabilities its securityContext gives it (`setpriv`, see e2e/node-agent/capabilities.ts);
 * the control case — the same helper with no capability at all — is refused by the kernel, which shows the test
 * exercises the capability set and not the stand-in's own root.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestNamespace, nodePath, waitFor, type TestNamespace } from './support/cluster.js';
import { logLines } from './support/faults.js';
import { startProvisioner, type Provisioner } from './support/provisioner.js';
import {
  applyStorageClass,
  claim,
  consumerPod,
  createClaim,
  drainNamespace,
  modeOf,
  recordHelpers,
  storage,
  volumeDirOnNode,
  waitForBound,
  waitForEvent,
  waitForVolumeGone,
  type HelperRecorder,
} from './support/volumes.js';

const CLASS = 'e2e-restricted';
const BASE = '/srv/hpp-restricted';
const NODE = 'hpp-plain';
const OWNER = 1234;

let ns: TestNamespace;
let provisioner: Provisioner | undefined;
/** The provisioner namespace of the control case, reused by the second provisioner (its helpers are recorded). */
let provisionerNamespace = '';
let helpers: HelperRecorder | undefined;
const base = nodePath(NODE, BASE);

/** Makes `path` owned by uid/gid OWNER with `mode`. */
function own(path: string, mode: number): void {
  chownSync(path, OWNER, OWNER);
  chmodSync(path, mode);
}

beforeAll(async () => {
  await applyStorageClass({
    metadata: { name: CLASS },
    provisioner: 'microk8s.io/hostpath',
    parameters: { pvDir: BASE },
    volumeBindingMode: 'WaitForFirstConsumer',
    reclaimPolicy: 'Delete',
  });
  rmSync(base, { recursive: true, force: true });
  mkdirSync(join(base, 'stray'), { recursive: true });
  writeFileSync(join(base, 'stray', 'secret'), 'stray\n');
  own(join(base, 'stray', 'secret'), 0o600);
  own(join(base, 'stray'), 0o700);
  // Sticky and 0700, owned by another user: mkdir needs DAC_OVERRIDE, removing an entry of another user FOWNER.
  own(base, 0o1700);
  ns = await createTestNamespace('privileges');
});

afterAll(async () => {
  if (ns) await drainNamespace(ns);
  helpers?.stop();
  await provisioner?.stop();
  await storage.deleteStorageClass({ name: CLASS }).catch(() => undefined);
  rmSync(base, { recursive: true, force: true });
});

describe('helper privileges', () => {
  it('without any capability the create helper is refused by the kernel (control case)', async () => {
    provisioner = await startProvisioner({ env: { HELPER_CAPABILITIES: '' }, args: ['--helper-timeout', '20'] });
    await createClaim(ns.name, claim('locked', { className: CLASS }));
    await ns.createPod(consumerPod('locked-app', 'locked', 'echo ok > /data/f', { node: NODE }));
    const event = await waitForEvent('PersistentVolumeClaim', 'locked', ns.name, 'ProvisioningFailed', /exit|exited/);
    expect(event.message).toMatch(/Permission denied/);
    provisionerNamespace = provisioner.namespace;
    await provisioner.stop();
    provisioner = undefined;
  });

  it('helpers with only DAC_OVERRIDE and FOWNER create, list and remove directories of another user with restrictive modes', async () => {
    expect(provisionerNamespace).not.toBe('');
    helpers = await recordHelpers(provisionerNamespace);
    provisioner = await startProvisioner({
      namespace: provisionerNamespace,
      env: { ORPHAN_REPORT_INTERVAL: '0.1' },
      args: ['--helper-timeout', '20'],
    });
    // create: mkdir in the 1700 base of uid 1234.
    const pv = await waitForBound(ns.name, 'locked', { timeoutMs: 90_000 });
    const dir = volumeDirOnNode(NODE, pv);
    expect(modeOf(dir)).toBe(0o777);
    await ns.waitForPhase('locked-app', ['Succeeded']);

    // The volume's owner locks it down: 0700 and uid 1234, a 0600 file, a 0500 subdirectory with a file.
    mkdirSync(join(dir, 'ro'));
    writeFileSync(join(dir, 'ro', 'inner'), 'inner\n');
    own(join(dir, 'ro', 'inner'), 0o600);
    own(join(dir, 'ro'), 0o500);
    own(join(dir, 'f'), 0o600);
    own(dir, 0o700);

    // list: the 1700 base of uid 1234 is listed; the stray 0700 directory is reported, the volume is not.
    const report = await waitFor(
      `the orphan report of ${BASE} on ${NODE}`,
      () => logLines(provisioner!, /^orphan directories/).find((r) => r.node === NODE && r.base === BASE),
      { timeoutMs: 60_000 },
    );
    expect(report.directories).toEqual(['stray']);

    // delete: rm -rf of the 0700 tree of uid 1234 in the sticky base.
    await ns.core.deleteNamespacedPod({ name: 'locked-app', namespace: ns.name, gracePeriodSeconds: 0 });
    await ns.waitForPodGone('locked-app');
    await ns.core.deleteNamespacedPersistentVolumeClaim({ name: 'locked', namespace: ns.name });
    await waitForVolumeGone(pv.metadata!.name!, { timeoutMs: 90_000 });
    expect(existsSync(dir)).toBe(false);
    // Nothing else was touched: the stray directory and its file stay, the base keeps its owner and mode.
    expect(readFileSync(join(base, 'stray', 'secret'), 'utf8')).toBe('stray\n');
    expect(modeOf(base)).toBe(0o1700);

    // Every helper ran as root with exactly these two capabilities, no escalation, RuntimeDefault seccomp, read-only root.
    const seen = [...helpers.seen.values()];
    expect(new Set(seen.map((p) => p.metadata?.labels?.['hostpath-provisioner.io/operation']))).toEqual(
      new Set(['create', 'list', 'delete']),
    );
    for (const p of seen) {
      expect(p.spec?.containers[0]?.securityContext).toMatchObject({
        runAsUser: 0,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        seccompProfile: { type: 'RuntimeDefault' },
        capabilities: { drop: ['ALL'], add: ['DAC_OVERRIDE', 'FOWNER'] },
      });
    }
  });
});
