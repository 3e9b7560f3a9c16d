import type { V1Node, V1PersistentVolume } from '@kubernetes/client-node';
import { posix } from 'node:path';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import { LIST_USAGE_INCOMPLETE, LIST_USAGE_MARKER } from '../src/domain/helper-pod.js';
import { shortHash } from '../src/domain/names.js';
import { nodeBaseDirectory } from '../src/domain/paths.js';
import { isLinuxNode, isReady } from '../src/domain/node-choice.js';
import { helperTolerations, type TolerationPolicy } from '../src/domain/tolerations.js';
import { volumeOnNode, volumePath } from '../src/domain/volume.js';
import type { HelperRunner } from './helper-runner.js';
import type { ClusterCache } from './ports.js';

/** Names of at most this many orphan directories are logged per node and base directory (the count is complete). */
const LOGGED_NAMES = 50;
/** Nodes listed at once by default (each is one helper pod, created and awaited). */
export const ORPHAN_REPORT_CONCURRENCY = 4;

/**
 * Directories listed in `base` on a node that no PV points to: a PV points to `<base>/<name>` when its hostPath or
 * local path is exactly that and it lives on that node ({@link volumeOnNode}). Any PV counts, ours or not. An entry
 * that is itself a known base directory, or contains one (`pvDir: /srv` next to `/srv/fast`), is never an orphan: it
 * holds live volumes.
 *
 * @param listed - entry names the list helper printed.
 * @param base - the base directory listed.
 * @param node - the node listed.
 * @param volumes - every PV.
 * @param knownBases - every known base directory (PV_DIR and our classes' `pvDir`).
 * @returns the orphan names, sorted.
 */
export function orphanDirectories(
  listed: readonly string[],
  base: string,
  node: V1Node,
  volumes: readonly V1PersistentVolume[],
  knownBases: readonly string[] = [],
): string[] {
  const referenced = new Set<string>();
  for (const pv of volumes) {
    const path = volumePath(pv);
    if (path === undefined || posix.dirname(path) !== base || !volumeOnNode(pv, node)) continue;
    referenced.add(posix.basename(path));
  }
  const holdsBase = (name: string): boolean => {
    const entry = `${base}/${name}`;
    return knownBases.some((b) => b === entry || b.startsWith(`${entry}/`));
  };
  return [...new Set(listed.filter((n) => n !== '' && !referenced.has(n) && !holdsBase(n)))].sort();
}

/** What one list helper printed about one base directory. */
export interface ListOutput {
  /** Every entry of the base directory, in the order printed. */
  readonly names: string[];
  /** Bytes used (du's KiB × 1024) by each directory entry that is not a symbolic link, by entry name. */
  readonly usedBytes: Map<string, number>;
  /** False when du failed or ran out of time (the sizes it printed are kept), or printed no usage part at all. */
  readonly complete: boolean;
}

/**
 * Parses the list helper's output (see HELPER_SCRIPTS.list): names, the usage marker, `du -sxk` lines (`<KiB>\t<name>`,
 * the name after the first tab), and the incomplete marker when du did not finish. Lines that are neither are
 * ignored. Pure.
 *
 * @param output - the helper's stdout.
 */
export function parseListOutput(output: string): ListOutput {
  const lines = output.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const marker = lines.indexOf(LIST_USAGE_MARKER);
  const names = (marker === -1 ? lines : lines.slice(0, marker)).filter((n) => n !== '');
  const usedBytes = new Map<string, number>();
  let complete = marker !== -1;
  for (const line of marker === -1 ? [] : lines.slice(marker + 1)) {
    if (line === LIST_USAGE_INCOMPLETE) {
      complete = false;
      continue;
    }
    const m = /^(\d+)\t(.+)$/.exec(line);
    if (m) usedBytes.set(m[2] ?? '', Number(m[1]) * 1024);
  }
  return { names, usedBytes, complete };
}

/**
 * Base directories to list on a node: PV_DIR everywhere, the node's own (annotation `hostpath-provisioner.io/pv-dir`)
 * when valid, plus every other known base directory that holds a PV pinned to that node (a class's `pvDir` is not
 * looked for on nodes that never had a volume of it).
 */
export function basesToList(
  node: V1Node,
  defaultBase: string,
  knownBases: readonly string[],
  volumes: readonly V1PersistentVolume[],
): string[] {
  const bases = new Set([defaultBase]);
  const own = nodeBaseDirectory(node);
  if (own?.ok) bases.add(own.path);
  for (const pv of volumes) {
    const path = volumePath(pv);
    if (path === undefined || !volumeOnNode(pv, node)) continue;
    const base = posix.dirname(path);
    if (knownBases.includes(base)) bases.add(base);
  }
  return [...bases];
}

/** Nodes the report lists: existing, not being deleted, Ready, and Linux (the helper runs `sh` from a Linux image). */
export function nodesToList(nodes: readonly V1Node[]): V1Node[] {
  return nodes.filter((n) => n.metadata?.name && !n.metadata.deletionTimestamp && isReady(n) && isLinuxNode(n));
}

/**
 * Nodes whose `orphan_directories{node}` series should be dropped: counted before, no longer among the nodes.
 *
 * @param counted - names of nodes that have a series.
 * @param nodes - the nodes that exist now.
 */
export function goneNodes(counted: Iterable<string>, nodes: readonly V1Node[]): string[] {
  const present = new Set(nodes.map((n) => n.metadata?.name ?? ''));
  return [...counted].filter((n) => !present.has(n));
}

/**
 * Seconds before the first report after leadership starts: between ¼ and 1 interval, so a new leader does not list
 * every node at the moment it takes over (review H1, M6) and replicas that fail over do not report in lockstep.
 *
 * @param intervalSeconds - the report interval, seconds.
 * @param random - a number in [0, 1) (Math.random in production).
 */
export function firstReportDelaySeconds(intervalSeconds: number, random: number): number {
  return intervalSeconds * (0.25 + 0.75 * Math.min(Math.max(random, 0), 1));
}

/**
 * Orphan and usage report: on every Ready Linux node, a read-only `list` helper prints the entries of each base
 * directory and the space each directory uses (handed to `setUsage`); entries no PV points to are logged (Warning level, names capped) and counted in
 * `hostpath_provisioner_orphan_directories{node}`. Nothing is ever removed. At most `concurrency` nodes are listed at
 * once. A base directory the helper cannot mount (its container never starts within the helper timeout: the list
 * helper mounts with hostPath type Directory, so an absent base directory looks like this) is skipped with an info
 * log and counts 0. A node whose helper fails otherwise keeps its previous count and is logged. Directories of a
 * provisioning in flight (helper done, PV not yet created) may be counted once; the PVs are read from the cache after
 * each listing, so volumes created while the report runs are not.
 *
 * @returns orphan names by node name (nodes whose listing failed are absent).
 */
export async function reportOrphanDirectories(deps: {
  readonly cache: ClusterCache;
  readonly runner: HelperRunner;
  readonly defaultBase: string;
  /** Every known base directory for volumes on a node (PV_DIR, our classes' `pvDir`, the node's own). */
  readonly knownBases: (node: V1Node) => readonly string[];
  readonly tolerationPolicy: TolerationPolicy;
  readonly setCount: (node: string, count: number) => void;
  /**
   * Receives a node's volume usage after it was listed: bytes used by path (`<base>/<name>`, every directory of every
   * base listed), and whether every base's du finished in time. Not called for a node whose listing failed.
   */
  readonly setUsage?: (node: V1Node, usedBytes: ReadonlyMap<string, number>, complete: boolean) => void;
  readonly logger: Logger;
  /** Nodes listed at once (default {@link ORPHAN_REPORT_CONCURRENCY}). */
  readonly concurrency?: number;
}): Promise<Map<string, string[]>> {
  const { cache, runner, logger } = deps;
  const report = new Map<string, string[]>();
  const queue = new PQueue({ concurrency: deps.concurrency ?? ORPHAN_REPORT_CONCURRENCY });
  const listNode = async (node: V1Node): Promise<void> => {
    const nodeName = node.metadata?.name ?? '';
    const log = logger.child({ node: nodeName, operation: 'list' });
    const orphans: string[] = [];
    const usage = new Map<string, number>();
    let complete = true;
    const knownBases = deps.knownBases(node);
    for (const base of basesToList(node, deps.defaultBase, knownBases, cache.volumes())) {
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
        if (!result.ok && result.neverStarted) {
          log.info({ base }, 'base directory not mounted within the helper timeout (absent on this node?); skipped');
          continue;
        }
        if (!result.ok) {
          log.warn(
            { base, reason: result.reason },
            `cannot list base directory for the orphan report: ${result.message}`,
          );
          return;
        }
        const listed = parseListOutput(result.output ?? '');
        for (const [name, bytes] of listed.usedBytes) usage.set(`${base}/${name}`, bytes);
        if (!listed.complete) {
          complete = false;
          log.warn({ base }, 'volume usage incomplete: du failed or ran out of time (sizes measured are kept)');
        }
        // The PVs as the cache has them now, after the listing: a report can run for minutes (nodes listed a few at
        // a time, helpers waiting up to their timeout), and a volume provisioned meanwhile is no orphan.
        const found = orphanDirectories(listed.names, base, node, cache.volumes(), knownBases);
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
    deps.setUsage?.(node, usage, complete);
    report.set(nodeName, orphans);
  };
  await Promise.all(nodesToList(cache.nodes()).map((node) => queue.add(() => listNode(node))));
  return report;
}
