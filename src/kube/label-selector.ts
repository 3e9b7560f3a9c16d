/**
 * Label selectors in their string form (`app=x,tier!=db,env in (a,b),!legacy`), parsed and matched as the API
 * server does (k8s.io/apimachinery/pkg/labels), so an informer can apply its selector to list results too.
 */

/** One parsed requirement. */
export type LabelRequirement =
  | { readonly key: string; readonly op: 'in'; readonly values: readonly string[] }
  | { readonly key: string; readonly op: 'notin'; readonly values: readonly string[] }
  | { readonly key: string; readonly op: 'exists' }
  | { readonly key: string; readonly op: '!' };

/** Splits at commas that are not inside parentheses. */
function splitTopLevel(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

const KEY = '([A-Za-z0-9][-A-Za-z0-9_./]*)';

/**
 * Parses a label selector string.
 *
 * @param selector - e.g. `app.kubernetes.io/managed-by=hostpath-provisioner,operation in (create,delete)`; '' = all.
 * @returns the requirements (all must hold).
 * @throws Error naming the part that cannot be parsed.
 */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  return splitTopLevel(selector).map((part) => {
    let m = new RegExp(`^${KEY}\\s*(==|=|!=)\\s*([-A-Za-z0-9_.]*)$`).exec(part);
    if (m) {
      const [, key = '', op, value = ''] = m;
      return op === '!=' ? { key, op: 'notin', values: [value] } : { key, op: 'in', values: [value] };
    }
    m = new RegExp(`^${KEY}\\s+(in|notin)\\s*\\(([^)]*)\\)$`).exec(part);
    if (m) {
      const [, key = '', op, list = ''] = m;
      const values = list.split(',').map((v) => v.trim());
      return op === 'in' ? { key, op: 'in', values } : { key, op: 'notin', values };
    }
    m = new RegExp(`^(!?)\\s*${KEY}$`).exec(part);
    if (m) {
      const [, bang, key = ''] = m;
      return bang === '!' ? { key, op: '!' } : { key, op: 'exists' };
    }
    throw new Error(`cannot parse label selector part ${JSON.stringify(part)}`);
  });
}

/**
 * @param requirements - from {@link parseLabelSelector}.
 * @param labels - an object's labels.
 * @returns whether every requirement holds (`notin` and `!=` also hold when the label is absent, as upstream).
 */
export function matchesLabelSelector(
  requirements: readonly LabelRequirement[],
  labels: Readonly<Record<string, string>>,
): boolean {
  return requirements.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const value = labels[r.key];
    switch (r.op) {
      case 'exists':
        return has;
      case '!':
        return !has;
      case 'in':
        return has && value !== undefined && r.values.includes(value);
      case 'notin':
        return !has || value === undefined || !r.values.includes(value);
    }
  });
}
