/**
 * No head-of-line blocking (review M5): helpers that hang on one node — its base directory cannot be set up, so they
 * stay ContainerCreating, like helpers on a node with a full disk or a stuck image pull — hold no worker while they
 * wait, and at most --max-helpers-per-node of them exist there at once. With as many hanging claims as workers (16,
 * the default; a reconcile that waited for its helper would hold them all), a claim on a healthy node still binds
 * promptly.
 */
import { existsSync, lstatSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { nodePath, waitFor } from './support/cluster.js';
import { applyDefaultStorageClass } from './support/provisioner.js';
import { provisionerSuite } from './support/suite.js';
import { applyStorageClass, claim, consumerPod, createClaim, storage, waitForBound } from './support/volumes.js';

const SICK = 'hpp-noexec';
const CLASS = 'hpp-hang';
const BLOCKER = '/srv/hpp-hang';
const WORKERS = 16;
const PER_NODE = 10;
const HANGING = 16;

const suite = provisionerSuite('hol', {
  setup: async () => {
    await applyDefaultStorageClass();
    await applyStorageClass({
      metadata: { name: CLASS },
      provisioner: 'microk8s.io/hostpath',
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Delete',
      parameters: { pvDir: `${BLOCKER}/base` },
    });
    // A regular file where the base directory's parent should be: every helper there stays ContainerCreating.
    rmSync(nodePath(SICK, BLOCKER), { recursive: true, force: true });
    mkdirSync(nodePath(SICK, '/srv'), { recursive: true });
    writeFileSync(nodePath(SICK, BLOCKER), 'not a directory\n');
  },
  provisioner: {
    // The defaults of --workers and --max-helpers-per-node, spelled out.
    args: ['--workers', String(WORKERS), '--max-helpers-per-node', String(PER_NODE), '--helper-timeout', '600'],
  },
  teardown: async () => {
    await storage.deleteStorageClass({ name: CLASS }).catch(() => undefined);
  },
});

afterAll(() => {
  const file = nodePath(SICK, BLOCKER);
  if (existsSync(file) && lstatSync(file).isFile()) rmSync(file);
});

/** Create helpers seen for the hanging claims. */
function hangingHelpers(): V1Pod[] {
  return [...suite.helpers.seen.values()].filter((h) =>
    h.metadata?.annotations?.['hostpath-provisioner.io/claim']?.startsWith(`${suite.ns.name}/hang-`),
  );
}

describe('helpers hanging on one node', () => {
  it(`hold no worker: ${HANGING} hanging claims, ${WORKERS} workers, and a claim on a healthy node binds`, async () => {
    for (let i = 0; i < HANGING; i++) {
      await createClaim(suite.ns.name, claim(`hang-${i}`, { className: CLASS }));
      await suite.ns.createPod(
        consumerPod(`hang-${i}-app`, `hang-${i}`, 'true', {
          node: SICK,
          tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoExecute' }],
        }),
      );
    }
    await waitFor(`${PER_NODE} helpers on ${SICK}`, () => hangingHelpers().length >= PER_NODE);
    // They never finish, so every helper ever seen is still there: the per-node limit holds.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(hangingHelpers()).toHaveLength(PER_NODE);
    expect(hangingHelpers().every((h) => h.status?.phase === 'Pending')).toBe(true);

    await createClaim(suite.ns.name, claim('healthy'));
    await suite.ns.createPod(consumerPod('healthy-app', 'healthy', 'echo ok > /data/f', { node: 'hpp-plain' }));
    // Far below the helper timeout the hanging helpers would hold a blocking worker for.
    await waitForBound(suite.ns.name, 'healthy', { timeoutMs: 60_000 });
    await suite.ns.waitForPhase('healthy-app', ['Succeeded']);
  });
});
