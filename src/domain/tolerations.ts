import type { V1Taint, V1Toleration } from '@kubernetes/client-node';

/**
 * How a helper pod's tolerations are chosen.
 * - `node-taints` (default): exactly the target node's current taints, plus the consumer pods' tolerations.
 * - `all`: a single `operator: Exists` toleration (tolerates everything; the peers' unsafe choice, opt-in).
 * - `none`: no tolerations (the addon's behaviour; helpers stay Pending on tainted nodes).
 */
export type TolerationPolicy = 'node-taints' | 'all' | 'none';

/** The policies, for validation and help text. */
export const TOLERATION_POLICIES: readonly TolerationPolicy[] = ['node-taints', 'all', 'none'];

/**
 * The toleration that matches one taint exactly: same key and effect, operator `Equal` with the taint's value,
 * or `Exists` when the value is empty (Kubernetes: "Exists must have no value"). No `tolerationSeconds`, so a
 * NoExecute taint never evicts the helper mid-run.
 *
 * @param taint - a node taint (`timeAdded` is ignored).
 */
export function tolerationForTaint(taint: V1Taint): V1Toleration {
  const value = taint.value ?? '';
  return value === ''
    ? { key: taint.key, operator: 'Exists', effect: taint.effect }
    : { key: taint.key, operator: 'Equal', value, effect: taint.effect };
}

/**
 * A taint as `kubectl describe node` prints it: `key=value:Effect`, or `key:Effect` when the value is empty.
 *
 * @param taint - a node taint.
 */
export function formatTaint(taint: V1Taint): string {
  return taint.value ? `${taint.key}=${taint.value}:${taint.effect}` : `${taint.key}:${taint.effect}`;
}

/** Canonical form of a toleration for comparison: defaults filled in (operator Equal, empty value and effect). */
function canonical(t: V1Toleration): V1Toleration {
  const operator = t.operator ?? 'Equal';
  const out: V1Toleration = { key: t.key ?? '', operator, effect: t.effect ?? '' };
  if (operator === 'Equal') out.value = t.value ?? '';
  if (t.tolerationSeconds !== undefined) out.tolerationSeconds = t.tolerationSeconds;
  return out;
}

function identity(t: V1Toleration): string {
  const c = canonical(t);
  return JSON.stringify([c.key, c.operator, c.value ?? null, c.effect, c.tolerationSeconds ?? null]);
}

/**
 * Removes duplicate tolerations (equal once Kubernetes' defaults are filled in), keeping the first of each.
 *
 * @param tolerations - in priority order.
 * @returns a new array; input objects are copied, not shared.
 */
export function dedupeTolerations(tolerations: readonly V1Toleration[]): V1Toleration[] {
  const seen = new Set<string>();
  const out: V1Toleration[] = [];
  for (const t of tolerations) {
    const id = identity(t);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ ...t });
  }
  return out;
}

/**
 * Whether a toleration tolerates a taint, following `k8s.io/api/core/v1.Toleration.ToleratesTaint`:
 * effects match or the toleration's effect is empty; keys match or the key is empty with operator Exists;
 * operator Exists matches any value, Equal (the default) needs equal values.
 */
export function toleratesTaint(toleration: V1Toleration, taint: V1Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  const operator = toleration.operator ?? 'Equal';
  if (!toleration.key) return operator === 'Exists';
  if (toleration.key !== taint.key) return false;
  if (operator === 'Exists') return true;
  return operator === 'Equal' && (toleration.value ?? '') === (taint.value ?? '');
}

/**
 * The taints among `taints` with one of `effects` that no toleration in `tolerations` tolerates.
 *
 * @param taints - node taints.
 * @param tolerations - pod tolerations.
 * @param effects - effects to consider (default NoSchedule and NoExecute: what stops a pod being placed or kept).
 */
export function untoleratedTaints(
  taints: readonly V1Taint[],
  tolerations: readonly V1Toleration[],
  effects: readonly string[] = ['NoSchedule', 'NoExecute'],
): V1Taint[] {
  return taints.filter((taint) => effects.includes(taint.effect) && !tolerations.some((t) => toleratesTaint(t, taint)));
}

/**
 * Tolerations for a helper pod that must run on one node.
 *
 * With `node-taints`: one toleration per taint currently on the node ({@link tolerationForTaint}), then those of the
 * consumer pods' tolerations that tolerate one of these taints, with `tolerationSeconds` removed (a bounded NoExecute
 * toleration would let the taint-eviction controller evict the helper mid-run: it uses the smallest tolerationSeconds
 * of all matching tolerations), de-duplicated. Consumer tolerations for taints the node does not have are left out:
 * the helper carries no toleration it does not need.
 *
 * @param policy - see {@link TolerationPolicy}.
 * @param nodeTaints - `spec.taints` of the target node, read just now.
 * @param consumerTolerations - tolerations of the pods that mount the claim (empty for deletes).
 */
export function helperTolerations(
  policy: TolerationPolicy,
  nodeTaints: readonly V1Taint[],
  consumerTolerations: readonly V1Toleration[] = [],
): V1Toleration[] {
  switch (policy) {
    case 'none':
      return [];
    case 'all':
      return [{ operator: 'Exists' }];
    case 'node-taints': {
      const fromConsumers = consumerTolerations
        .filter((t) => nodeTaints.some((taint) => toleratesTaint(t, taint)))
        .map((t) => {
          const copy: V1Toleration = { ...t };
          delete copy.tolerationSeconds;
          return copy;
        });
      return dedupeTolerations([...nodeTaints.map(tolerationForTaint), ...fromConsumers]);
    }
  }
}
