/**
 * Leftover helpers at start: helper pods of ours (found by label) that a crash left behind for a claim or volume that
 * no longer exists are deleted when the provisioner starts leading; pods without our label are never touched.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { shellPod, waitFor } from './support/cluster.js';
import { logLines } from './support/faults.js';
import { applyDefaultStorageClass, startProvisioner, type Provisioner } from './support/provisioner.js';
import { core, liveHelpers } from './support/volumes.js';

let provisioner: Provisioner | undefined;
let namespace: string;

beforeAll(async () => {
  await applyDefaultStorageClass();
  // First start only makes the namespace and its RBAC; the stale pods are created while no provisioner runs.
  const first = await startProvisioner();
  namespace = first.namespace;
  await first.stop();
});

afterAll(async () => {
  await provisioner?.stop();
});

/** A long-running pod that looks like one of our helpers, as a crash would leave it. */
function staleHelper(name: string, operation: string, annotations: Record<string, string>): V1Pod {
  const pod = shellPod(name, 'sleep 3600', { node: 'hpp-plain' });
  pod.metadata = {
    name,
    labels: {
      'app.kubernetes.io/managed-by': 'hostpath-provisioner',
      'hostpath-provisioner.io/operation': operation,
      'hostpath-provisioner.io/volume': annotations['hostpath-provisioner.io/volume-name'] ?? 'none',
    },
    annotations,
  };
  return pod;
}

describe('leftover helpers', () => {
  it('stale helpers of ours for a claim or volume that no longer exists are deleted at start; other pods stay', async () => {
    const stale = [
      staleHelper('hostpath-create-pvc-stale-claim', 'create', {
        'hostpath-provisioner.io/volume-name': 'pvc-stale-claim',
        'hostpath-provisioner.io/claim': 'nowhere/gone',
        'hostpath-provisioner.io/claim-uid': 'stale-claim',
        'hostpath-provisioner.io/path': '/var/snap/microk8s/common/default-storage/nowhere-gone-pvc-stale-claim',
      }),
      staleHelper('hostpath-delete-pvc-stale-volume', 'delete', {
        'hostpath-provisioner.io/volume-name': 'pvc-stale-volume',
        'hostpath-provisioner.io/path': '/var/snap/microk8s/common/default-storage/x-y-pvc-stale-volume',
      }),
    ];
    const bystander = shellPod('not-a-helper', 'sleep 3600', { node: 'hpp-plain' });
    for (const pod of [...stale, bystander]) await core.createNamespacedPod({ namespace, body: pod });
    // Only these two are looked at: the short first start may have begun a helper of its own for work another suite
    // left to any provisioner of this name (a Released volume), and that helper is not stale.
    const staleNames = stale.map((p) => p.metadata!.name!);
    const staleLeft = async (): Promise<V1Pod[]> =>
      (await liveHelpers(namespace)).filter((p) => staleNames.includes(p.metadata?.name ?? ''));
    await waitFor('the stale helpers to run', async () => {
      const running = (await staleLeft()).filter((p) => p.status?.phase === 'Running');
      return running.length === stale.length;
    });

    provisioner = await startProvisioner({ namespace });
    await waitFor('the stale helpers to be deleted', async () => (await staleLeft()).length === 0, {
      timeoutMs: 60_000,
    });
    const swept = logLines(provisioner, /^deleting a leftover helper pod$/).map((r) => [r.helper, r.reason]);
    expect(swept).toEqual(
      expect.arrayContaining([
        ['hostpath-create-pvc-stale-claim', 'claim nowhere/gone no longer exists'],
        ['hostpath-delete-pvc-stale-volume', 'volume pvc-stale-volume no longer exists'],
      ]),
    );
    const other = await core.readNamespacedPod({ namespace, name: 'not-a-helper' });
    expect(other.metadata?.deletionTimestamp).toBeUndefined();
    await core.deleteNamespacedPod({ namespace, name: 'not-a-helper', gracePeriodSeconds: 0 });
  });
});
