import {
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  SchedulingV1Api,
  StorageV1Api,
  type CoreV1Event,
  type V1Lease,
  type V1Node,
} from '@kubernetes/client-node';
import { Command, Option } from 'commander';
import { claimClassName } from '../domain/class-name.js';
import { LABEL_HOSTNAME } from '../domain/constants.js';
import {
  diagnoseClaim,
  diagnoseClasses,
  diagnoseHelperNamespace,
  diagnoseHelperPriorityClass,
  diagnoseHelperQuotas,
  diagnoseLease,
  diagnoseNamedClaim,
  diagnoseNode,
  diagnoseProvisionerPods,
  diagnoseReadiness,
  diagnoseReleasedVolume,
  doctorExitCode,
  provisionerSettings,
  readinessTarget,
  versionFromMetrics,
  type Finding,
  type ProvisionerSettings,
  type Readable,
  type ReadinessOutcome,
  type ReadinessTarget,
} from '../domain/diagnosis.js';
import { helperPodName, volumeNameForClaim } from '../domain/names.js';
import { claimNamesOfPod } from '../domain/pod-claims.js';
import { TOLERATION_POLICIES, type TolerationPolicy } from '../domain/tolerations.js';
import { apiErrorMessage, apiStatusCode, loadKubeConfig } from '../kube/client.js';
import { configFields } from '../runtime/config.js';

/** Exit code when `doctor` could not look (no cluster, no permission to read). */
export const EXIT_CANNOT_LOOK = 2;

/** How long one readiness request to a provisioner pod may take, in milliseconds. */
export const READINESS_TIMEOUT_MS = 2000;

/** `run`'s default `--helper-priority-class`, so doctor checks what the provisioner uses unless told otherwise. */
const DEFAULT_HELPER_PRIORITY_CLASS = ((d: unknown) => (typeof d === 'string' ? d : ''))(
  configFields.helperPriorityClassName.default(),
);

/** Namespaces searched for the provisioner's Lease when `--provisioner-namespace` is not given. */
const PROVISIONER_NAMESPACES = ['hostpath-provisioner', 'kube-system'];

/**
 * The API permissions the provisioner's ServiceAccount needs (manifests/base/rbac.yaml): [group, resource, verb,
 * namespaced]. Namespaced ones are checked in the provisioner's namespace.
 */
export const REQUIRED_PERMISSIONS: readonly (readonly [string, string, string, boolean])[] = [
  ...['get', 'list', 'watch', 'patch'].map((v) => ['', 'persistentvolumeclaims', v, false] as const),
  ['', 'persistentvolumeclaims/status', 'patch', false],
  ...['get', 'list', 'watch', 'create', 'delete', 'patch'].map((v) => ['', 'persistentvolumes', v, false] as const),
  ...['list', 'watch'].map((v) => ['storage.k8s.io', 'storageclasses', v, false] as const),
  ...['get', 'list', 'watch'].map((v) => ['', 'nodes', v, false] as const),
  ...['list', 'watch'].map((v) => ['', 'pods', v, false] as const),
  ...['create', 'patch'].map((v) => ['', 'events', v, false] as const),
  ...['get', 'create', 'delete'].map((v) => ['', 'pods', v, true] as const),
  ['', 'pods/log', 'get', true],
  ...['get', 'create', 'update'].map((v) => ['coordination.k8s.io', 'leases', v, true] as const),
];

/** Options of {@link runDoctor}. */
export interface DoctorOptions {
  readonly kubeconfig?: string;
  /** Only claims of this namespace. */
  readonly namespace?: string;
  /** Only this claim (needs `namespace`, default `default`). */
  readonly claim?: string;
  /** Where the provisioner runs; found from its Lease when absent. */
  readonly provisionerNamespace?: string;
  /**
   * The provisioner's settings as the user gives them to doctor; each one absent is read from the provisioner's pods
   * (their args and env), else `run`'s default ({@link provisionerSettings}).
   */
  readonly settings?: Partial<ProvisionerSettings>;
  readonly leaseName: string;
}

/** `run`'s defaults of the settings doctor checks with; the ServiceAccount is manifests/base's. */
export const DEFAULT_SETTINGS: ProvisionerSettings = {
  provisionerNames: ['microk8s.io/hostpath'],
  pvDir: '/var/snap/microk8s/common/default-storage',
  tolerationPolicy: 'node-taints',
  helperPriorityClass: DEFAULT_HELPER_PRIORITY_CLASS,
  serviceAccount: 'hostpath-provisioner',
};

/**
 * Looks at the cluster read-only and diagnoses it: the provisioner (Lease, its pods and each pod's `/readyz`, asked
 * over HTTP with a {@link READINESS_TIMEOUT_MS} timeout), the helper namespace (Pod Security, the delete helpers'
 * PriorityClass, ResourceQuotas; a 403 on those reads is an info finding), our StorageClasses, the
 * ServiceAccount's permissions (SubjectAccessReview), every node, every claim of ours not Bound and every Released PV
 * of ours not cleaned up.
 *
 * @returns the findings, in that order.
 * @throws the API error when the cluster cannot be read at all (the caller exits {@link EXIT_CANNOT_LOOK}).
 */
export async function runDoctor(options: DoctorOptions): Promise<Finding[]> {
  const kc = loadKubeConfig(options.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const storage = kc.makeApiClient(StorageV1Api);
  const coordination = kc.makeApiClient(CoordinationV1Api);
  const authorization = kc.makeApiClient(AuthorizationV1Api);
  const scheduling = kc.makeApiClient(SchedulingV1Api);
  const now = Date.now();

  const findings: Finding[] = [];
  let lease: V1Lease | undefined;
  let namespace = options.provisionerNamespace;
  const searched = namespace ? [namespace] : PROVISIONER_NAMESPACES;
  for (const ns of searched) {
    lease = await coordination.readNamespacedLease({ name: options.leaseName, namespace: ns }).catch((err: unknown) => {
      if (apiStatusCode(err) === 404) return undefined;
      throw err;
    });
    if (lease) {
      namespace = ns;
      break;
    }
  }
  namespace ??= PROVISIONER_NAMESPACES[0] ?? 'hostpath-provisioner';
  findings.push(diagnoseLease(lease, now, searched));
  const [own, helperNamespace] = await Promise.all([
    core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/name=hostpath-provisioner' }),
    core.readNamespace({ name: namespace }).catch((err: unknown) => {
      if (apiStatusCode(err) === 404) return undefined;
      throw err;
    }),
  ]);
  const settings = provisionerSettings(options.settings ?? {}, own.items, DEFAULT_SETTINGS);
  const pods = diagnoseProvisionerPods(own.items);
  if (pods) findings.push(pods);
  const targets = own.items.map(readinessTarget).filter((t): t is ReadinessTarget => t !== undefined);
  findings.push(...(await Promise.all(targets.map(async (t) => diagnoseReadiness(t, await askReadiness(t))))));
  findings.push(diagnoseHelperNamespace(helperNamespace));
  const [priorityClasses, quotas] = await Promise.all([
    settings.helperPriorityClass ? readable(scheduling.listPriorityClass()) : { items: [] },
    readable(core.listNamespacedResourceQuota({ namespace })),
  ]);
  findings.push(diagnoseHelperPriorityClass(settings.helperPriorityClass, priorityClasses));
  findings.push(...diagnoseHelperQuotas(namespace, quotas, settings.helperPriorityClass));

  const [classes, nodes, claims, volumes, helpers] = await Promise.all([
    storage.listStorageClass(),
    core.listNode(),
    options.namespace
      ? core.listNamespacedPersistentVolumeClaim({ namespace: options.namespace })
      : core.listPersistentVolumeClaimForAllNamespaces(),
    core.listPersistentVolume(),
    core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/managed-by=hostpath-provisioner' }),
  ]);
  findings.push(...diagnoseClasses(classes.items, settings.provisionerNames, settings.pvDir));
  findings.push(...(await permissionFindings(authorization, namespace, settings.serviceAccount)));
  for (const node of nodes.items) findings.push(diagnoseNode(node, settings.tolerationPolicy));

  const byName = new Map<string, V1Node>(nodes.items.map((n) => [n.metadata?.name ?? '', n]));
  const byHostname = new Map<string, V1Node>(byName);
  for (const n of nodes.items) byHostname.set(n.metadata?.labels?.[LABEL_HOSTNAME] ?? n.metadata?.name ?? '', n);
  const classByName = new Map(classes.items.map((sc) => [sc.metadata?.name ?? '', sc]));
  const helperByName = new Map(helpers.items.map((p) => [p.metadata?.name ?? '', p]));
  const eventsOf = async (kind: string, name: string, ns: string): Promise<CoreV1Event[]> =>
    (
      await core.listNamespacedEvent({
        namespace: ns || 'default',
        fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
      })
    ).items;

  const selected = claims.items.filter(
    (c) => c.status?.phase !== 'Bound' && (options.claim === undefined || c.metadata?.name === options.claim),
  );
  if (options.claim !== undefined) {
    const named = diagnoseNamedClaim(options.namespace ?? 'default', options.claim, claims.items);
    if (named) findings.push(named);
  }
  const podsByNamespace = new Map<string, Awaited<ReturnType<CoreV1Api['listNamespacedPod']>>['items']>();
  for (const claim of selected) {
    const ns = claim.metadata?.namespace ?? '';
    if (!podsByNamespace.has(ns)) podsByNamespace.set(ns, (await core.listNamespacedPod({ namespace: ns })).items);
    const consumers = (podsByNamespace.get(ns) ?? []).filter((p) =>
      claimNamesOfPod(p).includes(claim.metadata?.name ?? ''),
    );
    const finding = diagnoseClaim({
      claim,
      storageClass: classByName.get(claimClassName(claim)),
      consumers,
      nodes: byName,
      helper: helperByName.get(helperPodName('create', volumeNameForClaim(claim.metadata?.uid ?? ''))),
      events: await eventsOf('PersistentVolumeClaim', claim.metadata?.name ?? '', ns),
      provisionerNames: settings.provisionerNames,
      defaultBaseDirectory: settings.pvDir,
    });
    if (finding) findings.push(finding);
  }
  if (options.claim === undefined) {
    for (const pv of volumes.items) {
      if (pv.status?.phase !== 'Released') continue;
      const finding = diagnoseReleasedVolume(
        pv,
        byHostname,
        await eventsOf('PersistentVolume', pv.metadata?.name ?? '', ''),
        settings.provisionerNames,
        now,
      );
      if (finding) findings.push(finding);
    }
  }
  return findings;
}

/**
 * A list read that your kubeconfig may not be allowed to make (doctor runs with yours, not the provisioner's
 * ServiceAccount): a 403 becomes `unreadable` with the API server's message; other errors are thrown.
 */
export async function readable<T>(list: Promise<{ items: T[] }>): Promise<Readable<T>> {
  try {
    return { items: (await list).items };
  } catch (err) {
    if (apiStatusCode(err) === 403) return { unreadable: apiErrorMessage(err) };
    throw err;
  }
}

/**
 * Asks a provisioner pod's readiness endpoint once: GET with a {@link READINESS_TIMEOUT_MS} timeout that covers the
 * body too. Never throws: a failure becomes an `error` outcome.
 */
export async function askReadiness(target: ReadinessTarget): Promise<ReadinessOutcome> {
  try {
    const res = await fetch(target.url, { signal: AbortSignal.timeout(READINESS_TIMEOUT_MS), redirect: 'manual' });
    const answer = { kind: 'answer', statusCode: res.status, body: await res.text() } as const;
    const version = await askVersion(new URL('/metrics', target.url).href);
    return version ? { ...answer, version } : answer;
  } catch (err) {
    // Duck-typed, not instanceof: fetch's errors may come from another realm (e.g. under a test runner's VM).
    const e = err as { name?: unknown; message?: unknown; cause?: { message?: unknown; code?: unknown } } | undefined;
    const cause = typeof e?.cause?.message === 'string' ? e.cause.message : undefined;
    const message =
      e?.name === 'TimeoutError'
        ? `no answer within ${READINESS_TIMEOUT_MS / 1000} s`
        : (cause ?? (typeof e?.message === 'string' ? e.message : String(err)));
    return { kind: 'error', message };
  }
}

/**
 * The version a provisioner serves on `/metrics` next to its readiness endpoint (same server), with the same timeout.
 * Never throws: undefined when it cannot be read.
 */
async function askVersion(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(READINESS_TIMEOUT_MS), redirect: 'manual' });
    return res.ok ? versionFromMetrics(await res.text()) : undefined;
  } catch {
    return undefined;
  }
}

/** One finding per missing permission of the ServiceAccount (or one ok finding), from SubjectAccessReviews. */
async function permissionFindings(
  authorization: AuthorizationV1Api,
  namespace: string,
  serviceAccount: string,
): Promise<Finding[]> {
  const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
  const missing = new Map<string, string[]>();
  for (const [group, resource, verb, namespaced] of REQUIRED_PERMISSIONS) {
    const [plural, subresource] = resource.split('/');
    const review = await authorization.createSubjectAccessReview({
      body: {
        spec: {
          user,
          groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
          resourceAttributes: {
            group,
            resource: plural ?? resource,
            ...(subresource ? { subresource } : {}),
            verb,
            ...(namespaced ? { namespace } : {}),
          },
        },
      },
    });
    if (!review.status?.allowed) {
      const key = `${group ? `${group}/` : ''}${resource}${namespaced ? ` in ${namespace}` : ''}`;
      missing.set(key, [...(missing.get(key) ?? []), verb]);
    }
  }
  const subject = `ServiceAccount ${namespace}/${serviceAccount}`;
  if (missing.size === 0) return [{ subject, status: 'ok', summary: 'has every permission the provisioner uses' }];
  return [
    {
      subject,
      status: 'attention',
      summary: `cannot ${[...missing].map(([what, verbs]) => `${verbs.join('/')} ${what}`).join(', ')}`,
      fix: 'apply manifests/base/rbac.yaml (it grants exactly what the code uses)',
    },
  ];
}

/** The text output's mark of each finding status. */
const STATUS_MARK: Readonly<Record<Finding['status'], string>> = { ok: 'OK', attention: '!!', info: '--' };

/**
 * Makes text from the cluster safe to print on a terminal: every C0 and C1 control character (ESC, BEL, NUL, CR, the
 * line breaks too — a finding is one logical line) and DEL becomes `\u{…}`, so names and annotations a namespace user
 * wrote cannot clear the screen, set the title or fake a finding. Pure.
 */
export function terminalSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
}

/**
 * Formats findings for an 80-column terminal: one line each marked `OK` (ok), `!!` (attention) or `--` (info: could
 * not tell), its fix indented below, and a closing count of those that need attention. Control characters in any
 * text are shown escaped ({@link terminalSafe}).
 *
 * @param findings - from {@link runDoctor}.
 */
export function formatFindings(findings: readonly Finding[]): string {
  const lines: string[] = [];
  for (const f of findings) {
    lines.push(...wrap(terminalSafe(`${STATUS_MARK[f.status]} ${f.subject}: ${f.summary}`), 80, '   '));
    if (f.fix) lines.push(...wrap(terminalSafe(`fix: ${f.fix}`), 77, '     ').map((l) => `   ${l}`));
  }
  const problems = findings.filter((f) => f.status === 'attention').length;
  lines.push(problems === 0 ? 'healthy: nothing needs attention' : `${problems} finding(s) need attention`);
  return `${lines.join('\n')}\n`;
}

/** What `doctor -o json` prints: the schema is docs/doctor.schema.json. */
export interface DoctorReport {
  /** True when no finding needs attention (exit code 0). */
  readonly healthy: boolean;
  readonly findings: readonly Finding[];
}

/**
 * Formats findings as `doctor -o json` prints them: a {@link DoctorReport}, indented two spaces, with a final newline.
 * The shape is documented (and tested against) in docs/doctor.schema.json.
 *
 * @param findings - from {@link runDoctor}.
 */
export function formatJson(findings: readonly Finding[]): string {
  const report: DoctorReport = { healthy: doctorExitCode(findings) === 0, findings };
  return `${JSON.stringify(report, null, 2)}\n`;
}

/**
 * Wraps `text` at word boundaries to `width` columns; continuation lines start with `indent`. A word longer than a
 * line (a 253-character claim or node name) is cut across lines, so no line is ever wider than `width`.
 */
function wrap(text: string, width: number, indent: string): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line === '' || line === indent) line += word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      out.push(line);
      line = indent + word;
    }
    while (line.length > width) {
      out.push(line.slice(0, width));
      line = indent + line.slice(width);
    }
  }
  if (line !== '' && line !== indent) out.push(line);
  return out;
}

/** The `doctor` subcommand (commander). */
export function doctorCommand(): Command {
  return new Command('doctor')
    .description(
      'read-only check of the cluster: the provisioner, helper admission, StorageClasses, permissions, nodes, claims that are not ' +
        'Bound and why, Released volumes not cleaned up. Exit 0 healthy, 1 needs attention, 2 could not look',
    )
    .option('--kubeconfig <path>', 'kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)')
    .option('-n, --namespace <namespace>', 'only claims of this namespace')
    .option('--claim <name>', 'only this claim (with --namespace; default namespace "default")')
    .option('--provisioner-namespace <namespace>', `where the provisioner runs (default: found from its Lease)`)
    .option(
      '--provisioner-name <names>',
      'provisioner names, comma-separated (default: as its pods run, else microk8s.io/hostpath)',
    )
    .option('--pv-dir <path>', `PV_DIR of the provisioner (default: as its pods run, else ${DEFAULT_SETTINGS.pvDir})`)
    .addOption(
      new Option(
        '--toleration-policy <policy>',
        'toleration policy of the provisioner (default: as its pods run, else node-taints)',
      ).choices(TOLERATION_POLICIES),
    )
    .option(
      '--helper-priority-class <name>',
      `the provisioner's --helper-priority-class (of delete helpers); empty for none (default: as its pods run, else ${DEFAULT_HELPER_PRIORITY_CLASS})`,
    )
    .option('--lease-name <name>', 'leader-election Lease name', 'microk8s.io-hostpath')
    .option(
      '--service-account <name>',
      "the provisioner's ServiceAccount (default: its pods', else hostpath-provisioner)",
    )
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (opts: Record<string, string | undefined>) => {
      try {
        const namespace = opts['namespace'] ?? (opts['claim'] ? 'default' : undefined);
        const findings = await runDoctor({
          ...(opts['kubeconfig'] ? { kubeconfig: opts['kubeconfig'] } : {}),
          ...(namespace ? { namespace } : {}),
          ...(opts['claim'] ? { claim: opts['claim'] } : {}),
          ...(opts['provisionerNamespace'] ? { provisionerNamespace: opts['provisionerNamespace'] } : {}),
          settings: {
            ...(opts['provisionerName'] !== undefined
              ? { provisionerNames: opts['provisionerName'].split(',').filter(Boolean) }
              : {}),
            ...(opts['pvDir'] !== undefined ? { pvDir: opts['pvDir'] } : {}),
            ...(opts['tolerationPolicy'] !== undefined
              ? { tolerationPolicy: opts['tolerationPolicy'] as TolerationPolicy }
              : {}),
            ...(opts['helperPriorityClass'] !== undefined ? { helperPriorityClass: opts['helperPriorityClass'] } : {}),
            ...(opts['serviceAccount'] !== undefined ? { serviceAccount: opts['serviceAccount'] } : {}),
          },
          leaseName: opts['leaseName'] ?? '',
        });
        process.stdout.write(opts['output'] === 'json' ? formatJson(findings) : formatFindings(findings));
        process.exitCode = doctorExitCode(findings);
      } catch (err) {
        process.stderr.write(`hostpath-provisioner doctor: cannot look at the cluster: ${apiErrorMessage(err)}\n`);
        process.exitCode = EXIT_CANNOT_LOOK;
      }
    });
}
