import type { V1Node, V1PersistentVolume } from '@kubernetes/client-node';
import { posix } from 'node:path';
import type { Logger } from 'pino';
import { shortHash } from '../src/domain/names.js';
import { helperTolerations, type TolerationPolicy } from '../src/domain/tolerations.js';
import { nodeHostname, volumeHostname, volumePath } from '../src/domain/volume.js';
import type { HelperRunner } from './helper-runner.js';
import type { ClusterCache } from './ports.js';

/** Names of at most this many orphan directories are logged per node and base directory (the count is complete). */
const LOGGED_NAMES = 50;

/**
 * Directories listed in `base` on a node that no PV points to: a PV points to `<base>/<name>` when its hostPath or
 * local path is exactly that and its node affinity names the node's hostname. Any PV counts, ours or not.
 *
 * @param listed - entry names the list helper printed.
 * @param base - the base directory listed.
 * @param hostname - the node's `kubernetes.io/hostname` label.
 * @param volumes - every PV.
 * @returns the orphan names, sorted.
 */
export function orphanDirectories(
  listed: readonly string[],
  base: string,
  hostname: string,
  volumes: readonly V1PersistentVolume[],
): string[] {
  const referenced = new Set<string>();
  for (const pv of volumes) {
    const path = volumePath(pv);
    if (path === undefined || posix.dirname(path) !== base || volumeHostname(pv) !== hostname) continue;
    referenced.add(posix.basename(path));
  }
  return [...new Set(listed.filter((n) => n !== '' && !referenced.has(n)))].sort();
}

/**
 * Base directories to list on a node: PV_DIR everywhere, plus every other known base directory that holds a PV
 * pinned to that node (listing a class's `pvDir` on a node that never had one would create it: DirectoryOrCreate).
 */
export function basesToList(
  node: V1Node,
  defaultBase: string,
  knownBases: readonly string[],
  volumes: readonly V1PersistentVolume[],
): string[] {
  const hostname = nodeHostname(node);
  const bases = new Set([defaultBase]);
  for (const pv of volumes) {
    const path = volumePath(pv);
    if (path === undefined || volumeHostname(pv) !== hostname) continue;
    const base = posix.dirname(path);
    if (knownBases.includes(base)) bases.add(base);
  }
  return [...bases];
}

/**
 * Orphan report: on every node, a read-only `list` helper prints the entries of each base directory; those no PV
 * points to are logged (Warning level, names capped) and counted in `hostpath_provisioner_orphan_directories{node}`.
 * Nothing is ever removed. Nodes are listed in parallel; a node whose helper fails keeps its previous count and is
 * logged. Directories of a provisioning in flight (helper done, PV not yet created) may be counted once.
 *
 * @returns orphan names by node name (nodes whose listing failed are absent).
 */
export async function reportOrphanDirectories(deps: {
  readonly cache: ClusterCache;
  readonly runner: HelperRunner;
  readonly defaultBase: string;
  readonly knownBases: readonly string[];
  readonly tolerationPolicy: TolerationPolicy;
  readonly setCount: (node: string, count: number) => void;
  readonly logger: Logger;
}): Promise<Map<string, string[]>> {
  const { cache, runner, logger } = deps;
  const volumes = cache.volumes();
  const report = new Map<string, string[]>();
  await Promise.all(
    cache
      .nodes()
      .filter((n) => n.metadata?.name && !n.metadata.deletionTimestamp)
      .map(async (node) => {
        const nodeName = node.metadata?.name ?? '';
        const log = logger.child({ node: nodeName, operation: 'list' });
        const orphans: string[] = [];
        for (const base of basesToList(node, deps.defaultBase, deps.knownBases, volumes)) {
          try {
            const result = await runner.run(
              {
                operation: 'list',
                volumeName: `${nodeName}-${shortHash(base)}`,
                node,
                baseDirectory: base,
                directoryName: '',
                tolerations: helperTolerations(deps.tolerationPolicy, node.spec?.taints ?? []),
              },
              log,
            );
            if (!result.ok) {
              log.warn(
                { base, reason: result.reason },
                `cannot list base directory for the orphan report: ${result.message}`,
              );
              return;
            }
            const listed = (result.output ?? '').split('\n');
            const found = orphanDirectories(listed, base, nodeHostname(node), volumes);
            if (found.length > 0) {
              log.warn(
                { base, count: found.length, directories: found.slice(0, LOGGED_NAMES) },
                'orphan directories: no PV points to them (reported, never removed)',
              );
            }
            orphans.push(...found.map((n) => `${base}/${n}`));
          } catch (err) {
            log.warn({ err, base }, 'orphan report failed for this node; will retry');
            return;
          }
        }
        deps.setCount(nodeName, orphans.length);
        report.set(nodeName, orphans);
      }),
  );
  return report;
}
