import type { V1StorageClass } from '@kubernetes/client-node';
import { parseId, parseMode, type DirectoryOwnership } from './ownership.js';
import type { V1Node } from '@kubernetes/client-node';
import { checkBaseDirectory, nodeBaseDirectory, type PathCheck } from './paths.js';

/** Reclaim policies a provisioned PV can carry (Recycle is deprecated and not offered). */
export type ReclaimPolicy = 'Delete' | 'Retain';

/** Kind of volume source the PV gets: the addon's `hostPath`, or a `local` volume. */
export type VolumeType = 'hostPath' | 'local';

/** StorageClass parameters we understand, after validation. */
export interface ClassParameters {
  /** Base directory on the node (absolute, clean); `pvDir` or the provisioner's PV_DIR. */
  readonly baseDirectory: string;
  /**
   * `pvDirFromNode: "true"`: a node with the annotation `hostpath-provisioner.io/pv-dir` gets its volumes there
   * instead of in {@link baseDirectory} (see {@link baseDirectoryOnNode}). False by default.
   */
  readonly baseFromNode: boolean;
  /**
   * `sharedFileSystem: "true"`: the base directory is the same storage on every node that has it (NFS, CephFS, a
   * cluster file system): PVs are not pinned to one node but to the class's `allowedTopologies` (none: every node),
   * and any of those nodes may run the helpers. False by default.
   */
  readonly sharedFileSystem: boolean;
  /** Volume source of the PV. */
  readonly volumeType: VolumeType;
  /** Owner, group and mode of each new volume directory (`uid`, `gid`, `mode`); all undefined by default. */
  readonly ownership: DirectoryOwnership;
}

/** The StorageClass parameter keys we accept. The addon knows only `pvDir`; the others are ours. */
export const KNOWN_PARAMETERS = [
  'pvDir',
  'pvDirFromNode',
  'sharedFileSystem',
  'volumeType',
  'uid',
  'gid',
  'mode',
] as const;

/**
 * Parses and validates a StorageClass's `parameters` and `mountOptions`. Unlike the addon, which silently ignores
 * unknown keys (so a misspelt `pvdir` quietly used the default directory), every unknown key is an error.
 * `uid` and `gid` are decimal ids 0..4294967294, `mode` one to four octal digits (see ownership.ts), `pvDirFromNode`
 * and `sharedFileSystem` "true" or "false" (not both true; a shared `local` volume needs `allowedTopologies`); a bad
 * value is a problem like a bad `pvDir`, so the claim is refused before any helper runs.
 *
 * @param storageClass - the class.
 * @param defaultBaseDirectory - PV_DIR, used when the class sets no `pvDir`.
 * @returns the parameters, or a list of problems (each a sentence for a ProvisioningFailed event).
 */
export function parseClassParameters(
  storageClass: V1StorageClass,
  defaultBaseDirectory: string,
): { ok: true; parameters: ClassParameters } | { ok: false; problems: string[] } {
  const params = storageClass.parameters ?? {};
  const problems: string[] = [];
  for (const key of Object.keys(params).sort()) {
    if ((KNOWN_PARAMETERS as readonly string[]).includes(key)) continue;
    const near = KNOWN_PARAMETERS.find((k) => k.toLowerCase() === key.toLowerCase());
    problems.push(
      `unknown parameter ${JSON.stringify(key)}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}; ` +
        `known: ${KNOWN_PARAMETERS.join(', ')}`,
    );
  }
  let baseDirectory = defaultBaseDirectory;
  if (params.pvDir !== undefined) {
    const check = checkBaseDirectory(params.pvDir);
    if (check.ok) baseDirectory = check.path;
    else problems.push(`parameter pvDir ${JSON.stringify(params.pvDir)} ${check.reason}`);
  }
  const flag = (key: 'pvDirFromNode' | 'sharedFileSystem'): boolean => {
    const value = params[key];
    if (value !== undefined && value !== 'true' && value !== 'false') {
      problems.push(`parameter ${key} ${JSON.stringify(value)} must be "true" or "false"`);
    }
    return value === 'true';
  };
  const baseFromNode = flag('pvDirFromNode');
  const sharedFileSystem = flag('sharedFileSystem');
  if (baseFromNode && sharedFileSystem) {
    problems.push(
      'parameters pvDirFromNode and sharedFileSystem exclude each other: a shared file system has one directory for every node',
    );
  }
  let volumeType: VolumeType = 'hostPath';
  if (params.volumeType !== undefined) {
    if (params.volumeType === 'hostPath' || params.volumeType === 'local') volumeType = params.volumeType;
    else problems.push(`parameter volumeType ${JSON.stringify(params.volumeType)} must be "hostPath" or "local"`);
  }
  const number = (key: 'uid' | 'gid' | 'mode', parse: typeof parseId): number | undefined => {
    const value = params[key];
    if (value === undefined) return undefined;
    const check = parse(value);
    if (check.ok) return check.value;
    problems.push(`parameter ${key} ${JSON.stringify(value)} ${check.reason}`);
    return undefined;
  };
  const ownership: DirectoryOwnership = {
    uid: number('uid', parseId),
    gid: number('gid', parseId),
    mode: number('mode', parseMode),
  };
  if (sharedFileSystem && volumeType === 'local' && (storageClass.allowedTopologies ?? []).length === 0) {
    problems.push(
      'parameter volumeType "local" with sharedFileSystem needs allowedTopologies naming the nodes that mount it (a local PV must have node affinity)',
    );
  }
  if ((storageClass.mountOptions ?? []).length > 0) {
    problems.push(`mountOptions ${JSON.stringify(storageClass.mountOptions)} are not supported by hostPath volumes`);
  }
  return problems.length > 0
    ? { ok: false, problems }
    : { ok: true, parameters: { baseDirectory, baseFromNode, sharedFileSystem, volumeType, ownership } };
}

/**
 * Base directory of a new volume of a class on a node: the node's annotation `hostpath-provisioner.io/pv-dir` when
 * the class has `pvDirFromNode: "true"` and the node carries it, else the class's base directory (`pvDir` or PV_DIR).
 * An invalid annotation is refused, never replaced by the class's directory: the administrator meant another disk.
 *
 * @param parameters - the class's parsed parameters.
 * @param node - the node the volume goes to.
 * @returns the directory, or why it is refused (a sentence naming the node and the annotation).
 */
export function baseDirectoryOnNode(parameters: ClassParameters, node: V1Node): PathCheck {
  const fromNode = parameters.baseFromNode ? nodeBaseDirectory(node) : undefined;
  return fromNode ?? { ok: true, path: parameters.baseDirectory };
}

/**
 * Reclaim policy of a new PV: the class's (Kubernetes defaults it to Delete), except that the provisioner-wide
 * PV_RECLAIM_POLICY=Retain turns Delete into Retain. PV_RECLAIM_POLICY never turns a class's Retain into Delete
 * (the addon did, and removed data the class promised to keep).
 *
 * @param classPolicy - `reclaimPolicy` of the StorageClass, possibly unset.
 * @param override - PV_RECLAIM_POLICY, possibly unset.
 */
export function effectiveReclaimPolicy(
  classPolicy: string | undefined,
  override: ReclaimPolicy | undefined,
): ReclaimPolicy {
  const fromClass: ReclaimPolicy = classPolicy === 'Retain' ? 'Retain' : 'Delete';
  return override === 'Retain' ? 'Retain' : fromClass;
}
