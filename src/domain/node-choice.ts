import type { V1Node, V1TopologySelectorTerm } from '@kubernetes/client-node';
import { LABEL_HOSTNAME } from './constants.js';
import { untoleratedTaints } from './tolerations.js';

/** Whether a node is Ready (condition Ready=True) and not cordoned (`spec.unschedulable`). */
export function isReadyAndSchedulable(node: V1Node): boolean {
  return !node.spec?.unschedulable && isReady(node);
}

/**
 * Whether a node's labels satisfy a StorageClass's `allowedTopologies`: any term matches when all of its
 * `matchLabelExpressions` match (the label's value is one of `values`). No terms = every node.
 * The `kubernetes.io/hostname` key also matches the node name when the label is missing.
 */
export function matchesAllowedTopologies(node: V1Node, terms: readonly V1TopologySelectorTerm[] | undefined): boolean {
  if (!terms || terms.length === 0) return true;
  const labels = node.metadata?.labels ?? {};
  return terms.some((term) =>
    (term.matchLabelExpressions ?? []).every((expr) => {
      const value = labels[expr.key] ?? (expr.key === LABEL_HOSTNAME ? node.metadata?.name : undefined);
      return value !== undefined && expr.values.includes(value);
    }),
  );
}

/** Well-known node label naming the operating system (`linux`, `windows`). */
export const LABEL_OS = 'kubernetes.io/os';

/**
 * Whether a node runs Linux: its `kubernetes.io/os` label is `linux` or absent (the kubelet always sets it; a node
 * without it is taken to be Linux, as it was before the label existed). Helpers run `sh` from a Linux image.
 */
export function isLinuxNode(node: V1Node): boolean {
  const os = node.metadata?.labels?.[LABEL_OS];
  return os === undefined || os === 'linux';
}

/** Whether a node reports the condition Ready=True (cordoned or not). */
export function isReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Inputs to the Immediate-binding node choice. */
export interface NodeChoiceInput {
  readonly nodes: readonly V1Node[];
  readonly allowedTopologies?: readonly V1TopologySelectorTerm[] | undefined;
  /** The provisioner's own node (NODE_NAME): preferred, as the addon placed every volume there. */
  readonly preferredNode?: string | undefined;
  /** How many of our volumes each node (by name) already holds. */
  readonly volumeCounts: ReadonlyMap<string, number>;
  /**
   * Names of nodes where a helper failed recently for this class: skipped unless no other node fits (then they are
   * tried again rather than leaving the claim Pending).
   */
  readonly excluded?: ReadonlySet<string> | undefined;
}

/** Why a node was not chosen. */
export type SkipReason = 'not_linux' | 'not_ready' | 'cordoned' | 'topology' | 'recent_failure' | 'tainted';

/** A node the choice passed over, and why. */
export interface SkippedNode {
  readonly name: string;
  readonly why: SkipReason;
}

/** Outcome of {@link chooseNodeForImmediate}; `skipped` lists the nodes passed over (in node order). */
export type NodeChoice =
  | { readonly ok: true; readonly node: V1Node; readonly skipped: readonly SkippedNode[] }
  | { readonly ok: false; readonly reason: string; readonly skipped: readonly SkippedNode[] };

/**
 * Chooses the node for a claim with Immediate binding (no selected node). Candidates are Linux nodes
 * ({@link isLinuxNode}) that are Ready, not cordoned and match the class's allowedTopologies. Among them, nodes in
 * `excluded` (a helper failed there recently) are skipped unless no other candidate is left; then untainted ones come
 * first (no consumer is known, and a volume on a dedicated node is usable only by pods that tolerate its taints),
 * tainted ones only when nothing else fits; then the preferred node if it is among them, else the one with the fewest
 * of our volumes (ties broken by name, so the choice is deterministic). Pure.
 *
 * @returns the node (or why none fits: a sentence for a ProvisioningFailed event) and the nodes skipped, with why.
 */
export function chooseNodeForImmediate(input: NodeChoiceInput): NodeChoice {
  const skipped: SkippedNode[] = [];
  const nameOf = (n: V1Node) => n.metadata?.name ?? '';
  const eligible = input.nodes.filter((n) => {
    const why: SkipReason | undefined = !isLinuxNode(n)
      ? 'not_linux'
      : !isReady(n)
        ? 'not_ready'
        : n.spec?.unschedulable
          ? 'cordoned'
          : !matchesAllowedTopologies(n, input.allowedTopologies)
            ? 'topology'
            : undefined;
    if (why) skipped.push({ name: nameOf(n), why });
    return why === undefined;
  });
  if (eligible.length === 0) {
    return {
      ok: false,
      reason: `no Ready, schedulable node running Linux matches the StorageClass's allowedTopologies (${input.nodes.length} node(s) seen)`,
      skipped,
    };
  }
  const fresh = eligible.filter((n) => !input.excluded?.has(nameOf(n)));
  const candidates = fresh.length > 0 ? fresh : eligible;
  if (fresh.length > 0) {
    for (const n of eligible)
      if (input.excluded?.has(nameOf(n))) skipped.push({ name: nameOf(n), why: 'recent_failure' });
  }
  // No consumer is known yet, so a node any pod can use comes first: one without NoSchedule/NoExecute taints.
  // Tainted nodes are used only when no untainted node is a candidate.
  const untainted = candidates.filter((n) => untoleratedTaints(n.spec?.taints ?? [], []).length === 0);
  const pool = untainted.length > 0 ? untainted : candidates;
  if (untainted.length > 0) {
    for (const n of candidates) if (!untainted.includes(n)) skipped.push({ name: nameOf(n), why: 'tainted' });
  }
  const order = new Map(input.nodes.map((n, i) => [nameOf(n), i]));
  skipped.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
  const preferred = pool.find((n) => nameOf(n) === input.preferredNode);
  if (preferred) return { ok: true, node: preferred, skipped };
  const count = (n: V1Node) => input.volumeCounts.get(nameOf(n)) ?? 0;
  const sorted = [...pool].sort((a, b) => count(a) - count(b) || nameOf(a).localeCompare(nameOf(b)));
  return { ok: true, node: sorted[0]!, skipped };
}

const SKIP_WORDS: Readonly<Record<SkipReason, string>> = {
  not_linux: 'not Linux',
  not_ready: 'not Ready',
  cordoned: 'cordoned',
  topology: "outside the class's allowedTopologies",
  recent_failure: 'a helper failed there recently',
  tainted: 'tainted',
};

/**
 * A sentence naming the skipped nodes grouped by reason, for the NodeChosen and ProvisioningFailed events, e.g.
 * `skipped: hpp-win (not Linux); w1, w2 (a helper failed there recently)`. At most `limit` names per reason are
 * listed, then `and N more`. '' when nothing was skipped.
 *
 * @param skipped - from {@link chooseNodeForImmediate}.
 * @param limit - names listed per reason (default 5).
 */
export function describeSkippedNodes(skipped: readonly SkippedNode[], limit = 5): string {
  if (skipped.length === 0) return '';
  const groups = new Map<SkipReason, string[]>();
  for (const s of skipped) groups.set(s.why, [...(groups.get(s.why) ?? []), s.name]);
  const parts = [...groups].map(([why, names]) => {
    const shown = names.slice(0, limit).join(', ');
    const more = names.length > limit ? ` and ${names.length - limit} more` : '';
    return `${shown}${more} (${SKIP_WORDS[why]})`;
  });
  return `skipped: ${parts.join('; ')}`;
}

/**
 * Chooses the node for the delete helper of a volume on a shared file system, among the nodes that can reach it:
 * Linux and Ready ones — cordoned ones too, since a delete helper tolerates the cordon as it does for a pinned
 * volume. Nodes in `excluded` (a helper failed there recently for this volume: the mount may be missing) are passed
 * over unless no other is left; then nodes neither cordoned nor carrying NoSchedule/NoExecute taints come first; then
 * the first by name. Pure.
 *
 * @param nodes - the nodes that can reach the volume (its node affinity matches, or it has none).
 * @param excluded - names of nodes to pass over if possible.
 * @returns the node, or undefined when none is Ready and Linux.
 */
export function chooseNodeForSharedDelete(
  nodes: readonly V1Node[],
  excluded: ReadonlySet<string> = new Set(),
): V1Node | undefined {
  const nameOf = (n: V1Node) => n.metadata?.name ?? '';
  const eligible = nodes.filter((n) => isLinuxNode(n) && isReady(n));
  const fresh = eligible.filter((n) => !excluded.has(nameOf(n)));
  const candidates = fresh.length > 0 ? fresh : eligible;
  const free = (n: V1Node) => !n.spec?.unschedulable && untoleratedTaints(n.spec?.taints ?? [], []).length === 0;
  return [...candidates].sort((a, b) => Number(free(b)) - Number(free(a)) || nameOf(a).localeCompare(nameOf(b)))[0];
}
