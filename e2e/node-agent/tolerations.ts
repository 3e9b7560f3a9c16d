/** Taint/toleration matching, as in k8s.io/api/core/v1 `Toleration.ToleratesTaint`. */

/** The fields of a `V1Taint` that matching looks at. */
export interface Taint {
  key: string;
  value?: string | undefined;
  effect: string;
}

/** The fields of a `V1Toleration` that matching looks at. */
export interface Toleration {
  key?: string | undefined;
  operator?: string | undefined;
  value?: string | undefined;
  effect?: string | undefined;
}

/**
 * Whether one toleration tolerates one taint: effects match (an empty toleration effect matches all), keys match
 * (an empty key matches all — valid only with operator Exists), and for operator Equal (the default) the values
 * are equal; Exists ignores the value. Unknown operators tolerate nothing.
 */
export function toleratesTaint(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.key && toleration.key !== taint.key) return false;
  switch (toleration.operator ?? 'Equal') {
    case 'Equal':
    case '':
      return (toleration.value ?? '') === (taint.value ?? '');
    case 'Exists':
      return true;
    default:
      return false;
  }
}

/**
 * The node's NoExecute taints that no toleration of the pod tolerates. The kubelet refuses to admit a pod when
 * this list is not empty (pkg/kubelet/lifecycle/predicate.go), whatever `tolerationSeconds` says.
 *
 * @param tolerations the pod's `spec.tolerations` (possibly undefined).
 * @param taints the node's current `spec.taints` (possibly undefined).
 */
export function untoleratedNoExecuteTaints(
  tolerations: readonly Toleration[] | undefined,
  taints: readonly Taint[] | undefined,
): Taint[] {
  return (taints ?? []).filter(
    (taint) => taint.effect === 'NoExecute' && !(tolerations ?? []).some((t) => toleratesTaint(t, taint)),
  );
}
