import type { V1Node, V1NodeSelectorRequirement, V1NodeSelectorTerm, V1Pod } from '@kubernetes/client-node';

/**
 * Whether one node selector requirement matches a set of labels (or fields), as the scheduler's NodeAffinity filter
 * reads it (k8s.io/component-helpers/scheduling/corev1/nodeaffinity): In and NotIn compare the value, Exists and
 * DoesNotExist the key, Gt and Lt compare the value as an integer with the single value given. NotIn and
 * DoesNotExist match a node without the key. An unknown operator or a malformed Gt/Lt matches nothing. Pure.
 */
export function requirementMatches(req: V1NodeSelectorRequirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, req.key);
  const value = has ? labels[req.key] : undefined;
  const values = req.values ?? [];
  switch (req.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'Gt':
    case 'Lt': {
      if (value === undefined || values.length !== 1 || !/^-?\d+$/.test(value) || !/^-?\d+$/.test(values[0] ?? '')) {
        return false;
      }
      const [a, b] = [BigInt(value), BigInt(values[0] ?? '')];
      return req.operator === 'Gt' ? a > b : a < b;
    }
    default:
      return false;
  }
}

/**
 * Whether a node selector term matches a node: all of its matchExpressions against the node's labels and all of its
 * matchFields against `metadata.name` (the only field the scheduler supports). A term with neither matches nothing.
 */
export function termMatches(term: V1NodeSelectorTerm, node: V1Node): boolean {
  const expressions = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (expressions.length === 0 && fields.length === 0) return false;
  const labels = node.metadata?.labels ?? {};
  const nodeFields = { 'metadata.name': node.metadata?.name ?? '' };
  return (
    expressions.every((r) => requirementMatches(r, labels)) &&
    fields.every((r) => r.key === 'metadata.name' && requirementMatches(r, nodeFields))
  );
}

/**
 * Why the scheduler would not place a pod on a node for its node selection alone: `spec.nodeSelector` (every label
 * equal) and the required node affinity (any of its terms matches). Taints, resources and other filters are not
 * considered. Pure.
 *
 * @returns undefined when the pod may run on the node; otherwise a short reason naming the pod's field, e.g.
 *   `nodeSelector disktype=ssd` or `required node affinity`.
 */
export function nodeSelectionMismatch(pod: V1Pod, node: V1Node): string | undefined {
  const labels = node.metadata?.labels ?? {};
  const selector = pod.spec?.nodeSelector ?? {};
  const unmet = Object.entries(selector).filter(([k, v]) => labels[k] !== v);
  if (unmet.length > 0) return `nodeSelector ${unmet.map(([k, v]) => `${k}=${v}`).join(', ')}`;
  const required = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required !== undefined && !(required.nodeSelectorTerms ?? []).some((t) => termMatches(t, node))) {
    return 'required node affinity';
  }
  return undefined;
}
