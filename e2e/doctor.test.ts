/**
 * `hostpath-provisioner doctor` on the real control plane: things are broken on purpose — a pod pinned with
 * spec.nodeName, a NoExecute taint the claim's pod does not tolerate, a missing StorageClass, a missing RBAC verb,
 * Pod Security refusing the helpers, no default StorageClass — and
 * each diagnosis and its fix text is checked, with the exit codes (1 needs attention, 2 could not look).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions } from '@kubernetes/client-node';
import { loadKubeConfig, REPO_ROOT, waitFor } from './support/cluster.js';
import { runDoctor } from './support/doctor.js';
import { provisionerSuite } from './support/suite.js';
import { claim, consumerPod, core, createClaim, storage, waitForBound, waitForEvent } from './support/volumes.js';
import type { Finding } from '../src/domain/diagnosis.js';

const suite = provisionerSuite('doctor');
const rbac = loadKubeConfig().makeApiClient(RbacAuthorizationV1Api);

/** Runs doctor against this file's provisioner (JSON output, admin kubeconfig). */
const doctor = (...args: string[]) => runDoctor(suite.provisioner.namespace, ...args);

const about = (findings: Finding[], subject: string) => findings.find((f) => f.subject === subject);

describe('doctor', () => {
  it('names a pod pinned by spec.nodeName, an untolerated taint and a missing class, with their fixes', async () => {
    const ns = suite.ns.name;
    await createClaim(ns, claim('pinned'));
    const pinned = consumerPod('pinned-app', 'pinned', 'true');
    pinned.spec!.nodeName = 'hpp-plain';
    await suite.ns.createPod(pinned);

    const tainted = claim('tainted');
    tainted.metadata!.annotations = { 'volume.kubernetes.io/selected-node': 'hpp-noexec' };
    await createClaim(ns, tainted);
    await suite.ns.createPod(consumerPod('tainted-app', 'tainted', 'true', { node: 'hpp-noexec' }));
    await createClaim(ns, claim('classless', { className: 'no-such-class' }));
    await waitForEvent('PersistentVolumeClaim', 'tainted', ns, 'ProvisioningFailed', /tolerates/);

    const { status, findings } = doctor('--namespace', ns);
    expect(status).toBe(1);
    expect(about(findings, 'provisioner')?.status).toBe('ok');
    expect(about(findings, `claim ${ns}/pinned`)).toEqual({
      subject: `claim ${ns}/pinned`,
      status: 'attention',
      summary:
        'pod pinned-app sets spec.nodeName, which bypasses the scheduler: no node is ever selected for the claim',
      fix: 'use a nodeSelector on kubernetes.io/hostname instead of spec.nodeName',
    });
    expect(about(findings, `claim ${ns}/tainted`)).toEqual({
      subject: `claim ${ns}/tainted`,
      status: 'attention',
      summary: 'node hpp-noexec has taint dedicated=db:NoExecute that pod tainted-app does not tolerate',
      fix: 'add the toleration to the pod, or let the scheduler choose another node',
    });
    expect(about(findings, `claim ${ns}/classless`)?.summary).toBe(
      'names StorageClass no-such-class, which does not exist',
    );
    expect(about(findings, `ServiceAccount ${suite.provisioner.namespace}/hostpath-provisioner`)?.status).toBe('ok');
    expect(about(findings, 'node hpp-noexec')?.summary).toMatch(/^Ready; taints dedicated=db:NoExecute; /);
  });

  it('lists a permission the ServiceAccount lacks', async () => {
    const namespace = suite.provisioner.namespace;
    const role = await rbac.readNamespacedRole({ name: 'hostpath-provisioner', namespace });
    role.rules = (role.rules ?? []).filter((r) => !r.resources?.includes('pods/log'));
    await rbac.replaceNamespacedRole({ name: 'hostpath-provisioner', namespace, body: role });
    const missing = await waitFor('doctor to see the missing verb', () => {
      const f = about(doctor('--claim', 'none').findings, `ServiceAccount ${namespace}/hostpath-provisioner`);
      return f?.status === 'attention' ? f : undefined;
    });
    expect(missing).toEqual({
      subject: `ServiceAccount ${namespace}/hostpath-provisioner`,
      status: 'attention',
      summary: `cannot get pods/log in ${namespace}`,
      fix: 'apply manifests/base/rbac.yaml (it grants exactly what the code uses)',
    });
  });

  it('names Pod Security refusing the helpers, on the namespace and on the claim, with the fix', async () => {
    const namespace = suite.provisioner.namespace;
    const label = (value: string | null) =>
      core.patchNamespace({
        name: namespace,
        body: [
          value === null
            ? { op: 'remove', path: '/metadata/labels/pod-security.kubernetes.io~1enforce' }
            : { op: 'add', path: '/metadata/labels/pod-security.kubernetes.io~1enforce', value },
        ],
      });
    await label('baseline');
    try {
      await createClaim(suite.ns.name, claim('refused'));
      await suite.ns.createPod(consumerPod('refused-app', 'refused', 'true', { node: 'hpp-plain' }));
      await waitForEvent('PersistentVolumeClaim', 'refused', suite.ns.name, 'ProvisioningFailed', /PodSecurity/);
      const { findings } = doctor('--namespace', suite.ns.name, '--claim', 'refused');
      expect(about(findings, `namespace ${namespace}`)).toEqual({
        subject: `namespace ${namespace}`,
        status: 'attention',
        summary:
          'Pod Security enforces baseline: every helper pod (hostPath volume, root) is refused, so no claim can bind',
        fix: `kubectl label namespace ${namespace} pod-security.kubernetes.io/enforce=privileged --overwrite`,
      });
      const stuck = about(findings, `claim ${suite.ns.name}/refused`);
      expect(stuck?.summary).toMatch(
        /^last ProvisioningFailed: .*the API server refused the helper pod: .*PodSecurity/,
      );
      expect(stuck?.fix).toMatch(/pod-security.kubernetes.io\/enforce=privileged/);
    } finally {
      await label(null);
    }
    await waitForBound(suite.ns.name, 'refused', { timeoutMs: 90_000 });
  });

  it('says when no StorageClass is the default', async () => {
    const annotate = (value: string) =>
      storage.patchStorageClass(
        {
          name: 'microk8s-hostpath',
          body: { metadata: { annotations: { 'storageclass.kubernetes.io/is-default-class': value } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    await annotate('false');
    try {
      const f = about(doctor('--claim', 'none').findings, 'default StorageClass');
      expect(f?.summary).toBe('no StorageClass is the default: claims that name no class stay Pending');
    } finally {
      await annotate('true');
    }
  });

  it('exits 2 when it cannot look at the cluster', () => {
    const r = spawnSync(
      process.execPath,
      [join(REPO_ROOT, 'dist/src/cli/main.js'), 'doctor', '--kubeconfig', join(REPO_ROOT, 'e2e/no-such-kubeconfig')],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^hostpath-provisioner doctor: cannot look at the cluster: /);
  });
});
