/**
 * Observability on the real control plane: provision and delete volumes (some failing on purpose), then check from
 * a real scrape of /metrics that counters and histogram counts equal what happened, and that the events users read
 * in `kubectl describe` carry the expected reasons and counts. A real Prometheus scrapes the provisioner all along and
 * evaluates manifests/monitoring's alert rules (their `for` shortened to 0s): every dashboard query and alert
 * expression parses and returns series, the alerts for what went wrong fire and the others do not (a volume holding
 * twice its capacity fires both filling-up alerts and gets a VolumeOverCapacity event), and the latency histogram's p99
 * is the one the provisioner's own buckets give.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse, stringify } from 'yaml';
import { provisionerSuite } from './support/suite.js';
import { CLUSTER_DIR, REPO_ROOT, waitFor } from './support/cluster.js';
import { sumOf } from './support/metrics.js';
import { dashboardQueries } from '../test/support/dashboard.js';
import { promtoolCheckRules, startPrometheus, type Prometheus } from './support/prometheus.js';
import {
  applyStorageClass,
  claim,
  consumerPod,
  core,
  createClaim,
  eventsFor,
  storage,
  volumeDirOnNode,
  waitForBound,
  waitForEvent,
  waitForVolumeGone,
} from './support/volumes.js';

const id = randomBytes(3).toString('hex');
const good = `metrics-good-${id}`;
const bad = `metrics-bad-${id}`;
const base = {
  provisioner: 'microk8s.io/hostpath',
  volumeBindingMode: 'WaitForFirstConsumer',
  reclaimPolicy: 'Delete',
};

async function eventCount(kind: string, name: string, namespace: string, reason: string): Promise<number> {
  return (await eventsFor(kind, name, namespace))
    .filter((e) => e.reason === reason)
    .reduce((n, e) => n + (e.count ?? 1), 0);
}

const suite = provisionerSuite('metrics', {
  setup: async () => {
    await applyStorageClass({ metadata: { name: good }, ...base });
    await applyStorageClass({ metadata: { name: bad }, ...base, parameters: { size: 'large' } });
  },
  // Usage reports every 6 s (the first 1.5 to 6 s after leadership starts).
  provisioner: { args: ['--retry-base-delay', '0.5', '--retry-max-delay', '2', '--orphan-report-interval', '0.1'] },
  teardown: async () => {
    await storage.deleteStorageClass({ name: good }).catch(() => undefined);
    await storage.deleteStorageClass({ name: bad }).catch(() => undefined);
  },
});

/** The alert rules of manifests/monitoring as a Prometheus rule file, each `for` shortened to 0s for the test. */
const RULES = (() => {
  const rule = parse(readFileSync(join(REPO_ROOT, 'manifests/monitoring/prometheusrule.yaml'), 'utf8')) as {
    spec: { groups: { rules: { alert: string; expr: string; for?: string }[] }[] };
  };
  return rule.spec.groups.map((g) => ({ ...g, rules: g.rules.map((r) => ({ ...r, for: '0s' })) }));
})();
const rulesFile = join(CLUSTER_DIR, 'metrics-test-rules.yaml');
let prometheus: Prometheus;

beforeAll(async () => {
  writeFileSync(rulesFile, stringify({ groups: RULES }));
  prometheus = await startPrometheus([`127.0.0.1:${suite.provisioner.port}`], [rulesFile]);
  // A first scrape before anything happens, with the classes' counters at 0: the failures below are increases.
  await waitFor('Prometheus to have scraped the class counters at 0', async () => {
    const r = await prometheus.query(`controller_persistentvolumeclaim_provision_failed_total{class="${bad}"} == 0`);
    return r.samples.length === 1;
  });
}, 660_000);
afterAll(async () => {
  await prometheus?.stop();
});

/**
 * Prometheus's histogram_quantile on cumulative buckets (promql/quantile.go, bucketQuantile): the rank q·count falls
 * in the first bucket whose count reaches it, interpolated linearly from the bucket's lower bound (0 for the first);
 * in the +Inf bucket it is the highest finite bound.
 */
function bucketQuantile(q: number, buckets: readonly [number, number][]): number {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted[sorted.length - 1]?.[1] ?? 0;
  const rank = q * total;
  const i = sorted.findIndex(([, count]) => count >= rank);
  if (i === sorted.length - 1) return sorted[sorted.length - 2]?.[0] ?? NaN;
  const [end, count] = sorted[i]!;
  const [start, before] = i === 0 ? [0, 0] : sorted[i - 1]!;
  return start + (end - start) * ((rank - before) / (count - before));
}

/** The dashboard's queries with Grafana's variables as a user opening it would have them (every class, 1m). */
function dashboardQueriesAsShown(): string[] {
  const dashboard: unknown = JSON.parse(
    readFileSync(join(REPO_ROOT, 'manifests/monitoring/grafana-dashboard.json'), 'utf8'),
  );
  return dashboardQueries(dashboard).map((q) => q.replaceAll('$class', '.*').replaceAll('$__rate_interval', '1m'));
}

describe('metrics and events', () => {
  it('counters, histograms and events equal what happened', async () => {
    const names = ['m0', 'm1', 'm2', 'm3'];
    for (const name of names) {
      await createClaim(suite.ns.name, claim(name, { className: good }));
      await suite.ns.createPod(consumerPod(`${name}-app`, name, 'echo x > /data/f', { node: 'hpp-plain' }));
    }
    await createClaim(suite.ns.name, claim('refused', { className: bad }));
    await suite.ns.createPod(consumerPod('refused-app', 'refused', 'true', { node: 'hpp-plain' }));
    const pvs = await Promise.all(names.map((n) => waitForBound(suite.ns.name, n)));
    await waitForEvent(
      'PersistentVolumeClaim',
      'refused',
      suite.ns.name,
      'ProvisioningFailed',
      /unknown parameter "size"/,
    );

    let text = await suite.provisioner.metrics();
    expect(sumOf(text, 'controller_persistentvolumeclaim_provision_total', { class: good })).toBe(4);
    expect(sumOf(text, 'controller_persistentvolumeclaim_provision_failed_total', { class: good })).toBe(0);
    expect(sumOf(text, 'controller_persistentvolumeclaim_provision_duration_seconds_count', { class: good })).toBe(4);
    expect(sumOf(text, 'hostpath_provisioner_provision_latency_seconds_count', { class: good })).toBe(4);
    const createHelpers = [...suite.helpers.seen.keys()].filter((n) => n.startsWith('hostpath-create-')).length;
    expect(
      sumOf(text, 'hostpath_provisioner_helper_pods_total', { operation: 'provision', outcome: 'succeeded' }),
    ).toBe(createHelpers);
    expect(
      sumOf(text, 'hostpath_provisioner_phase_duration_seconds_count', { operation: 'provision', phase: 'pv_create' }),
    ).toBe(createHelpers);
    // Every refusal is one failed provision and one more count on the same aggregated event.
    // (Events are recorded asynchronously: wait until the event count has caught up with the counter.)
    const refusals = await waitFor('refusal event count to equal the failed-provision counter', async () => {
      const failed = sumOf(
        await suite.provisioner.metrics(),
        'controller_persistentvolumeclaim_provision_failed_total',
        {
          class: bad,
        },
      );
      const counted = await eventCount('PersistentVolumeClaim', 'refused', suite.ns.name, 'ProvisioningFailed');
      return failed >= 1 && failed === counted ? failed : false;
    });
    expect(refusals).toBeGreaterThanOrEqual(1);
    expect(sumOf(text, 'controller_persistentvolumeclaim_provision_total', { class: bad })).toBe(0);
    for (const name of names) {
      // Events are written asynchronously; the claim may be Bound a moment before its event is stored.
      await waitFor(
        `ProvisioningSucceeded on ${name}`,
        async () => (await eventCount('PersistentVolumeClaim', name, suite.ns.name, 'ProvisioningSucceeded')) === 1,
      );
      expect(await eventCount('PersistentVolumeClaim', name, suite.ns.name, 'ProvisioningSucceeded')).toBe(1);
      expect(await eventCount('PersistentVolumeClaim', name, suite.ns.name, 'Provisioning')).toBe(1);
    }
    expect(sumOf(text, 'hostpath_provisioner_leader')).toBe(1);
    expect(sumOf(text, 'hostpath_provisioner_build_info')).toBe(1);

    // Deletion: three succeed at once; one is blocked by an immutable file, fails, and succeeds once it is released.
    const stuckDir = volumeDirOnNode('hpp-plain', pvs[3]!);
    mkdirSync(`${stuckDir}/sub`, { recursive: true });
    writeFileSync(`${stuckDir}/sub/pinned`, 'x');
    execFileSync('chattr', ['+i', `${stuckDir}/sub/pinned`]);
    try {
      for (const name of names) {
        await core.deleteNamespacedPod({ name: `${name}-app`, namespace: suite.ns.name, gracePeriodSeconds: 0 });
        await core.deleteNamespacedPersistentVolumeClaim({ name, namespace: suite.ns.name });
      }
      await Promise.all(pvs.slice(0, 3).map((pv) => waitForVolumeGone(pv.metadata!.name!)));
      await waitFor('two failed deletes', async () => {
        const t = await suite.provisioner.metrics();
        return sumOf(t, 'controller_persistentvolume_delete_failed_total', { class: good }) >= 2;
      });
    } finally {
      execFileSync('chattr', ['-i', `${stuckDir}/sub/pinned`]);
    }
    await waitForVolumeGone(pvs[3]!.metadata!.name!);
    text = await suite.provisioner.metrics();
    expect(sumOf(text, 'controller_persistentvolume_delete_total', { class: good })).toBe(4);
    const failedDeletes = sumOf(text, 'controller_persistentvolume_delete_failed_total', { class: good });
    expect(failedDeletes).toBeGreaterThanOrEqual(2);
    expect(sumOf(text, 'controller_persistentvolume_delete_duration_seconds_count', { class: good })).toBe(
      4 + failedDeletes,
    );
    await waitFor(
      'VolumeFailedDelete event count to equal the failed-delete counter',
      async () =>
        (await eventCount('PersistentVolume', pvs[3]!.metadata!.name!, '', 'VolumeFailedDelete')) === failedDeletes,
    );
    expect(sumOf(text, 'hostpath_provisioner_helper_pods_total', { operation: 'delete', outcome: 'failed' })).toBe(
      failedDeletes,
    );
  });

  it('a real Prometheus: promtool accepts the rules, every dashboard query and alert returns series, the right alerts fire', async () => {
    const checked = promtoolCheckRules(rulesFile);
    expect(checked.output).toMatch(/SUCCESS: 6 rules found/);
    expect(checked.status).toBe(0);
    // Prometheus has scraped the end state of the test above.
    await waitFor(
      'Prometheus to have scraped the last deletion',
      async () =>
        (await prometheus.query(`controller_persistentvolume_delete_total{class="${good}"} == 4`)).samples.length === 1,
      { timeoutMs: 30_000 },
    );

    // A volume that holds 2 MiB on a claim of 1 MiB: measured by the usage report, said on the claim.
    await createClaim(suite.ns.name, claim('full', { className: good, size: '1Mi' }));
    await suite.ns.createPod(
      consumerPod('full-app', 'full', 'dd if=/dev/zero of=/data/blob bs=1024 count=2048', { node: 'hpp-plain' }),
    );
    const fullPv = await waitForBound(suite.ns.name, 'full');
    await suite.ns.waitForPhase('full-app', ['Succeeded']);
    const fullSeries = `{namespace="${suite.ns.name}",persistentvolumeclaim="full",persistentvolume="${fullPv.metadata!.name!}",node="hpp-plain"}`;
    await waitFor(
      'Prometheus to have two samples of the full volume’s usage',
      async () =>
        (await prometheus.query(`count_over_time(hostpath_provisioner_volume_used_bytes${fullSeries}[1m]) >= 2`))
          .samples.length === 1,
      { timeoutMs: 60_000 },
    );
    const used = await prometheus.query(`hostpath_provisioner_volume_used_bytes${fullSeries}`);
    expect(Number(used.samples[0]?.value[1])).toBeGreaterThanOrEqual(2 * 1024 * 1024);
    const capacity = await prometheus.query(`hostpath_provisioner_volume_capacity_bytes${fullSeries}`);
    expect(Number(capacity.samples[0]?.value[1])).toBe(1024 * 1024);
    const over = await waitForEvent('PersistentVolumeClaim', 'full', suite.ns.name, 'VolumeOverCapacity');
    expect(over.type).toBe('Warning');
    expect(over.message).toMatch(
      new RegExp(
        `^volume ${fullPv.metadata!.name!} uses 2\\.\\d MiB \\(\\d+ bytes\\) on node hpp-plain, more than its capacity 1Mi`,
      ),
    );

    // The alerts expected to fire are checked by firing; every other expression must return series without its
    // threshold.
    const expectedFiring = new Set([
      'HostpathProvisionerProvisioningFailures',
      'HostpathProvisionerDeletionFailures',
      'HostpathProvisionerVolumeFillingUp',
    ]);
    const empty: string[] = [];
    for (const q of [
      ...dashboardQueriesAsShown(),
      ...RULES.flatMap((g) =>
        g.rules.filter((r) => !expectedFiring.has(r.alert)).map((r) => r.expr.replace(/ > [\d.]+$| < 1$/, '')),
      ),
    ]) {
      const answer = await prometheus.query(q);
      expect({ q, status: answer.status, error: answer.error }).toEqual({ q, status: 'success', error: undefined });
      if (answer.samples.length === 0) empty.push(q);
    }
    expect(empty).toEqual([]);

    const firing = await waitFor(
      'the failure alerts firing',
      async () => {
        const alerts = (await prometheus.alerts()).filter((a) => a.state === 'firing');
        const names = new Set(
          alerts.map(
            (a) =>
              `${a.labels['alertname']}/${a.labels['class'] ?? a.labels['persistentvolumeclaim'] ?? ''}/${a.labels['severity']}`,
          ),
        );
        return names.has(`HostpathProvisionerProvisioningFailures/${bad}/warning`) &&
          names.has(`HostpathProvisionerDeletionFailures/${good}/warning`) &&
          names.has('HostpathProvisionerVolumeFillingUp/full/critical') &&
          names.has('HostpathProvisionerVolumeFillingUp/full/warning')
          ? alerts
          : Promise.reject(new Error(`firing: ${[...names].join(', ') || 'none'}`));
      },
      { timeoutMs: 30_000 },
    );
    expect(firing.map((a) => `${a.labels['alertname']}/${a.labels['severity']}`).sort()).toEqual([
      'HostpathProvisionerDeletionFailures/warning',
      'HostpathProvisionerProvisioningFailures/warning',
      'HostpathProvisionerVolumeFillingUp/critical',
      'HostpathProvisionerVolumeFillingUp/warning',
    ]);

    // The p99 users see is the one the provisioner's own buckets give.
    const text = await suite.provisioner.metrics();
    const buckets: [number, number][] = [];
    for (const m of text.matchAll(
      new RegExp(`^hostpath_provisioner_provision_latency_seconds_bucket\\{([^}]*)\\} (\\S+)$`, 'gm'),
    )) {
      const labels = m[1] ?? '';
      if (!labels.includes(`class="${good}"`)) continue;
      const le = /le="([^"]+)"/.exec(labels)?.[1] ?? '';
      buckets.push([le === '+Inf' ? Infinity : Number(le), Number(m[2])]);
    }
    expect(buckets.length).toBeGreaterThan(2);
    const p99 = await prometheus.query(
      `histogram_quantile(0.99, sum by (le) (hostpath_provisioner_provision_latency_seconds_bucket{class="${good}"}))`,
    );
    expect(Number(p99.samples[0]?.value[1])).toBeCloseTo(bucketQuantile(0.99, buckets), 6);
  });
});
