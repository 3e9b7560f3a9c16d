import type {
  CoreV1Event,
  V1Lease,
  V1Namespace,
  V1Node,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PriorityClass,
  V1ResourceQuota,
  V1ScopedResourceSelectorRequirement,
  V1StorageClass,
} from '@kubernetes/client-node';
import { ANN_NODE_PV_DIR, ANN_SELECTED_NODE } from './constants.js';
import { decideClaim } from './claim.js';
import { claimClassName } from './class-name.js';
import { buildHelperPod } from './helper-pod.js';
import { classifyHelper } from './helper-status.js';
import { describeOwnership } from './ownership.js';
import { nodeBaseDirectory } from './paths.js';
import { parseClassParameters } from './storage-class.js';
import {
  formatTaint,
  helperTolerations,
  TOLERATION_POLICIES,
  untoleratedTaints,
  type TolerationPolicy,
} from './tolerations.js';
import { nodeSelectionMismatch } from './node-affinity.js';
import type { HelperOperation } from './names.js';
import { isOurVolume, volumeHostname } from './volume.js';

/** One finding of `doctor`: what was looked at, whether it needs attention, what is wrong and how to fix it. */
export interface Finding {
  /** What the finding is about, e.g. `claim default/data`, `node w1`, `StorageClass fast`. */
  readonly subject: string;
  /**
   * `ok`; `attention` when something stops or will stop volumes from working; `info` when doctor could not tell (not
   * allowed to read, not reachable from where it runs) — that is neither healthy nor a problem, and not counted.
   */
  readonly status: 'ok' | 'attention' | 'info';
  /** One line: what is the case. */
  readonly summary: string;
  /** One line: what to do about it (absent when nothing is to be done). */
  readonly fix?: string;
}

const DEFAULT_CLASS_ANNOTATION = 'storageclass.kubernetes.io/is-default-class';

const ok = (subject: string, summary: string): Finding => ({ subject, status: 'ok', summary });
const info = (subject: string, summary: string): Finding => ({ subject, status: 'info', summary });
const attention = (subject: string, summary: string, fix?: string): Finding => ({
  subject,
  status: 'attention',
  summary,
  ...(fix ? { fix } : {}),
});

/**
 * Checks our StorageClasses: valid parameters, binding mode, reclaim policy, and that at most one class of the whole
 * cluster is the default. Pure.
 *
 * @param classes - every StorageClass of the cluster.
 * @param provisionerNames - the names we answer to.
 * @param defaultBaseDirectory - PV_DIR (for parameter parsing).
 */
export function diagnoseClasses(
  classes: readonly V1StorageClass[],
  provisionerNames: readonly string[],
  defaultBaseDirectory: string,
): Finding[] {
  const findings: Finding[] = [];
  const ours = classes.filter((sc) => provisionerNames.includes(sc.provisioner));
  if (ours.length === 0) {
    findings.push(
      attention(
        'StorageClasses',
        `no StorageClass names the provisioner ${provisionerNames.join(' or ')}`,
        'apply manifests/base/storageclass.yaml (or the class of the chart)',
      ),
    );
  }
  for (const sc of ours) {
    const name = sc.metadata?.name ?? '';
    const parsed = parseClassParameters(sc, defaultBaseDirectory);
    const mode = sc.volumeBindingMode ?? 'Immediate';
    const reclaim = sc.reclaimPolicy ?? 'Delete';
    if (!parsed.ok) {
      findings.push(
        attention(
          `StorageClass ${name}`,
          `invalid parameters: ${parsed.problems.join('; ')}`,
          'fix the parameters (StorageClasses are immutable: delete and re-create it)',
        ),
      );
    } else {
      const ownership = describeOwnership(parsed.parameters.ownership);
      findings.push(
        ok(
          `StorageClass ${name}`,
          `${mode}, reclaim ${reclaim}, base ${parsed.parameters.baseDirectory}` +
            `${parsed.parameters.baseFromNode ? ` (or the node's ${ANN_NODE_PV_DIR})` : ''}` +
            `${parsed.parameters.sharedFileSystem ? ' (a shared file system: volumes on no one node)' : ''}` +
            `${ownership ? `, ${ownership}` : ''}`,
        ),
      );
    }
  }
  const defaults = classes.filter((sc) => sc.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true');
  if (defaults.length > 1) {
    findings.push(
      attention(
        'default StorageClass',
        `${defaults.length} classes are marked default (${defaults.map((sc) => sc.metadata?.name).join(', ')}); claims without a class get the newest`,
        `keep one: kubectl annotate storageclass <name> ${DEFAULT_CLASS_ANNOTATION}-`,
      ),
    );
  } else if (defaults.length === 0) {
    findings.push(
      attention(
        'default StorageClass',
        'no StorageClass is the default: claims that name no class stay Pending',
        `mark one: kubectl annotate storageclass microk8s-hostpath ${DEFAULT_CLASS_ANNOTATION}=true`,
      ),
    );
  }
  return findings;
}

/**
 * Checks a node for helpers: Ready, cordoned, pressure conditions, taints and the tolerations a delete helper would
 * get under `policy` (create helpers get those of the claim's pod). Pure.
 *
 * @param node - the node as read.
 * @param policy - the provisioner's toleration policy.
 */
export function diagnoseNode(node: V1Node, policy: TolerationPolicy): Finding {
  const name = node.metadata?.name ?? '';
  const subject = `node ${name}`;
  const conditions = node.status?.conditions ?? [];
  const ready = conditions.find((c) => c.type === 'Ready')?.status === 'True';
  const pressure = conditions
    .filter((c) => c.type !== 'Ready' && c.status === 'True')
    .map((c) => c.type)
    .join(', ');
  const taints = node.spec?.taints ?? [];
  const parts = [
    ready ? 'Ready' : 'NotReady',
    ...(node.spec?.unschedulable ? ['cordoned'] : []),
    ...(pressure ? [pressure] : []),
    taints.length ? `taints ${taints.map(formatTaint).join(', ')}` : 'no taints',
  ];
  const own = nodeBaseDirectory(node);
  if (own?.ok) parts.push(`own base ${own.path} (classes with pvDirFromNode)`);
  if (!ready) {
    return attention(subject, parts.join('; '), 'helpers cannot run here until the kubelet reports Ready');
  }
  if (own && !own.ok) {
    return attention(
      subject,
      `${parts.join('; ')}; ${own.reason}: claims of classes with pvDirFromNode are refused here`,
      `kubectl annotate --overwrite node ${name} ${ANN_NODE_PV_DIR}=<absolute clean path>`,
    );
  }
  if (policy === 'none' && untoleratedTaints(taints, []).length > 0) {
    return attention(
      subject,
      `${parts.join('; ')}; toleration policy none: no helper can run here`,
      'use --toleration-policy node-taints (the default)',
    );
  }
  const tolerated = helperTolerations(policy, taints).length;
  return ok(subject, `${parts.join('; ')}; a delete helper would carry ${tolerated} toleration(s)`);
}

/** What {@link diagnoseClaim} reads about one claim. */
export interface ClaimFacts {
  readonly claim: V1PersistentVolumeClaim;
  /** Its StorageClass, when it exists. */
  readonly storageClass: V1StorageClass | undefined;
  /** Pods of its namespace that mount it. */
  readonly consumers: readonly V1Pod[];
  /** Every node, by name. */
  readonly nodes: ReadonlyMap<string, V1Node>;
  /** Our create helper of the claim, when one exists. */
  readonly helper: V1Pod | undefined;
  /** Events on the claim, any order. */
  readonly events: readonly CoreV1Event[];
  /** The provisioner names we answer to. */
  readonly provisionerNames: readonly string[];
  /** PV_DIR. */
  readonly defaultBaseDirectory: string;
}

/**
 * Says why a claim of ours is not Bound, with the fix, from what the API server shows. The rules follow the order in
 * which provisioning can get stuck: the class, refused input, no consumer pod (WaitForFirstConsumer), a pod that
 * bypasses the scheduler (`spec.nodeName`), a pod the scheduler cannot place, a selected node that is gone or whose
 * taints the pod does not tolerate, the helper's state, the latest ProvisioningFailed event. Pure.
 *
 * @returns one finding; undefined for claims that are not ours (another provisioner's class).
 */
export function diagnoseClaim(facts: ClaimFacts): Finding | undefined {
  const { claim, storageClass, consumers, nodes, helper, events } = facts;
  const subject = `claim ${claim.metadata?.namespace ?? ''}/${claim.metadata?.name ?? ''}`;
  if (claim.status?.phase === 'Bound') return ok(subject, `Bound to ${claim.spec?.volumeName ?? ''}`);
  const className = claimClassName(claim);
  if (!className) {
    return attention(subject, 'names no StorageClass and none was defaulted', 'set spec.storageClassName');
  }
  if (!storageClass) {
    return attention(
      subject,
      `names StorageClass ${className}, which does not exist`,
      `create it, or re-create the claim with an existing class (e.g. microk8s-hostpath)`,
    );
  }
  if (!facts.provisionerNames.includes(storageClass.provisioner)) return undefined;
  const decision = decideClaim(claim, storageClass, facts.provisionerNames, facts.defaultBaseDirectory);
  if (decision.action === 'refuse') return attention(subject, decision.message, 're-create the claim without it');
  const waitForConsumer = storageClass.volumeBindingMode === 'WaitForFirstConsumer';
  const selected = claim.metadata?.annotations?.[ANN_SELECTED_NODE];
  const pinned = consumers.find((p) => p.spec?.nodeName && !selected);
  if (waitForConsumer && !selected) {
    if (consumers.length === 0) {
      return attention(
        subject,
        `WaitForFirstConsumer: no pod uses this claim yet, so no node is chosen`,
        'create the pod that mounts it (or use a class with volumeBindingMode Immediate)',
      );
    }
    if (pinned) {
      return attention(
        subject,
        `pod ${pinned.metadata?.name} sets spec.nodeName, which bypasses the scheduler: no node is ever selected for the claim`,
        'use a nodeSelector on kubernetes.io/hostname instead of spec.nodeName',
      );
    }
    const stuck = consumers
      .map((p) => ({ pod: p, c: p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False') }))
      .find((x) => x.c);
    if (stuck) {
      return attention(
        subject,
        `pod ${stuck.pod.metadata?.name} cannot be scheduled: ${stuck.c?.message ?? stuck.c?.reason ?? 'Unschedulable'}`,
        'fix what the scheduler names (resources, node selector, taints); the claim follows the pod',
      );
    }
    return ok(subject, 'waiting for the scheduler to choose a node for its pod');
  }
  if (selected !== undefined) {
    const node = nodes.get(selected);
    if (!node) {
      return attention(
        subject,
        `selected node ${selected} does not exist`,
        'the provisioner hands the claim back to the scheduler; if it stays, remove the annotation',
      );
    }
    const waiting = consumers.filter((p) => !p.spec?.nodeName || p.spec.nodeName === selected);
    if (waiting.length === 0) {
      return attention(
        subject,
        `selected node ${selected} but no Pending pod mounts the claim: the annotation alone is not trusted`,
        'create the pod, or remove the annotation volume.kubernetes.io/selected-node',
      );
    }
    const placeable = waiting.filter((p) => nodeSelectionMismatch(p, node) === undefined);
    if (placeable.length === 0) {
      const pod = waiting[0];
      return attention(
        subject,
        `pod ${pod?.metadata?.name} has ${nodeSelectionMismatch(pod ?? {}, node) ?? ''} that selected node ${selected} does not match`,
        "fix the pod's nodeSelector or node affinity, or remove the annotation volume.kubernetes.io/selected-node",
      );
    }
    const taints = node.spec?.taints ?? [];
    const fits = placeable.some((p) => untoleratedTaints(taints, p.spec?.tolerations ?? []).length === 0);
    if (!fits) {
      const pod = placeable[0];
      const missing = untoleratedTaints(taints, pod?.spec?.tolerations ?? []);
      return attention(
        subject,
        `node ${selected} has taint ${missing.map(formatTaint).join(', ')} that pod ${pod?.metadata?.name} does not tolerate`,
        `add the toleration to the pod, or let the scheduler choose another node`,
      );
    }
  }
  if (helper) {
    const state = classifyHelper(helper);
    if (state.state === 'failed' || state.state === 'unscheduled') {
      return attention(subject, `helper pod ${helper.metadata?.name}: ${state.message}`, helperFix(state.message));
    }
  }
  const failed = [...events]
    .filter((e) => e.reason === 'ProvisioningFailed')
    .sort((a, b) => eventTime(b) - eventTime(a))[0];
  if (failed)
    return attention(subject, `last ProvisioningFailed: ${failed.message ?? ''}`, helperFix(failed.message ?? ''));
  return ok(subject, helper ? `provisioning: helper pod ${helper.metadata?.name} in progress` : 'provisioning');
}

/** The fix for a helper failure message, from what it names. */
function helperFix(message: string): string {
  if (/cannot be pulled|ErrImagePull|ImagePullBackOff/.test(message)) {
    return 'make the helper image pullable on that node, or set BUSYBOX_IMAGE to one it can pull';
  }
  if (/refused the helper pod|PodSecurity|forbidden/i.test(message)) {
    return 'allow the helper in its namespace (label it pod-security.kubernetes.io/enforce=privileged) or adjust the admission policy';
  }
  if (/taint/.test(message)) return "check the node's taints against the pod's tolerations";
  return 'see the helper pod events: kubectl -n <provisioner namespace> describe pod <helper>';
}

function eventTime(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp;
  return t ? new Date(t).getTime() : 0;
}

/**
 * Says why a Released PV of ours is not cleaned up yet: Retain, its node gone, or failures named by its latest
 * VolumeFailedDelete event. Pure.
 *
 * @param pv - a PV.
 * @param nodes - every node, by `kubernetes.io/hostname` label value and by name.
 * @param events - events on the PV.
 * @param provisionerNames - the names we answer to.
 * @param nowMs - the current time (ms since the epoch), for the age.
 * @returns undefined for PVs that are not ours or not Released.
 */
export function diagnoseReleasedVolume(
  pv: V1PersistentVolume,
  nodes: ReadonlyMap<string, V1Node>,
  events: readonly CoreV1Event[],
  provisionerNames: readonly string[],
  nowMs: number,
): Finding | undefined {
  if (pv.status?.phase !== 'Released' || !isOurVolume(pv, provisionerNames)) return undefined;
  const subject = `volume ${pv.metadata?.name ?? ''}`;
  const created = pv.metadata?.creationTimestamp ? new Date(pv.metadata.creationTimestamp).getTime() : nowMs;
  const age = `${Math.round((nowMs - created) / 60_000)} min old`;
  if (pv.spec?.persistentVolumeReclaimPolicy !== 'Delete') {
    return ok(subject, `Released, reclaim Retain (${age}): its data is kept until you remove it`);
  }
  const hostname = volumeHostname(pv);
  if (hostname && !nodes.has(hostname)) {
    return attention(
      subject,
      `Released, but node ${hostname} no longer exists (${age}): the data cannot be removed`,
      'bring the node back, or delete the PV object (the data stays on the node)',
    );
  }
  const failed = [...events]
    .filter((e) => e.reason === 'VolumeFailedDelete')
    .sort((a, b) => eventTime(b) - eventTime(a))[0];
  if (failed) return attention(subject, `Released (${age}); last VolumeFailedDelete: ${failed.message ?? ''}`);
  return ok(subject, `Released (${age}); being cleaned up`);
}

/**
 * Checks the Lease of leader election: who holds it and whether it was renewed within its duration. Pure.
 *
 * @param lease - the Lease, or undefined when it does not exist.
 * @param nowMs - the current time, ms since the epoch.
 * @param searched - the namespaces it was looked for in (for the message).
 */
export function diagnoseLease(lease: V1Lease | undefined, nowMs: number, searched: readonly string[] = []): Finding {
  const subject = 'provisioner';
  if (!lease) {
    const where = searched.length ? ` in namespace ${searched.join(' or ')}` : '';
    return attention(
      subject,
      `no leader-election Lease${where}: the provisioner is not running there`,
      'install it (README: Install), or name its namespace with --provisioner-namespace',
    );
  }
  const holder = lease.spec?.holderIdentity ?? '';
  const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
  const ageSeconds = Math.round((nowMs - renewed) / 1000);
  const duration = lease.spec?.leaseDurationSeconds ?? 15;
  if (!holder || ageSeconds > duration) {
    return attention(
      subject,
      `the Lease ${holder ? `held by ${holder} ` : ''}was last renewed ${ageSeconds}s ago (duration ${duration}s): no replica leads`,
      'check the provisioner pods: kubectl -n <namespace> logs deploy/hostpath-provisioner',
    );
  }
  return ok(subject, `leader ${holder}, Lease renewed ${ageSeconds}s ago`);
}

/**
 * Checks that the namespace helpers run in admits them: its Pod Security `enforce` label must be `privileged` (or
 * absent where the cluster default is privileged), since helpers use a hostPath volume and run as root. Pure.
 *
 * @param namespace - the provisioner's namespace object, or undefined when it does not exist.
 */
export function diagnoseHelperNamespace(namespace: V1Namespace | undefined): Finding {
  const name = namespace?.metadata?.name ?? '';
  const subject = `namespace ${name || '(provisioner)'}`;
  if (!namespace) return attention(subject, 'the provisioner namespace does not exist', 'install the provisioner');
  const level = namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce'];
  if (level === undefined || level === 'privileged') {
    return ok(
      subject,
      `Pod Security enforce ${level ?? 'not set (the cluster default applies)'}: helpers are admitted${level ? '' : ' unless that default is stricter'}`,
    );
  }
  return attention(
    subject,
    `Pod Security enforces ${level}: every helper pod (hostPath volume, root) is refused, so no claim can bind`,
    `kubectl label namespace ${name} pod-security.kubernetes.io/enforce=privileged --overwrite`,
  );
}

/**
 * Checks the provisioner's own pods (label `app.kubernetes.io/name=hostpath-provisioner`): how many are Ready, and
 * which image (version) they run. No pods is fine when it runs outside the cluster and the Lease is fresh. Pure.
 *
 * @param pods - pods of the provisioner namespace with that label.
 */
export function diagnoseProvisionerPods(pods: readonly V1Pod[]): Finding | undefined {
  if (pods.length === 0) return undefined;
  const ready = pods.filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  const images = [...new Set(pods.flatMap((p) => p.spec?.containers.map((c) => c.image ?? '') ?? []))].join(', ');
  const summary = `${ready.length}/${pods.length} pod(s) Ready, image ${images}`;
  return ready.length > 0
    ? ok('provisioner pods', summary)
    : attention(
        'provisioner pods',
        summary,
        'kubectl -n <namespace> describe pod -l app.kubernetes.io/name=hostpath-provisioner',
      );
}

/** Exit code of `doctor`: 0 when no finding needs attention (`ok` and `info` ones), 1 when one does. */
export function doctorExitCode(findings: readonly Finding[]): 0 | 1 {
  return findings.some((f) => f.status === 'attention') ? 1 : 0;
}

/** Where a provisioner pod answers its readiness check: from {@link readinessTarget}. */
export interface ReadinessTarget {
  /** The pod's name. */
  readonly pod: string;
  /** The pod's namespace. */
  readonly namespace: string;
  /** `http://<pod IP>:<port><path>`; an IPv6 pod IP in brackets. */
  readonly url: string;
}

/** Port and path of the readiness check when the pod declares none: the Deployment's `metrics` port, `/readyz`. */
const DEFAULT_READINESS = { port: 'metrics', path: '/readyz' } as const;

/**
 * The URL at which a provisioner pod answers its readiness check, as the kubelet probes it: the first container's
 * `readinessProbe.httpGet` (a named port resolved through the container's ports), else the port named `metrics` and
 * `/readyz` (manifests/base/deployment.yaml; served by src/runtime/http.ts). Pure.
 *
 * @param pod - a provisioner pod as read.
 * @returns undefined when the pod has no IP yet, or no such port (nothing to probe).
 */
export function readinessTarget(pod: V1Pod): ReadinessTarget | undefined {
  const ip = pod.status?.podIP;
  if (!ip) return undefined;
  const container = pod.spec?.containers.find((c) => c.readinessProbe?.httpGet) ?? pod.spec?.containers[0];
  const probe = container?.readinessProbe?.httpGet;
  const portRef: string | number = probe?.port ?? DEFAULT_READINESS.port;
  const path = probe?.path ?? DEFAULT_READINESS.path;
  const port =
    typeof portRef === 'number' || /^\d+$/.test(portRef)
      ? Number(portRef)
      : container?.ports?.find((p) => p.name === portRef)?.containerPort;
  if (port === undefined || probe?.scheme === 'HTTPS') return undefined;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return {
    pod: pod.metadata?.name ?? '',
    namespace: pod.metadata?.namespace ?? '',
    url: `http://${host}:${port}${path.startsWith('/') ? path : `/${path}`}`,
  };
}

/** What one readiness request gave: an HTTP answer, or the error that stopped it (timeout, refused, no route). */
export type ReadinessOutcome =
  | {
      readonly kind: 'answer';
      readonly statusCode: number;
      readonly body: string;
      /** The version its `/metrics` reports ({@link versionFromMetrics}), when it could be read. */
      readonly version?: string;
    }
  | { readonly kind: 'error'; readonly message: string };

/**
 * What a provisioner pod's readiness answer means. 200–399 is ready (the kubelet's rule), with the role the body names
 * (`ok: leader`, `ok: standby`); any other status is not ready, with the reason the body gives. An error is `info`, not
 * attention: from outside the cluster a pod IP is often not routable, so no answer says nothing about the pod. Pure.
 *
 * @param target - what was asked, from {@link readinessTarget}.
 * @param outcome - what came back.
 */
export function diagnoseReadiness(target: ReadinessTarget, outcome: ReadinessOutcome): Finding {
  const subject = `provisioner pod ${target.pod}`;
  if (outcome.kind === 'error') {
    return info(subject, `${target.url} unreachable from here (${outcome.message}); readiness not checked`);
  }
  const body = outcome.body.split('\n')[0]?.trim().slice(0, 200) ?? '';
  const said = body ? `: ${body}` : '';
  if (outcome.statusCode >= 200 && outcome.statusCode < 400) {
    const version = outcome.version ? `; version ${outcome.version}` : '';
    return ok(subject, `${target.url} answers ${outcome.statusCode}${said}${version}`);
  }
  return attention(
    subject,
    `${target.url} answers ${outcome.statusCode}${said}: not ready`,
    `kubectl -n ${target.namespace || '<namespace>'} logs ${target.pod}`,
  );
}

/**
 * What `doctor --claim NAME` says of the claim asked for when nothing else is said of it: that it does not exist
 * (attention: a mistyped name must not look like a healthy claim), or that it is Bound (ok). A claim that exists
 * and is not Bound gets {@link diagnoseClaim}'s finding instead: undefined here. Pure.
 *
 * @param namespace - the namespace doctor looked in.
 * @param name - the claim name asked for.
 * @param claims - the claims of that namespace.
 */
export function diagnoseNamedClaim(
  namespace: string,
  name: string,
  claims: readonly V1PersistentVolumeClaim[],
): Finding | undefined {
  const subject = `claim ${namespace}/${name}`;
  const claim = claims.find((c) => c.metadata?.name === name);
  if (!claim) {
    return attention(subject, 'not found', `check the name and namespace: kubectl -n ${namespace} get pvc`);
  }
  if (claim.status?.phase === 'Bound') return ok(subject, `Bound to ${claim.spec?.volumeName ?? '?'}`);
  return undefined;
}

/** The provisioner settings doctor's checks depend on. */
export interface ProvisionerSettings {
  readonly provisionerNames: readonly string[];
  readonly pvDir: string;
  readonly tolerationPolicy: TolerationPolicy;
  /** Of delete helpers; '' for none. */
  readonly helperPriorityClass: string;
  readonly serviceAccount: string;
}

/** Where each setting is given to `run`: its flag and environment variable (src/runtime/config.ts). */
export const SETTING_SOURCES: {
  readonly [K in Exclude<keyof ProvisionerSettings, 'serviceAccount'>]: readonly [string, string];
} = {
  provisionerNames: ['--provisioner-names', 'PROVISIONER_NAMES'],
  pvDir: ['--pv-dir', 'PV_DIR'],
  tolerationPolicy: ['--toleration-policy', 'TOLERATION_POLICY'],
  helperPriorityClass: ['--helper-priority-class', 'HELPER_PRIORITY_CLASS'],
};

/**
 * A setting as a provisioner pod's spec gives it to `run`: the last `--flag value` or `--flag=value` in the
 * container's command and args (flags win over the environment, as in `run`), else the literal value of the
 * environment variable (a `valueFrom` cannot be resolved from the spec: undefined). The container is the one named
 * `hostpath-provisioner`, else the first. Pure.
 */
export function podSetting(pod: V1Pod, flag: string, env: string): string | undefined {
  const containers = pod.spec?.containers ?? [];
  const c = containers.find((x) => x.name === 'hostpath-provisioner') ?? containers[0];
  if (!c) return undefined;
  const argv = [...(c.command ?? []), ...(c.args ?? [])];
  let fromFlag: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === flag && i + 1 < argv.length) fromFlag = argv[++i];
    else if (a.startsWith(`${flag}=`)) fromFlag = a.slice(flag.length + 1);
  }
  if (fromFlag !== undefined) return fromFlag;
  const e = (c.env ?? []).find((x) => x.name === env);
  return e && e.valueFrom === undefined ? (e.value ?? '') : undefined;
}

/**
 * The settings doctor checks with: what the user told doctor, else what the provisioner's pods run with (the first
 * Running pod, else the first pod; its ServiceAccount from `spec.serviceAccountName`), else `run`'s defaults. A pod's
 * invalid toleration policy or an empty name list falls back to the default (`run` would refuse to start). Pure.
 *
 * @param told - settings given to doctor on its command line.
 * @param pods - the provisioner's pods.
 * @param defaults - `run`'s defaults.
 */
export function provisionerSettings(
  told: Partial<ProvisionerSettings>,
  pods: readonly V1Pod[],
  defaults: ProvisionerSettings,
): ProvisionerSettings {
  const pod = pods.find((p) => p.status?.phase === 'Running') ?? pods[0];
  const fromPod = (key: keyof typeof SETTING_SOURCES): string | undefined =>
    pod ? podSetting(pod, ...SETTING_SOURCES[key]) : undefined;
  const names = fromPod('provisionerNames')
    ?.split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  const policy = fromPod('tolerationPolicy');
  return {
    provisionerNames: told.provisionerNames ?? (names?.length ? names : defaults.provisionerNames),
    pvDir: told.pvDir ?? (fromPod('pvDir') || defaults.pvDir),
    tolerationPolicy:
      told.tolerationPolicy ??
      ((TOLERATION_POLICIES as readonly string[]).includes(policy ?? '')
        ? (policy as TolerationPolicy)
        : defaults.tolerationPolicy),
    helperPriorityClass: told.helperPriorityClass ?? fromPod('helperPriorityClass') ?? defaults.helperPriorityClass,
    serviceAccount: told.serviceAccount ?? (pod?.spec?.serviceAccountName || defaults.serviceAccount),
  };
}

/**
 * The provisioner's version from its Prometheus text exposition: the `version` label of
 * `hostpath_provisioner_build_info` (the usual `<name>_build_info` convention). Pure.
 *
 * @param text - a `/metrics` body (text format 0.0.4).
 * @returns the version, or undefined when the series is missing or has no version (at most 64 characters are kept).
 */
export function versionFromMetrics(text: string): string | undefined {
  const m = /^hostpath_provisioner_build_info\{[^}\n]*\bversion="([^"\\\n]*)"/m.exec(text);
  return m?.[1] ? m[1].slice(0, 64) : undefined;
}

/** A list doctor may not have been allowed to read: its items, or why it could not read them (e.g. a 403). */
export type Readable<T> = { readonly items: readonly T[] } | { readonly unreadable: string };

/**
 * Checks that the PriorityClass delete helpers are created with (`--helper-priority-class`) exists: the API server's
 * Priority admission refuses a pod naming a class that does not, so Released volumes would never be cleaned up.
 * Create and list helpers carry no priority class. Pure.
 *
 * @param name - the provisioner's helper priority class; '' for none.
 * @param classes - every PriorityClass of the cluster, or why they could not be read.
 */
export function diagnoseHelperPriorityClass(name: string, classes: Readable<V1PriorityClass>): Finding {
  if (!name) return ok('helper priority class', 'none: delete helpers run at the default priority');
  const subject = `PriorityClass ${name}`;
  if ('unreadable' in classes) return info(subject, `could not check that it exists: ${classes.unreadable}`);
  const found = classes.items.find((pc) => pc.metadata?.name === name);
  if (!found) {
    return attention(
      subject,
      'does not exist: the API server refuses every delete helper, so Released volumes are not cleaned up',
      `create it, or run the provisioner with --helper-priority-class naming an existing class ('' for none); if it runs with another class, tell doctor with --helper-priority-class`,
    );
  }
  return ok(subject, `exists (value ${found.value}): delete helpers are admitted with it`);
}

const DECIMAL_SUFFIX: Readonly<Record<string, number>> = { '': 1, k: 1e3, M: 1e6, G: 1e9 };

/** A pod count from a quota quantity (`10`, `1k`); NaN when it is not one. */
function podCount(quantity: string | undefined): number {
  const m = /^(\d+)(k|M|G)?$/.exec(quantity ?? '');
  if (!m) return Number.NaN;
  return Number(m[1]) * (DECIMAL_SUFFIX[m[2] ?? ''] ?? 1);
}

/**
 * Whether a ResourceQuota counts a pod, by its `scopes` and `scopeSelector` (all must match), as the quota admission
 * evaluates them (kubernetes pkg/quota/v1/evaluator/core/pods.go): Terminating = `activeDeadlineSeconds` set,
 * BestEffort = no container requests or limits cpu or memory, PriorityClass by the pod's `priorityClassName`,
 * CrossNamespacePodAffinity never for a pod without affinity terms. An unknown scope counts as matching. Pure.
 *
 * @param quota - a ResourceQuota as read.
 * @param pod - the pod that would be created.
 */
export function quotaCountsPod(quota: V1ResourceQuota, pod: V1Pod): boolean {
  const spec = pod.spec;
  const bestEffort = !(spec?.containers ?? []).some((c) =>
    ['cpu', 'memory'].some((r) => c.resources?.requests?.[r] !== undefined || c.resources?.limits?.[r] !== undefined),
  );
  const terminating = spec?.activeDeadlineSeconds !== undefined && spec.activeDeadlineSeconds >= 0;
  const priorityClass = spec?.priorityClassName ?? '';
  const matches = (req: V1ScopedResourceSelectorRequirement): boolean => {
    switch (req.scopeName) {
      case 'Terminating':
        return terminating;
      case 'NotTerminating':
        return !terminating;
      case 'BestEffort':
        return bestEffort;
      case 'NotBestEffort':
        return !bestEffort;
      case 'CrossNamespacePodAffinity':
        return false;
      case 'PriorityClass': {
        const values = req.values ?? [];
        if (req.operator === 'Exists') return priorityClass !== '';
        if (req.operator === 'DoesNotExist') return priorityClass === '';
        if (req.operator === 'In') return values.includes(priorityClass);
        if (req.operator === 'NotIn') return !values.includes(priorityClass);
        return true;
      }
      default:
        return true;
    }
  };
  const requirements: V1ScopedResourceSelectorRequirement[] = [
    ...(quota.spec?.scopes ?? []).map((scopeName) => ({ scopeName, operator: 'Exists' })),
    ...(quota.spec?.scopeSelector?.matchExpressions ?? []),
  ];
  return requirements.every(matches);
}

/**
 * Checks the ResourceQuotas of the helper namespace for a full pod count (`pods` or `count/pods`, used ≥ hard): the
 * quota admission then refuses the helpers that quota counts (create and list helpers carry no priority class, delete
 * helpers `priorityClassName`; scopes are evaluated on helper pods as {@link buildHelperPod} makes them). Pure.
 *
 * @param namespace - the helper (provisioner) namespace.
 * @param quotas - its ResourceQuotas, or why they could not be read.
 * @param priorityClassName - the delete helpers' priority class; '' for none.
 * @returns one attention finding per full quota, else one ok finding (info when unreadable).
 */
export function diagnoseHelperQuotas(
  namespace: string,
  quotas: Readable<V1ResourceQuota>,
  priorityClassName: string,
): Finding[] {
  const subject = `ResourceQuotas in ${namespace}`;
  if ('unreadable' in quotas) return [info(subject, `could not check whether helpers fit: ${quotas.unreadable}`)];
  const helper = (operation: HelperOperation): V1Pod =>
    buildHelperPod({
      operation,
      volumeName: 'pvc-x',
      namespace,
      nodeName: 'node',
      baseDirectory: '/base',
      directoryName: 'dir',
      image: 'image',
      tolerations: [],
      priorityClassName: operation === 'delete' ? priorityClassName : '',
      activeDeadlineSeconds: 120,
    });
  const helpers = { create: helper('create'), delete: helper('delete') };
  const findings: Finding[] = [];
  let limiting = 0;
  for (const quota of quotas.items) {
    const name = quota.metadata?.name ?? '';
    const kinds = (['create', 'delete'] as const).filter((k) => quotaCountsPod(quota, helpers[k]));
    const resource = ['pods', 'count/pods'].find((r) => quota.spec?.hard?.[r] ?? quota.status?.hard?.[r]);
    if (!resource || kinds.length === 0) continue;
    limiting++;
    const hard = podCount(quota.status?.hard?.[resource] ?? quota.spec?.hard?.[resource]);
    const used = podCount(quota.status?.used?.[resource] ?? '0');
    if (!(used >= hard)) continue;
    const which = kinds.length === 2 ? 'helpers' : `${kinds[0]} helpers`;
    findings.push(
      attention(
        `ResourceQuota ${namespace}/${name}`,
        `${which} cannot be created: quota ${name} is full (${resource} ${used}/${hard} used)`,
        `raise its ${resource} (kubectl -n ${namespace} edit resourcequota ${name}) or remove pods it counts`,
      ),
    );
  }
  if (findings.length > 0) return findings;
  return [
    ok(
      subject,
      limiting === 0
        ? 'none limits the number of helper pods'
        : `${limiting} limit(s) the number of helper pods, none is full`,
    ),
  ];
}
