/**
 * The original bug and the taint cases: a claim whose consumer runs on a tainted node binds there, because the
 * helper pod tolerates exactly those taints of that node which the consumer tolerates, and the real scheduler places it.
 * C01 (custom NoSchedule), the same with NoExecute, both on one node, and C03 (control plane with both effects).
 */
import { describe, expect, it } from '@jest/globals';
import { provisionerSuite } from './support/suite.js';
import { AppsV1Api, type V1Pod, type V1Taint, type V1Toleration } from '@kubernetes/client-node';
import { toleratesTaint } from '../src/domain/tolerations.js';
import { waitFor } from './support/cluster.js';
import {
  affinityHostname,
  claim,
  consumerPod,
  core,
  createClaim,
  liveHelpers,
  modeOf,
  tolerationSet,
  volumeDirOnNode,
  waitForBound,
} from './support/volumes.js';

const suite = provisionerSuite('taints');

const toleration = (t: V1Taint): V1Toleration => ({
  key: t.key,
  operator: 'Equal',
  value: t.value ?? '',
  effect: t.effect,
});

/**
 * Claim + tolerating consumer on `node`; returns the PV, the consumer as admitted, and the create helper as seen.
 */
async function provisionOn(node: string, claimName: string, consumerTolerations: V1Toleration[]) {
  await createClaim(suite.ns.name, claim(claimName));
  await suite.ns.createPod(
    consumerPod(`${claimName}-app`, claimName, 'echo ok > /data/written && sleep 3600', {
      node,
      tolerations: consumerTolerations,
    }),
  );
  const pv = await waitForBound(suite.ns.name, claimName);
  const app = await suite.ns.waitForPhase(`${claimName}-app`, ['Running']);
  const helper = suite.helpers.seen.get(`hostpath-create-${pv.metadata!.name}`);
  return { pv, app, helper };
}

async function nodeTaints(node: string): Promise<V1Taint[]> {
  return (await core.readNode({ name: node })).spec?.taints ?? [];
}

/** Tolerations the API server's DefaultTolerationSeconds admission adds to every pod that lacks them. */
const ADMISSION_DEFAULTS = ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable'];

/**
 * The helper's tolerations are the node's taints (all of which the consumer tolerates here), written as exact
 * tolerations — nothing else (apart from the admission defaults), and none bounded by tolerationSeconds.
 */
function expectExactTolerations(helper: V1Pod | undefined, taints: V1Taint[], app: V1Pod): void {
  expect(helper).toBeDefined();
  const fromTaints = taints.map((t) =>
    t.value
      ? { key: t.key, operator: 'Equal', value: t.value, effect: t.effect }
      : { key: t.key, operator: 'Exists', effect: t.effect },
  );
  const fromConsumer = (app.spec?.tolerations ?? []).filter((t) => taints.some((taint) => toleratesTaint(t, taint)));
  const own = (helper?.spec?.tolerations ?? []).filter(
    (t) =>
      !(
        ADMISSION_DEFAULTS.includes(t.key ?? '') &&
        t.tolerationSeconds === 300 &&
        !taints.some((x) => x.key === t.key)
      ),
  );
  expect(tolerationSet(own)).toEqual(tolerationSet([...fromTaints, ...fromConsumer]));
  // No bounded toleration of ours: the taint-eviction controller uses the smallest tolerationSeconds.
  expect(own.filter((t) => t.tolerationSeconds !== undefined)).toEqual([]);
}

async function expectVolumeOn(node: string, pv: Awaited<ReturnType<typeof waitForBound>>): Promise<void> {
  const nodeObject = await core.readNode({ name: node });
  expect(affinityHostname(pv)).toBe(nodeObject.metadata?.labels?.['kubernetes.io/hostname']);
  const dir = volumeDirOnNode(node, pv);
  expect(modeOf(dir)).toBe(0o777);
  await waitFor(`file written by the consumer in ${dir}`, () => modeOf(`${dir}/written`) !== undefined);
}

describe('helper pods on tainted nodes', () => {
  it('C01 helper tolerates a custom NoSchedule taint', async () => {
    const taints = await nodeTaints('hpp-gpu');
    expect(taints).toEqual([expect.objectContaining({ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' })]);
    const { pv, app, helper } = await provisionOn('hpp-gpu', 'c01', taints.map(toleration));
    expect(app.spec?.nodeName).toBe('hpp-gpu');
    expect(
      helper?.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms,
    ).toEqual([{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['hpp-gpu'] }] }]);
    expectExactTolerations(helper, taints, app);
    await expectVolumeOn('hpp-gpu', pv);
    expect(pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by']).toBe('microk8s.io/hostpath');
    expect(pv.metadata?.annotations?.['hostPathProvisionerIdentity']).toBe('hpp-plain');
    await waitFor('helper pods deleted', async () => (await liveHelpers(suite.provisioner.namespace)).length === 0);
  });

  it('C01 the same with the taint as NoExecute: the helper is not rejected or evicted', async () => {
    const taints = await nodeTaints('hpp-noexec');
    expect(taints.map((t) => t.effect)).toEqual(['NoExecute']);
    const { pv, app, helper } = await provisionOn('hpp-noexec', 'noexec', taints.map(toleration));
    expect(app.spec?.nodeName).toBe('hpp-noexec');
    expectExactTolerations(helper, taints, app);
    await expectVolumeOn('hpp-noexec', pv);
  });

  it('C03 control plane with NoSchedule and NoExecute: a StatefulSet gets one volume on each node', async () => {
    const cpTaints = await nodeTaints('hpp-cp');
    expect(cpTaints.map((t) => t.effect).sort()).toEqual(['NoExecute', 'NoSchedule']);
    const apps = suite.ns.kc.makeApiClient(AppsV1Api);
    const labels = { app: 'c03' };
    await apps.createNamespacedStatefulSet({
      namespace: suite.ns.name,
      body: {
        metadata: { name: 'c03' },
        spec: {
          serviceName: 'c03',
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              terminationGracePeriodSeconds: 1,
              tolerations: [
                { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
                { key: 'cp-only', operator: 'Equal', value: 'true', effect: 'NoExecute' },
              ],
              affinity: {
                nodeAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: {
                    nodeSelectorTerms: [
                      {
                        matchExpressions: [
                          { key: 'kubernetes.io/hostname', operator: 'In', values: ['hpp-cp', 'hpp-plain'] },
                        ],
                      },
                    ],
                  },
                },
                podAntiAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: [
                    { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: labels } },
                  ],
                },
              },
              containers: [
                {
                  name: 'main',
                  image: 'busybox:1.37.0',
                  command: ['sh', '-c', 'echo ok > /data/written && sleep 3600'],
                  volumeMounts: [{ name: 'data', mountPath: '/data' }],
                },
              ],
            },
          },
          volumeClaimTemplates: [claim('data')],
        },
      },
    });
    const byNode = new Map<string, { pv: Awaited<ReturnType<typeof waitForBound>>; app: V1Pod }>();
    for (const ordinal of [0, 1]) {
      const pv = await waitForBound(suite.ns.name, `data-c03-${ordinal}`, { timeoutMs: 90_000 });
      const app = await suite.ns.waitForPhase(`c03-${ordinal}`, ['Running'], { timeoutMs: 60_000 });
      byNode.set(app.spec!.nodeName!, { pv, app });
    }
    expect([...byNode.keys()].sort()).toEqual(['hpp-cp', 'hpp-plain']);
    for (const [node, { pv, app }] of byNode) {
      const helper = suite.helpers.seen.get(`hostpath-create-${pv.metadata!.name}`);
      expectExactTolerations(helper, await nodeTaints(node), app);
      await expectVolumeOn(node, pv);
    }
    // The plain node's helper carries no taint tolerations it does not need.
    const plainHelper = suite.helpers.seen.get(`hostpath-create-${byNode.get('hpp-plain')!.pv.metadata!.name}`);
    expect((plainHelper?.spec?.tolerations ?? []).filter((t) => !ADMISSION_DEFAULTS.includes(t.key ?? ''))).toEqual([]);
  });
});
