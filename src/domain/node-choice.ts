import type { V1Node, V1TopologySelectorTerm } from '@kubernetes/client-node';
import { LABEL_HOSTNAME } from './constants.js';
import { untoleratedTaints } from './tolerations.js';

/** Whether a node is Ready (condition Ready=True) and not cordoned (`spec.unschedulable`). */
export function isReadyAndSchedulable(node: V1Node): boolean {
  if (node.spec?.unschedulable) return false;
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
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

/** Inputs to the Immediate-binding node choice. */
export interface NodeChoiceInput {
  readonly nodes: readonly V1Node[];
  readonly allowedTopologies?: readonly V1TopologySelectorTerm[] | undefined;
  /** The provisioner's own node (NODE_NAME): preferred, as the addon placed every volume there. */
  readonly preferredNode?: string | undefined;
  /** How many of our volumes each node (by name) already holds. */
  readonly volumeCounts: ReadonlyMap<string, number>;
}

/**
 * Chooses the node for a claim with Immediate binding (no selected node): among Ready, schedulable nodes matching
 * the class's allowedTopologies — untainted ones first (no consumer is known, and a volume on a dedicated node is
 * usable only by pods that tolerate its taints), tainted ones only when nothing else fits — the preferred node if it
 * is among them, else the one with the fewest of our volumes (ties broken by name, so the choice is deterministic).
 *
 * @returns the node, or why none fits (a sentence for a ProvisioningFailed event).
 */
export function chooseNodeForImmediate(
  input: NodeChoiceInput,
): { ok: true; node: V1Node } | { ok: false; reason: string } {
  const eligible = input.nodes.filter(
    (n) => isReadyAndSchedulable(n) && matchesAllowedTopologies(n, input.allowedTopologies),
  );
  if (eligible.length === 0) {
    return {
      ok: false,
      reason: `no Ready, schedulable node matches the StorageClass's allowedTopologies (${input.nodes.length} node(s) seen)`,
    };
  }
  // No consumer is known yet, so a node any pod can use comes first: one without NoSchedule/NoExecute taints.
  // Tainted nodes are used only when no untainted node is eligible.
  const untainted = eligible.filter((n) => untoleratedTaints(n.spec?.taints ?? [], []).length === 0);
  const pool = untainted.length > 0 ? untainted : eligible;
  const preferred = pool.find((n) => n.metadata?.name === input.preferredNode);
  if (preferred) return { ok: true, node: preferred };
  const count = (n: V1Node) => input.volumeCounts.get(n.metadata?.name ?? '') ?? 0;
  const sorted = [...pool].sort(
    (a, b) => count(a) - count(b) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''),
  );
  return { ok: true, node: sorted[0]! };
}
