/**
 * Every kustomization under manifests/ renders with the harness's kubectl (`kubectl kustomize`) and is accepted by
 * the real API server (`kubectl apply --dry-run=server`: admission, validation and defaulting run, nothing is
 * stored). The rendered objects keep the compatibility contract: the microk8s overlay carries the addon's names,
 * namespace and PV_DIR, the StorageClass is the addon's, the Deployment is locked down; and the overlay's
 * Deployment can be applied over the addon's own Deployment in place.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  CoreV1Api,
  type KubernetesObject,
  type V1ClusterRole,
  type V1ClusterRoleBinding,
  type V1ConfigMap,
  type V1Deployment,
  type V1PodDisruptionBudget,
  type V1Role,
  type V1RoleBinding,
  type V1Service,
  type V1StorageClass,
} from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { buildHelperPod } from '../src/domain/helper-pod.js';
import {
  apiStatus,
  CLUSTER_DIR,
  createTestNamespace,
  kubeconfigPath,
  loadKubeConfig,
  REPO_ROOT,
  type TestNamespace,
} from './support/cluster.js';

const KUBECTL = join(CLUSTER_DIR, 'bin', 'kubectl');
const MANIFESTS = join(REPO_ROOT, 'manifests');
const BASE_NAMESPACE = 'hostpath-provisioner';
const PV_DIR = '/var/snap/microk8s/common/default-storage';

/** A rendered Kubernetes object. */
type Obj = KubernetesObject & { kind: string; metadata: { name: string; namespace?: string } };

/** The Prometheus Operator's ServiceMonitor, as far as the tests read it. */
interface ServiceMonitor extends Obj {
  spec: { endpoints: { port: string; path: string }[] };
}

/** Runs the harness's kubectl with the admin kubeconfig; never throws. */
function kubectl(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(KUBECTL, ['--kubeconfig', kubeconfigPath(), ...args], {
    input,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Folders under manifests/ holding a kustomization.yaml, as paths relative to manifests/. */
function kustomizations(dir = MANIFESTS): string[] {
  const found: string[] = [];
  if (existsSync(join(dir, 'kustomization.yaml'))) found.push(relative(MANIFESTS, dir));
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...kustomizations(path));
  }
  return found.sort();
}

/** `kubectl kustomize manifests/<path>`: the YAML text and its objects. */
function render(path: string): { yaml: string; objects: Obj[] } {
  const r = kubectl(['kustomize', join(MANIFESTS, path)]);
  if (r.status !== 0) throw new Error(`kubectl kustomize manifests/${path} failed: ${r.stderr}`);
  const objects = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
  return { yaml: r.stdout, objects };
}

/** Server-side dry-run apply of YAML text; resolves to kubectl's result (status 0 = every object accepted). */
function dryRun(yaml: string, extra: string[] = []) {
  const r = kubectl(['apply', '--dry-run=server', ...extra, '-f', '-'], yaml);
  // Objects other tests created without kubectl (the ClusterRole, the StorageClass) only draw kubectl's notice that
  // it will add its last-applied annotation; anything else on stderr is a real complaint.
  const stderr = r.stderr
    .split('\n')
    .filter(
      (line) =>
        line !== '' && !/is missing the kubectl\.kubernetes\.io\/last-applied-configuration annotation/.test(line),
    )
    .join('\n');
  return { ...r, stderr };
}

/** The rendered object of `kind` (and `name`), typed by the caller; throws when absent. */
function find<T extends KubernetesObject = Obj>(objects: Obj[], kind: string, name?: string): T {
  const o = objects.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (o === undefined) throw new Error(`no ${kind} ${name ?? ''} in the rendering`);
  return o as unknown as T;
}

const toYaml = (objects: Obj[]) => objects.map((o) => stringify(o)).join('---\n');

/** The properties both the base and the microk8s overlay must keep on the provisioner Deployment. */
function expectLockedDownDeployment(deployment: V1Deployment): void {
  const pod = deployment.spec?.template.spec;
  const container = pod?.containers[0];
  expect(deployment.spec?.replicas).toBe(2);
  expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
  expect(container?.securityContext).toMatchObject({
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  });
  expect(container?.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
  expect(container?.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
  expect(container?.ports).toContainEqual({ name: 'metrics', containerPort: 9090 });
  const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e]));
  expect(env.NAMESPACE?.valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.namespace' } });
  expect(env.NODE_NAME?.valueFrom).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });
  expect(env.PV_DIR?.value).toBe(PV_DIR);
  // Fully qualified: CRI-O refuses short names such as busybox:1.37.0.
  expect(env.BUSYBOX_IMAGE?.value).toBe('docker.io/library/busybox:1.37.0');
  expect(container?.resources?.requests).toBeDefined();
}

/** The addon's StorageClass: default class, WaitForFirstConsumer, Delete, provisioner microk8s.io/hostpath. */
function expectAddonStorageClass(objects: Obj[]): void {
  expect(find(objects, 'StorageClass', 'microk8s-hostpath')).toMatchObject({
    metadata: { annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: 'microk8s.io/hostpath',
    volumeBindingMode: 'WaitForFirstConsumer',
    reclaimPolicy: 'Delete',
  });
}

let createdBaseNamespace = false;
let ns: TestNamespace;

beforeAll(async () => {
  if (!existsSync(KUBECTL)) throw new Error(`${KUBECTL} is missing: run make cluster-up`);
  // Namespaced objects of the base need their namespace to exist even in a dry run; create it (empty) if absent,
  // as `kubectl apply` would (with the last-applied annotation).
  const core = loadKubeConfig().makeApiClient(CoreV1Api);
  const exists = await core.readNamespace({ name: BASE_NAMESPACE }).then(
    () => true,
    (err: unknown) => {
      if (apiStatus(err) === 404) return false;
      throw err;
    },
  );
  if (!exists) {
    const created = kubectl(['create', 'namespace', BASE_NAMESPACE, '--save-config']);
    if (created.status !== 0) throw new Error(`cannot create namespace ${BASE_NAMESPACE}: ${created.stderr}`);
    createdBaseNamespace = true;
  }
  ns = await createTestNamespace('manifests');
}, 60_000);

afterAll(async () => {
  await ns?.cleanup();
  if (createdBaseNamespace) {
    await loadKubeConfig()
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: BASE_NAMESPACE })
      .catch(() => undefined);
  }
});

describe('every kustomization', () => {
  it('is found: base, the microk8s overlay, the examples and monitoring', () => {
    expect(kustomizations()).toEqual([
      'base',
      'examples/custom-path-immediate',
      'examples/retain',
      'monitoring',
      'overlays/microk8s',
    ]);
  });

  it.each(kustomizations().filter((k) => k !== 'monitoring'))(
    '%s renders and the API server accepts it (server-side dry run)',
    (path) => {
      const { yaml, objects } = render(path);
      expect(objects.length).toBeGreaterThan(0);
      const r = dryRun(yaml);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const accepted = r.stdout.trim().split('\n');
      expect(accepted).toHaveLength(objects.length);
      for (const line of accepted) expect(line).toMatch(/ (created|configured|unchanged) \(server dry run\)$/);
    },
  );

  // The ServiceMonitor and PrometheusRule need the Prometheus Operator's CRDs, which this control plane does not have:
  // without them they are checked as rendered only; the dashboard ConfigMap is applied (dry run) in a test namespace.
  it('monitoring renders; its ConfigMap is accepted, its ServiceMonitor and PrometheusRule too where the CRDs exist', () => {
    const { objects } = render('monitoring');
    const monitor = find<ServiceMonitor>(objects, 'ServiceMonitor', 'hostpath-provisioner');
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.spec.endpoints).toContainEqual(expect.objectContaining({ port: 'metrics', path: '/metrics' }));
    const dashboard = find<V1ConfigMap>(objects, 'ConfigMap', 'hostpath-provisioner-dashboard');
    expect(dashboard.metadata).toMatchObject({ labels: { grafana_dashboard: '1' } });
    expect(JSON.parse(dashboard.data?.['hostpath-provisioner.json'] ?? '')).toMatchObject({
      uid: 'hostpath-provisioner',
    });

    expect(find(objects, 'PrometheusRule', 'hostpath-provisioner').apiVersion).toBe('monitoring.coreos.com/v1');
    const crd = kubectl(['get', 'crd', 'servicemonitors.monitoring.coreos.com', '-o', 'name']);
    const operatorKinds = ['ServiceMonitor', 'PrometheusRule'];
    const applicable = crd.status === 0 ? objects : objects.filter((o) => !operatorKinds.includes(o.kind ?? ''));
    const r = dryRun(toYaml(applicable), ['-n', ns.name]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('base', () => {
  const { objects } = render('base');

  it('puts every namespaced object in the namespace hostpath-provisioner, created by the base itself', () => {
    expect(find(objects, 'Namespace').metadata.name).toBe(BASE_NAMESPACE);
    const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'StorageClass']);
    for (const o of objects.filter((x) => !clusterScoped.has(x.kind))) {
      expect(`${o.kind}/${o.metadata.name} in ${o.metadata.namespace}`).toBe(
        `${o.kind}/${o.metadata.name} in ${BASE_NAMESPACE}`,
      );
    }
  });

  it('has the locked-down Deployment, the PDB, the metrics Service and the addon StorageClass', () => {
    expectLockedDownDeployment(find<V1Deployment>(objects, 'Deployment', 'hostpath-provisioner'));
    expect(find<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget').spec?.maxUnavailable).toBe(1);
    expect(find<V1Service>(objects, 'Service', 'hostpath-provisioner-metrics').spec?.ports).toContainEqual(
      expect.objectContaining({ name: 'metrics', port: 9090 }),
    );
    expectAddonStorageClass(objects);
  });

  it('labels its namespace for Pod Security: enforce privileged (what helpers need), audit and warn at baseline', () => {
    expect(find(objects, 'Namespace').metadata).toMatchObject({
      labels: {
        'pod-security.kubernetes.io/enforce': 'privileged',
        'pod-security.kubernetes.io/audit': 'baseline',
        'pod-security.kubernetes.io/warn': 'baseline',
      },
    });
  });

  it("a helper pod is admitted under the base namespace's labels (with a baseline warning), refused under enforce=baseline", () => {
    const labels = find(objects, 'Namespace').metadata.labels as Record<string, string>;
    const helper = (namespace: string) =>
      buildHelperPod({
        operation: 'create',
        volumeName: 'pvc-00000000-0000-0000-0000-000000000001',
        namespace,
        nodeName: 'hpp-plain',
        baseDirectory: PV_DIR,
        directoryName: 'ns-claim-pvc-00000000-0000-0000-0000-000000000001',
        image: 'docker.io/library/busybox:1.37.0',
        tolerations: [],
        priorityClassName: '',
        activeDeadlineSeconds: 60,
      });
    const label = (values: Record<string, string>) =>
      kubectl(['label', 'namespace', ns.name, '--overwrite', ...Object.entries(values).map(([k, v]) => `${k}=${v}`)]);
    try {
      expect(label(labels).status).toBe(0);
      const admitted = kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(helper(ns.name)));
      expect(admitted.status).toBe(0);
      expect(admitted.stderr).toMatch(/would violate PodSecurity "baseline:latest": .*hostPath volumes/);

      expect(label({ 'pod-security.kubernetes.io/enforce': 'baseline' }).status).toBe(0);
      const refused = kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(helper(ns.name)));
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toMatch(/violates PodSecurity "baseline:latest": .*hostPath volumes/);
    } finally {
      kubectl([
        'label',
        'namespace',
        ns.name,
        'pod-security.kubernetes.io/enforce-',
        'pod-security.kubernetes.io/enforce-version-',
        'pod-security.kubernetes.io/audit-',
        'pod-security.kubernetes.io/audit-version-',
        'pod-security.kubernetes.io/warn-',
        'pod-security.kubernetes.io/warn-version-',
      ]);
    }
  });

  it('grants exactly the verbs the code calls', () => {
    const rules = (kind: string) =>
      Object.fromEntries(
        (find<V1ClusterRole | V1Role>(objects, kind).rules ?? []).map((r) => [
          `${r.apiGroups?.[0] || 'core'}/${r.resources?.[0] ?? ''}`,
          r.verbs,
        ]),
      );
    expect(rules('ClusterRole')).toEqual({
      'core/persistentvolumeclaims': ['get', 'list', 'watch', 'patch'],
      'core/persistentvolumeclaims/status': ['patch'],
      'core/persistentvolumes': ['get', 'list', 'watch', 'create', 'delete', 'patch'],
      'storage.k8s.io/storageclasses': ['list', 'watch'],
      'core/nodes': ['get', 'list', 'watch'],
      'core/pods': ['list', 'watch'],
      'core/events': ['create', 'patch'],
    });
    expect(rules('Role')).toEqual({
      'core/pods': ['get', 'create', 'delete'],
      'core/pods/log': ['get'],
      'coordination.k8s.io/leases': ['get', 'create', 'update'],
    });
  });
});

describe('overlays/microk8s', () => {
  const { objects } = render('overlays/microk8s');

  it("keeps the addon's object names in kube-system and creates no namespace", () => {
    expect(objects.filter((o) => o.kind === 'Namespace')).toEqual([]);
    for (const o of objects.filter((x) => !['ClusterRole', 'ClusterRoleBinding', 'StorageClass'].includes(x.kind))) {
      expect(`${o.kind}/${o.metadata.name}: ${o.metadata.namespace}`).toBe(`${o.kind}/${o.metadata.name}: kube-system`);
    }
    const deployment = find<V1Deployment>(objects, 'Deployment', 'hostpath-provisioner');
    expect(deployment.spec?.template.spec?.serviceAccountName).toBe('microk8s-hostpath');
    find(objects, 'ServiceAccount', 'microk8s-hostpath');
    find(objects, 'ClusterRole', 'microk8s-hostpath');
    expect(find<V1ClusterRoleBinding>(objects, 'ClusterRoleBinding', 'microk8s-hostpath')).toMatchObject({
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'microk8s-hostpath' },
      subjects: [{ kind: 'ServiceAccount', name: 'microk8s-hostpath', namespace: 'kube-system' }],
    });
    expect(find<V1RoleBinding>(objects, 'RoleBinding').subjects).toEqual([
      { kind: 'ServiceAccount', name: 'microk8s-hostpath', namespace: 'kube-system' },
    ]);
  });

  it("runs the locked-down Deployment with the addon's PV_DIR, selector and a Recreate rollout", () => {
    const deployment = find<V1Deployment>(objects, 'Deployment', 'hostpath-provisioner');
    expectLockedDownDeployment(deployment);
    expect(deployment.spec?.selector).toEqual({ matchLabels: { 'k8s-app': 'hostpath-provisioner' } });
    expect(deployment.spec?.template.metadata?.labels).toMatchObject({ 'k8s-app': 'hostpath-provisioner' });
    expect(deployment.spec?.strategy).toEqual({ type: 'Recreate' });
    // The PDB and the metrics Service select labels the pods carry.
    const podLabels = deployment.spec?.template.metadata?.labels ?? {};
    expect(podLabels).toMatchObject(
      find<V1PodDisruptionBudget>(objects, 'PodDisruptionBudget').spec?.selector?.matchLabels ?? { missing: '' },
    );
    expect(podLabels).toMatchObject(find<V1Service>(objects, 'Service').spec?.selector ?? { missing: '' });
    expectAddonStorageClass(objects);
  });

  it("is applied over the addon's own Deployment in place (selector, volumes, strategy)", () => {
    // The addon's Deployment as `microk8s enable hostpath-storage` applies it (client-side apply), scaled to 0.
    const addon = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'hostpath-provisioner', namespace: ns.name, labels: { 'k8s-app': 'hostpath-provisioner' } },
      spec: {
        replicas: 0,
        revisionHistoryLimit: 0,
        selector: { matchLabels: { 'k8s-app': 'hostpath-provisioner' } },
        template: {
          metadata: { labels: { 'k8s-app': 'hostpath-provisioner' } },
          spec: {
            serviceAccountName: 'microk8s-hostpath',
            containers: [
              {
                name: 'hostpath-provisioner',
                image: 'cdkbot/hostpath-provisioner:1.4.2',
                env: [{ name: 'PV_DIR', value: PV_DIR }],
                volumeMounts: [{ name: 'pv-volume', mountPath: PV_DIR }],
              },
            ],
            volumes: [{ name: 'pv-volume', hostPath: { path: PV_DIR } }],
          },
        },
      },
    };
    const created = kubectl(['apply', '-f', '-'], stringify(addon));
    expect(created.stderr).toBe('');

    const ours = structuredClone(find<V1Deployment>(objects, 'Deployment', 'hostpath-provisioner'));
    ours.metadata = { ...ours.metadata, namespace: ns.name };
    const r = kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], stringify(ours));
    expect(r.stderr).toBe('');
    const result = JSON.parse(r.stdout) as V1Deployment;
    expect(result.spec?.strategy).toEqual({ type: 'Recreate' });
    expect(result.spec?.template.spec?.volumes).toBeUndefined();
    expect(result.spec?.template.spec?.containers[0]?.volumeMounts).toBeUndefined();
    expect(result.spec?.template.spec?.containers[0]?.image).toBe(ours.spec?.template.spec?.containers[0]?.image);

    // Why the overlay keeps the addon's selector: the base's would be refused (a selector is immutable).
    const base = structuredClone(find(render('base').objects, 'Deployment', 'hostpath-provisioner'));
    base.metadata = { ...base.metadata, namespace: ns.name };
    const refused = dryRun(stringify(base));
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/selector.*immutable/);
  });
});

describe('examples', () => {
  it('retain: a WaitForFirstConsumer class whose volumes are kept', () => {
    expect(find(render('examples/retain').objects, 'StorageClass')).toMatchObject({
      provisioner: 'microk8s.io/hostpath',
      reclaimPolicy: 'Retain',
      volumeBindingMode: 'WaitForFirstConsumer',
    });
  });

  it('custom-path-immediate: Immediate binding under the pvDir parameter, no other parameter', () => {
    const sc = find(render('examples/custom-path-immediate').objects, 'StorageClass');
    expect(sc).toMatchObject({ provisioner: 'microk8s.io/hostpath', volumeBindingMode: 'Immediate' });
    expect((sc as V1StorageClass).parameters).toEqual({ pvDir: '/mnt/ssd' });
  });
});
