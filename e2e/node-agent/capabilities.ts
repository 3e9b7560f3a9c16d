/**
 * The capabilities a container's process gets, as containerd and CRI-O compute them from `securityContext`: the
 * runtime's default set, minus `drop` (`ALL` drops every one), plus `add`. Pure. Containers whose securityContext
 * says nothing about capabilities keep the agent's own (all of root's): that part of a runtime is not emulated.
 */
import type { V1SecurityContext } from '@kubernetes/client-node';

/** containerd's default capability set for containers (pkg/oci `defaultUnixCaps`), without the `CAP_` prefix. */
export const RUNTIME_DEFAULT_CAPABILITIES: readonly string[] = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'MKNOD',
  'NET_RAW',
  'SETGID',
  'SETUID',
  'SETFCAP',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
];

const bare = (c: string) => c.toUpperCase().replace(/^CAP_/, '');

/**
 * The capability set of a container, or undefined when its securityContext has no `capabilities` (left as is).
 *
 * @param sc - the container's securityContext.
 * @returns names without `CAP_`, upper case, sorted.
 */
export function containerCapabilities(sc: V1SecurityContext | undefined): string[] | undefined {
  const caps = sc?.capabilities;
  if (!caps) return undefined;
  const drop = new Set((caps.drop ?? []).map(bare));
  const kept = drop.has('ALL') ? [] : RUNTIME_DEFAULT_CAPABILITIES.filter((c) => !drop.has(c));
  return [...new Set([...kept, ...(caps.add ?? []).map(bare)])].sort();
}

/**
 * `setpriv` arguments that give the process exactly `capabilities`: the bounding set is cut to them and the
 * inheritable set cleared, so a root process's permitted and effective sets after `exec` are these (a non-root
 * process gets none, as with a runtime). `noNewPrivileges` adds `--no-new-privs` (allowPrivilegeEscalation: false).
 */
export function setprivCapabilityArgs(capabilities: readonly string[] | undefined, noNewPrivileges: boolean): string[] {
  const args: string[] = [];
  if (capabilities) {
    const set = ['-all', ...capabilities.map((c) => `+${c.toLowerCase()}`)].join(',');
    args.push('--inh-caps=-all', `--bounding-set=${set}`);
  }
  if (noNewPrivileges) args.push('--no-new-privs');
  return args;
}
