import type { V1Pod, V1Toleration } from '@kubernetes/client-node';
import {
  ANN_HELPER_CLAIM,
  ANN_HELPER_CLAIM_UID,
  ANN_HELPER_PATH,
  ANN_HELPER_VOLUME,
  ANN_HELPER_VOLUME_UID,
  HELPER_CONTAINER,
  HELPER_MOUNT_PATH,
  LABEL_HELPER_OPERATION,
  LABEL_HELPER_VOLUME,
  LABEL_MANAGED_BY,
  MANAGED_BY_VALUE,
} from './constants.js';
import { dnsLabel, helperPodName, type HelperOperation } from './names.js';
import { ADDON_OWNERSHIP, createHelperArguments, needsChown, type DirectoryOwnership } from './ownership.js';

/** Default helper image: fully qualified, because CRI-O refuses short names such as `busybox:1.37.0`. */
export const DEFAULT_HELPER_IMAGE = 'docker.io/library/busybox:1.37.0';

/**
 * The capabilities a root helper keeps by default; every other one is dropped. Root without them is refused by the
 * kernel's discretionary checks on directories of other users (`generic_permission`, `may_delete`, `inode_owner_or_capable`):
 * - DAC_OVERRIDE: read, write and search any directory and write any file whatever its owner and mode — `mkdir` in a
 *   0700 base of another user, `rm -rf` of a 0700 tree of another user with 0600 files in it, the `list` of such a base.
 * - FOWNER: `chmod` of an entry root does not own (a leaf a pod chowned), and unlinking in a sticky (mode 1xxx)
 *   directory entries root does not own.
 * Not kept: DAC_READ_SEARCH (DAC_OVERRIDE already covers directory reads and search for root; it would also enable
 * `open_by_handle_at(2)`, which opens any inode of the backing file system outside the mount), CHOWN (see
 * {@link CHOWN_CAPABILITY}) and FSETID.
 */
export const DEFAULT_HELPER_CAPABILITIES: readonly string[] = ['DAC_OVERRIDE', 'FOWNER'];

/**
 * Added to the configured capabilities of one kind of helper only: the create helper of a class that sets `uid` or
 * `gid`, which must chown its new directory (chown(2) to another owner or group needs CAP_CHOWN). No other helper
 * gets it — not the delete and list helpers, not the create helpers of classes without these parameters.
 */
export const CHOWN_CAPABILITY = 'CHOWN';

/** Linux capability names as Kubernetes' `capabilities.add` takes them (without `CAP_`), up to Linux 6.x. */
export const LINUX_CAPABILITIES = [
  'AUDIT_CONTROL',
  'AUDIT_READ',
  'AUDIT_WRITE',
  'BLOCK_SUSPEND',
  'BPF',
  'CHECKPOINT_RESTORE',
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'IPC_LOCK',
  'IPC_OWNER',
  'KILL',
  'LEASE',
  'LINUX_IMMUTABLE',
  'MAC_ADMIN',
  'MAC_OVERRIDE',
  'MKNOD',
  'NET_ADMIN',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_RAW',
  'PERFMON',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYSLOG',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_CHROOT',
  'SYS_MODULE',
  'SYS_NICE',
  'SYS_PACCT',
  'SYS_PTRACE',
  'SYS_RAWIO',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'WAKE_ALARM',
] as const;

/** Line of the list helper's output between the entry names and the sizes (a name never contains `/`). */
export const LIST_USAGE_MARKER = '/usage';
/** Line of the list helper's output after the sizes when du failed or ran out of time. */
export const LIST_USAGE_INCOMPLETE = '/usage-incomplete';
/**
 * Line the list helper prints in place of an entry whose name holds a line break: printed as is, it would read as
 * several names, or as a `du` line giving another volume a forged size. No PV's directory has such a name.
 */
export const LIST_LINE_BREAK_NAME = '/line-break';

/**
 * Shell scripts run by the helper. The directory is passed as `$1` — never interpolated into the script — so no
 * claim or class name can inject a command. Both refuse to work through a symbolic link. No script contains `$(`:
 * the kubelet expands `$(NAME)` in a container's command.
 * - create: make the leaf, then give it its mode and owner. Arguments after the directory (createHelperArguments in
 *   ownership.ts): `$2` the mode for chmod (five octal digits; 00777 by default, so non-root pods can write on every
 *   node alike — set explicitly, because `mkdir -m` does not fix an existing leaf and the umask would narrow it),
 *   `$3` a uid and `$4` a gid to chown to ('' to leave them), `$5` the mode `stat -c %a` must print afterwards ('' to
 *   check nothing: the addon's default). When it chowns, it first gives the leaf back to root (0, or :0 for the
 *   group only), so the chmod is done by the leaf's owner and group: chmod(2) by root outside the file's group
 *   silently drops the setgid bit of a `2770` without CAP_FSETID (which the helper does not have), and a chown never
 *   drops it from a directory. Every step sets a value rather than changing one, so a run after a crash at any point
 *   ends in the same state; the check turns what the kernel or the file system silently ignored (a chmod on vfat, a
 *   setgid bit dropped) into a failure with the modes in stderr.
 * - delete: remove the leaf and everything in it (as root with CAP_DAC_OVERRIDE/CAP_FOWNER: files of any owner and
 *   mode), then check it is gone; a non-zero exit carries rm's stderr.
 * None writes outside the mounted base directory, so the container's root file system is read-only.
 * - list: print the name of every entry of the base directory itself, one per line (dot-files included; a name
 *   holding a line break as {@link LIST_LINE_BREAK_NAME}, and never measured), then the
 *   line {@link LIST_USAGE_MARKER} and `du -sxk` of every directory entry that is not a symbolic link (KiB used, a
 *   tab, the name; on the base directory's file system only), limited to `$2` seconds (busybox `timeout`); when du
 *   fails or runs out of time, the line {@link LIST_USAGE_INCOMPLETE} follows the sizes it printed. Read only.
 */
export const HELPER_SCRIPTS: Readonly<Record<HelperOperation, string>> = {
  create:
    'set -eu; d="$1"; m="$2"; u="$3"; g="$4"; a="$5"; ' +
    'if [ -L "$d" ]; then echo "refusing: $d is a symbolic link" >&2; exit 2; fi; ' +
    'mkdir -p -- "$d"; ' +
    'if [ -n "$u$g" ]; then chown "${u:+0}${g:+:0}" -- "$d"; fi; ' +
    'chmod "$m" -- "$d"; ' +
    'if [ -n "$u$g" ]; then chown "$u${g:+:$g}" -- "$d"; fi; ' +
    'if [ -n "$a" ]; then set -- `stat -c "%a %u %g" -- "$d"`; ' +
    'if [ "$1" != "$a" ] || [ "${u:-$2}" != "$2" ] || [ "${g:-$3}" != "$3" ]; then ' +
    'echo "$d has mode $1, owner $2:$3 after chmod and chown, not mode $a, owner ${u:-$2}:${g:-$3}" >&2; exit 1; fi; fi',
  delete:
    'set -eu; d="$1"; if [ -L "$d" ]; then echo "refusing: $d is a symbolic link" >&2; exit 2; fi; ' +
    'rm -rf -- "$d"; if [ -e "$d" ]; then echo "$d still exists after rm" >&2; exit 1; fi',
  list:
    'set -eu; d="$1"; t="$2"; cd -- "$d"; ' +
    'for e in * .[!.]* ..?*; do if [ -e "$e" ] || [ -L "$e" ]; then ' +
    `case "$e" in *"\n"*) printf "%s\\n" "${LIST_LINE_BREAK_NAME}";; *) printf "%s\\n" "$e";; esac; fi; done; ` +
    `printf "%s\\n" "${LIST_USAGE_MARKER}"; set --; ` +
    'for e in * .[!.]* ..?*; do if [ -d "$e" ] && [ ! -L "$e" ]; then ' +
    'case "$e" in *"\n"*) ;; *) set -- "$@" "$e";; esac; fi; done; ' +
    `if [ "$#" -gt 0 ]; then timeout "$t" du -sxk -- "$@" || printf "%s\\n" "${LIST_USAGE_INCOMPLETE}"; fi`,
};

/**
 * Seconds the list helper's `du` may run: half the helper's deadline (at least 1), so the names and the sizes it
 * measured are printed before the pod is stopped.
 */
export function listUsageTimeLimitSeconds(activeDeadlineSeconds: number): number {
  return Math.max(1, Math.floor(activeDeadlineSeconds / 2));
}

/** Everything a helper pod needs, already decided. */
export interface HelperPodInput {
  readonly operation: HelperOperation;
  /** PV name the helper works for. */
  readonly volumeName: string;
  /** Namespace the helper runs in (the provisioner's). */
  readonly namespace: string;
  /** Node name the helper must run on. */
  readonly nodeName: string;
  /** Base directory on the node (mounted into the helper; never `/`). */
  readonly baseDirectory: string;
  /** Name of the volume directory under the base directory (one path component); '' for `list`. */
  readonly directoryName: string;
  readonly image: string;
  readonly tolerations: readonly V1Toleration[];
  /** priorityClassName, or '' for none; never set on `list` helpers (a read-only report must not preempt pods). */
  readonly priorityClassName: string;
  /**
   * Capabilities the root container keeps (names without `CAP_`); all others are dropped. Default
   * {@link DEFAULT_HELPER_CAPABILITIES}; `[]` keeps none. A create helper that chowns gets {@link CHOWN_CAPABILITY}
   * on top.
   */
  readonly capabilities?: readonly string[] | undefined;
  /** For create helpers: the class's `uid`, `gid` and `mode`; default none set (mode 0777, no chown). */
  readonly ownership?: DirectoryOwnership | undefined;
  /** Upper bound on the helper's run time in seconds (`activeDeadlineSeconds`). */
  readonly activeDeadlineSeconds: number;
  /** The claim the create helper serves (`namespace/name` and uid), for cleanup after restarts. */
  readonly claim?: { readonly key: string; readonly uid: string };
  /** The uid of the PV a delete helper serves: a later run adopts the helper only for the same PV object. */
  readonly volumeUid?: string;
  /**
   * The base directory is the mount of a shared file system (a class with `sharedFileSystem`): mounted with type
   * Directory, never created, so on a node without the mount the helper never starts and fails — instead of making
   * the volume on (or "removing" it from) that node's own disk.
   */
  readonly sharedBase?: boolean;
}

/**
 * Builds a helper pod. It is pinned the way DaemonSet pods are — a required node affinity on the field
 * `metadata.name` — so the real scheduler places it and its tolerations must be right (a `spec.nodeName` would skip
 * the scheduler and hide wrong tolerations until the kubelet rejected it). It mounts only the base directory — type
 * DirectoryOrCreate for create and delete, type Directory for `list`, so a report never creates a base directory on
 * a node that never had one (the helper then stays ContainerCreating and the report skips that node), and for the
 * shared file system's mount ({@link HelperPodInput.sharedBase}). It runs as
 * root with only `input.capabilities` (default DAC_OVERRIDE and FOWNER; plus CHOWN for a create helper whose class
 * sets `uid` or `gid`), never privileged, no privilege escalation
 * (`no_new_privs`), the runtime's default seccomp profile and a read-only root file system. The Pod Security level it
 * needs is `privileged` (hostPath volumes and running as root are outside `baseline`).
 *
 * No ownerReference to the claim: helpers live in the provisioner's namespace, and the garbage collector deletes a
 * namespaced object whose owner is in another namespace. Leftover helpers are found by label instead.
 */
export function buildHelperPod(input: HelperPodInput): V1Pod {
  const name = helperPodName(input.operation, input.volumeName);
  const listing = input.operation === 'list';
  const ownership = input.operation === 'create' ? (input.ownership ?? ADDON_OWNERSHIP) : undefined;
  const configured = input.capabilities ?? DEFAULT_HELPER_CAPABILITIES;
  const capabilities =
    ownership && needsChown(ownership) && !configured.includes(CHOWN_CAPABILITY)
      ? [...configured, CHOWN_CAPABILITY]
      : configured;
  const containerPath = listing ? HELPER_MOUNT_PATH : `${HELPER_MOUNT_PATH}/${input.directoryName}`;
  const annotations: Record<string, string> = {
    [ANN_HELPER_VOLUME]: input.volumeName,
    [ANN_HELPER_PATH]: listing ? input.baseDirectory : `${input.baseDirectory}/${input.directoryName}`,
  };
  if (input.claim) {
    annotations[ANN_HELPER_CLAIM] = input.claim.key;
    annotations[ANN_HELPER_CLAIM_UID] = input.claim.uid;
  }
  if (input.volumeUid !== undefined) annotations[ANN_HELPER_VOLUME_UID] = input.volumeUid;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: input.namespace,
      labels: {
        [LABEL_MANAGED_BY]: MANAGED_BY_VALUE,
        [LABEL_HELPER_OPERATION]: input.operation,
        [LABEL_HELPER_VOLUME]: dnsLabel(input.volumeName),
      },
      annotations,
    },
    spec: {
      restartPolicy: 'Never',
      activeDeadlineSeconds: input.activeDeadlineSeconds,
      terminationGracePeriodSeconds: 0,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      ...(input.priorityClassName && !listing ? { priorityClassName: input.priorityClassName } : {}),
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [input.nodeName] }] }],
          },
        },
      },
      tolerations: input.tolerations.map((t) => ({ ...t })),
      containers: [
        {
          name: HELPER_CONTAINER,
          image: input.image,
          imagePullPolicy: 'IfNotPresent',
          command: [
            'sh',
            '-c',
            HELPER_SCRIPTS[input.operation],
            `hostpath-${input.operation}`,
            containerPath,
            ...(ownership ? createHelperArguments(ownership) : []),
            ...(listing ? [String(listUsageTimeLimitSeconds(input.activeDeadlineSeconds))] : []),
          ],
          resources: {
            requests: { cpu: '10m', memory: '16Mi' },
            limits: { cpu: '100m', memory: '64Mi' },
          },
          securityContext: {
            runAsUser: 0,
            runAsGroup: 0,
            privileged: false,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            seccompProfile: { type: 'RuntimeDefault' },
            capabilities: { drop: ['ALL'], ...(capabilities.length ? { add: [...capabilities] } : {}) },
          },
          volumeMounts: [{ name: 'base', mountPath: HELPER_MOUNT_PATH }],
        },
      ],
      volumes: [
        {
          name: 'base',
          hostPath: {
            path: input.baseDirectory,
            type: listing || input.sharedBase ? 'Directory' : 'DirectoryOrCreate',
          },
        },
      ],
    },
  };
}
