import { hostname } from 'node:os';
import { posix } from 'node:path';
import { Command, Option } from 'commander';
import { parseFamiliarName } from '@swimlane/docker-reference';
import { z } from 'zod';
import { DEFAULT_HELPER_CAPABILITIES, DEFAULT_HELPER_IMAGE, LINUX_CAPABILITIES } from '../domain/helper-pod.js';

/**
 * Runtime configuration: every setting has a command-line flag and an environment variable (the original addon's
 * NAMESPACE, NODE_NAME, PV_DIR, BUSYBOX_IMAGE and PV_RECLAIM_POLICY keep their meaning). Parsed and validated once at
 * start by {@link loadConfig}, then passed down as a typed {@link Config}; nothing else reads `process.env`.
 */

const positiveInt = z.coerce.number().int('must be an integer').positive('must be > 0');
const positiveNumber = z.coerce.number().positive('must be > 0').finite('must be finite');

const bool = z.preprocess(
  (v) => {
    if (typeof v === 'boolean') return v;
    if (typeof v === 'string') {
      const s = v.trim().toLowerCase();
      if (s === 'true' || s === '1') return true;
      if (s === 'false' || s === '0') return false;
    }
    return v;
  },
  z.boolean({ error: 'must be one of true, false, 1, 0' }),
);

const commaList = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? [
          ...new Set(
            v
              .split(',')
              .map((s) => s.trim())
              .filter((s) => s !== ''),
          ),
        ]
      : v,
  z
    .array(
      z
        .string()
        .regex(
          /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?(\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/,
          'each name must look like "example.com/name"',
        ),
    )
    .min(1, 'must name at least one provisioner'),
);

const cleanAbsolutePath = z
  .string()
  .refine((p) => p.startsWith('/'), 'must be an absolute path')
  .refine((p) => p === '/' || (posix.normalize(p) === p && !p.endsWith('/')), {
    message: 'must be a clean path (no "//", ".", ".." or trailing "/")',
  })
  .refine((p) => p !== '/', 'must not be "/"');

/**
 * An image reference as the container runtimes parse it (distribution/reference grammar, through
 * `@swimlane/docker-reference`): `[registry/]repository[:tag][@digest]`, lowercase repository, and a digest of the
 * right length for its algorithm (`sha256:` + 64 hex). A short name such as `busybox:1.37.0` is accepted (containerd
 * completes it to docker.io) but CRI-O refuses short names by default, hence a fully qualified default.
 */
const imageReference = z.string().superRefine((ref, ctx) => {
  try {
    parseFamiliarName(ref);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    ctx.addIssue({
      code: 'custom',
      message: `must be an image reference such as ${DEFAULT_HELPER_IMAGE} (optionally @sha256:<64 hex>): ${why}`,
    });
  }
});

/** Comma-separated Linux capability names (`CAP_` prefix optional, any case), deduplicated; empty = none. */
const capabilityList = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? [
          ...new Set(
            v
              .split(',')
              .map((s) => s.trim().toUpperCase().replace(/^CAP_/, ''))
              .filter((s) => s !== ''),
          ),
        ]
      : v,
  z.array(
    z.string().refine((c) => (LINUX_CAPABILITIES as readonly string[]).includes(c), {
      message: 'each entry must be a Linux capability name such as DAC_OVERRIDE',
    }),
  ),
);

const address = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[^:[\]]*):\d{1,5}$/, 'must be "[host]:port", e.g. ":9090" or "127.0.0.1:0"')
  .refine((a) => !/:\d+$/.test(a) || Number(a.slice(a.lastIndexOf(':') + 1)) <= 65535, 'port must be ≤ 65535');

/** Zod schema of the configuration; input values may be strings (from flags or environment variables). */
export const configSchema = z
  .object({
    kubeconfig: z.string().min(1).optional(),
    namespace: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a valid namespace name (RFC 1123 label)'),
    nodeName: z.string().min(1, 'must not be empty').max(253, 'must be at most 253 characters'),
    pvDir: cleanAbsolutePath,
    busyboxImage: imageReference,
    helperCapabilities: capabilityList,
    pvReclaimPolicy: z.enum(['Retain', 'Delete']).optional(),
    provisionerNames: commaList,
    tolerationPolicy: z.enum(['node-taints', 'all', 'none']),
    helperPriorityClassName: z.string(),
    helperTimeoutSeconds: positiveInt,
    maxHelpersPerNode: positiveInt.max(1000, 'must be ≤ 1000'),
    orphanReportMinutes: z.coerce.number().finite('must be finite').min(0, 'must be ≥ 0'),
    concurrency: positiveInt.max(1000, 'must be ≤ 1000'),
    nodeGonePolicy: z.enum(['keep', 'delete']),
    metricsAddress: address,
    leaderElect: bool,
    leaseName: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'must be a valid object name (RFC 1123 subdomain)'),
    leaseDurationSeconds: positiveInt,
    renewDeadlineSeconds: positiveInt,
    retryPeriodSeconds: positiveInt,
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    logFormat: z.enum(['json', 'pretty']),
    kubeApiQps: positiveNumber,
    kubeApiBurst: positiveInt,
    shutdownGraceSeconds: positiveInt,
    retryBaseDelaySeconds: positiveNumber,
    retryMaxDelaySeconds: positiveNumber,
  })
  .superRefine((c, ctx) => {
    // client-go's leaderelection.NewLeaderElector rules: leaseDuration > renewDeadline > 1.2 * retryPeriod.
    if (c.leaseDurationSeconds <= c.renewDeadlineSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['leaseDurationSeconds'],
        message: 'must be greater than the renew deadline',
      });
    }
    if (c.renewDeadlineSeconds <= 1.2 * c.retryPeriodSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['renewDeadlineSeconds'],
        message: 'must be greater than 1.2 × the retry period',
      });
    }
    if (c.retryMaxDelaySeconds < c.retryBaseDelaySeconds) {
      ctx.addIssue({ code: 'custom', path: ['retryMaxDelaySeconds'], message: 'must be ≥ the retry base delay' });
    }
  });

/** The validated configuration, every duration in seconds. */
export type Config = z.output<typeof configSchema>;

/** One configuration field: its flag, environment variable, help text and default (undefined = unset). */
interface FieldSpec {
  readonly flag: string;
  readonly env: string;
  readonly help: string;
  readonly default: () => unknown;
  /** Commander value placeholder; `[bool]` makes the value optional (bare flag = true). */
  readonly arg?: string;
}

/** Every field of {@link Config} with its flag and environment variable; drives both parsing and `--help`. */
export const configFields: { readonly [K in keyof Config]-?: FieldSpec } = {
  kubeconfig: {
    flag: '--kubeconfig',
    env: 'KUBECONFIG',
    help: 'kubeconfig file; unset: in-cluster config, else the default loading rules',
    default: () => undefined,
  },
  namespace: {
    flag: '--namespace',
    env: 'NAMESPACE',
    help: 'namespace of the provisioner: helper pods and the Lease live here',
    default: () => 'kube-system',
  },
  nodeName: {
    flag: '--node-name',
    env: 'NODE_NAME',
    help: 'node the provisioner runs on (hostPathProvisionerIdentity; preferred node for Immediate claims)',
    default: () => hostname(),
  },
  pvDir: {
    flag: '--pv-dir',
    env: 'PV_DIR',
    help: 'base directory of volumes on every node (absolute, clean); a class parameter pvDir overrides it',
    default: () => '/var/snap/microk8s/common/default-storage',
  },
  busyboxImage: {
    flag: '--busybox-image',
    env: 'BUSYBOX_IMAGE',
    help: 'image of the helper pods; fully qualified (CRI-O refuses short names), may be pinned with @sha256:<digest>',
    default: () => DEFAULT_HELPER_IMAGE,
  },
  helperCapabilities: {
    flag: '--helper-capabilities',
    env: 'HELPER_CAPABILITIES',
    help: 'Linux capabilities the root helper keeps (all others dropped), comma-separated; empty for none',
    default: () => [...DEFAULT_HELPER_CAPABILITIES],
  },
  pvReclaimPolicy: {
    flag: '--pv-reclaim-policy',
    env: 'PV_RECLAIM_POLICY',
    help: 'Retain turns classes with Delete into Retain (never the reverse); Retain | Delete',
    default: () => undefined,
  },
  provisionerNames: {
    flag: '--provisioner-names',
    env: 'PROVISIONER_NAMES',
    help: 'comma-separated provisioner names served',
    default: () => ['microk8s.io/hostpath'],
  },
  tolerationPolicy: {
    flag: '--toleration-policy',
    env: 'TOLERATION_POLICY',
    help: "helper tolerations: node-taints (the target node's taints) | all (tolerate everything) | none",
    default: () => 'node-taints',
  },
  helperPriorityClassName: {
    flag: '--helper-priority-class',
    env: 'HELPER_PRIORITY_CLASS',
    help: 'priorityClassName of delete helper pods (they free disk under pressure); create and list helpers run at normal priority; empty for none',
    default: () => 'system-node-critical',
  },
  helperTimeoutSeconds: {
    flag: '--helper-timeout',
    env: 'HELPER_TIMEOUT',
    help: 'seconds a helper pod may stay Pending or run before the attempt fails',
    default: () => 120,
  },
  maxHelpersPerNode: {
    flag: '--max-helpers-per-node',
    env: 'MAX_HELPERS_PER_NODE',
    help: 'helper pods in progress on one node at most; more wait for a slot (a node where helpers hang cannot take them all)',
    default: () => 10,
  },
  orphanReportMinutes: {
    flag: '--orphan-report-interval',
    env: 'ORPHAN_REPORT_INTERVAL',
    help: 'minutes between reports of directories no PV points to (listed by a helper per node; never removed; the first after ¼ to 1 interval); fractions allowed; 0 = off',
    default: () => 10,
  },
  concurrency: {
    flag: '--workers',
    env: 'WORKERS',
    help: 'reconciles running at once per work queue',
    default: () => 16,
  },
  nodeGonePolicy: {
    flag: '--node-gone-policy',
    env: 'NODE_GONE_POLICY',
    help: 'Released volume whose node no longer exists: keep (re-check slowly) | delete (delete the PV object)',
    default: () => 'keep',
  },
  metricsAddress: {
    flag: '--metrics-address',
    env: 'METRICS_ADDRESS',
    help: 'listen address of /metrics, /healthz and /readyz ([host]:port)',
    default: () => ':9090',
  },
  leaderElect: {
    flag: '--leader-elect',
    env: 'LEADER_ELECT',
    help: 'take part in leader election on a Lease (true | false | 1 | 0)',
    default: () => true,
    arg: '[bool]',
  },
  leaseName: {
    flag: '--lease-name',
    env: 'LEASE_NAME',
    help: 'name of the leader-election Lease (the addon uses microk8s.io-hostpath)',
    default: () => 'microk8s.io-hostpath',
  },
  leaseDurationSeconds: {
    flag: '--lease-duration',
    env: 'LEASE_DURATION',
    help: 'seconds standbys wait after the last observed renewal before taking the Lease',
    default: () => 15,
  },
  renewDeadlineSeconds: {
    flag: '--renew-deadline',
    env: 'RENEW_DEADLINE',
    help: 'seconds the leader keeps retrying a renewal before giving up leadership',
    default: () => 10,
  },
  retryPeriodSeconds: {
    flag: '--retry-period',
    env: 'RETRY_PERIOD',
    help: 'seconds between leader-election attempts',
    default: () => 2,
  },
  logLevel: {
    flag: '--log-level',
    env: 'LOG_LEVEL',
    help: 'fatal | error | warn | info | debug | trace | silent',
    default: () => 'info',
  },
  logFormat: {
    flag: '--log-format',
    env: 'LOG_FORMAT',
    help: 'json | pretty (human-readable, needs pino-pretty)',
    default: () => 'json',
  },
  kubeApiQps: {
    flag: '--kube-api-qps',
    env: 'KUBE_API_QPS',
    help: 'client-side rate limit: sustained requests per second to the API server',
    default: () => 20,
  },
  kubeApiBurst: {
    flag: '--kube-api-burst',
    env: 'KUBE_API_BURST',
    help: 'client-side rate limit: burst of requests above the QPS',
    default: () => 40,
  },
  shutdownGraceSeconds: {
    flag: '--shutdown-grace',
    env: 'SHUTDOWN_GRACE',
    help: 'seconds in-flight operations may take to finish after SIGTERM',
    default: () => 30,
  },
  retryBaseDelaySeconds: {
    flag: '--retry-base-delay',
    env: 'RETRY_BASE_DELAY',
    help: 'seconds before the first retry of a failed reconcile (doubles per failure)',
    default: () => 1,
  },
  retryMaxDelaySeconds: {
    flag: '--retry-max-delay',
    env: 'RETRY_MAX_DELAY',
    help: 'upper bound of the retry delay, seconds',
    default: () => 300,
  },
};

/** One invalid configuration field. */
export interface ConfigIssue {
  /** Field of {@link Config}, e.g. `pvDir`; '' for an issue not tied to one field. */
  readonly field: string;
  readonly flag: string;
  readonly env: string;
  readonly value: unknown;
  readonly message: string;
}

/** Thrown by {@link loadConfig}; its message lists every invalid field with its flag and environment variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(
      'invalid configuration:\n' +
        issues
          .map((i) =>
            i.field === ''
              ? `  ${i.message}`
              : `  ${i.flag} / ${i.env}${i.value === undefined ? '' : ` = ${JSON.stringify(i.value)}`}: ${i.message}`,
          )
          .join('\n'),
    );
  }
}

const fieldNames = Object.keys(configFields) as (keyof Config)[];

/** Commander's attribute name for a flag, e.g. `--helper-priority-class` → `helperPriorityClass`. */
function attributeName(flag: string): string {
  return new Option(flag).attributeName();
}

/**
 * Builds the configuration from parsed command-line flags, then environment variables, then defaults
 * (in that order of precedence), and validates it.
 *
 * @param flags - commander's `opts()` (keys are commander attribute names such as `helperPriorityClass`; the
 *   {@link Config} field names are accepted too). Values may be strings, numbers, booleans or string arrays.
 * @param env - the environment, usually `process.env`. An empty string counts as set (e.g. `HELPER_PRIORITY_CLASS=`).
 * @returns the validated {@link Config}.
 * @throws ConfigError listing every invalid field (flag, environment variable, value, reason).
 */
export function loadConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Config {
  const raw: Record<string, unknown> = {};
  for (const field of fieldNames) {
    const spec = configFields[field];
    const flagValue = flags[attributeName(spec.flag)] ?? flags[field];
    const envValue = env[spec.env];
    if (flagValue !== undefined) raw[field] = flagValue;
    else if (envValue !== undefined) {
      // An empty variable means "unset" for optional fields, and the empty value for helperPriorityClassName and
      // helperCapabilities.
      if (envValue === '' && field !== 'helperPriorityClassName' && field !== 'helperCapabilities') continue;
      raw[field] = envValue;
    }
  }
  for (const field of fieldNames) {
    if (raw[field] === undefined) {
      const d = configFields[field].default();
      if (d !== undefined) raw[field] = d;
    }
  }
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const issues: ConfigIssue[] = result.error.issues.map((issue) => {
    const field = String(issue.path[0] ?? '');
    const spec = (configFields as Record<string, FieldSpec | undefined>)[field];
    if (spec === undefined) return { field: '', flag: '', env: '', value: undefined, message: issue.message };
    return { field, flag: spec.flag, env: spec.env, value: raw[field], message: issue.message };
  });
  throw new ConfigError(issues);
}

/** Help text of a default value. */
function describeDefault(field: keyof Config): string {
  if (field === 'nodeName') return 'this host name';
  const d = configFields[field].default();
  if (d === undefined) return 'unset';
  if (Array.isArray(d)) return d.join(',');
  if (d === '') return 'empty';
  return typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean' ? String(d) : JSON.stringify(d);
}

/**
 * Declares every configuration flag on a commander command, the environment variable and default in each help
 * line. Commander defaults are not set, so {@link loadConfig} can tell "flag not given" from "flag given".
 *
 * @param cmd - the command to extend (usually `run`).
 * @returns the same command, for chaining.
 */
export function addRunOptions(cmd: Command): Command {
  for (const field of fieldNames) {
    const spec = configFields[field];
    const arg = spec.arg ?? '<value>';
    cmd.addOption(
      new Option(`${spec.flag} ${arg}`, `${spec.help} (env ${spec.env}; default ${describeDefault(field)})`),
    );
  }
  return cmd;
}
