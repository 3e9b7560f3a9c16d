/**
 * `hostpath-provisioner doctor` on a helper image a real node cannot pull: the provisioner runs with a helper image
 * that was never imported into the real nodes' containerd (and there is no registry to pull from), so the real
 * kubelet reports ErrImagePull / ImagePullBackOff for the create helper. Doctor names the image problem on the claim
 * and gives the fix. Needs the real nodes (HPP_REAL_NODES ≥ 2).
 */
import { describe, expect, it } from '@jest/globals';
import { waitFor } from './support/cluster.js';
import { runDoctor } from './support/doctor.js';
import { provisionerSuite } from './support/suite.js';
import { claim, consumerPod, createClaim } from './support/volumes.js';

const MISSING_IMAGE = 'docker.io/library/busybox:0.0.0-never-imported';
const NODE = 'hpp-real-plain';

const suite = provisionerSuite('doctor-img', { provisioner: { env: { BUSYBOX_IMAGE: MISSING_IMAGE } } });

/** Runs doctor (JSON output) for one claim with the admin kubeconfig. */
const doctorFor = (namespace: string, claimName: string) =>
  runDoctor(suite.provisioner.namespace, '--namespace', namespace, '--claim', claimName);

describe('doctor on a real node', () => {
  it('names a helper image the node cannot pull, with the fix', async () => {
    const ns = suite.ns.name;
    await createClaim(ns, claim('unpullable'));
    await suite.ns.createPod(
      consumerPod('unpullable-app', 'unpullable', 'true', {
        node: NODE,
        tolerations: [{ key: 'hpp.test/real-node', operator: 'Exists', effect: 'NoSchedule' }],
      }),
    );
    const subject = `claim ${ns}/unpullable`;
    const finding = await waitFor(
      'doctor to name the image pull failure',
      () => {
        const { status, findings } = doctorFor(ns, 'unpullable');
        const f = findings.find((x) => x.subject === subject);
        return status === 1 && f?.status === 'attention' && /pull/i.test(f.summary) ? f : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 2000 },
    );
    expect(finding.summary).toContain(MISSING_IMAGE);
    expect(finding.fix).toBe('make the helper image pullable on that node, or set BUSYBOX_IMAGE to one it can pull');
  });
});
