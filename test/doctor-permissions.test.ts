import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parseAllDocuments } from 'yaml';
import { REQUIRED_PERMISSIONS } from '../src/cli/doctor.js';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

describe('doctor REQUIRED_PERMISSIONS', () => {
  it('are exactly the verbs manifests/base/rbac.yaml grants (ClusterRole cluster-wide, Role in the namespace)', () => {
    const docs = parseAllDocuments(
      readFileSync(join(import.meta.dirname, '..', 'manifests/base/rbac.yaml'), 'utf8'),
    ).map((d) => d.toJS() as { kind: string; rules?: Rule[] });
    const granted = docs.flatMap((d) =>
      (d.rules ?? []).flatMap((r) =>
        r.resources.flatMap((resource) =>
          r.verbs.map((verb) => `${r.apiGroups[0] ?? ''} ${resource} ${verb} ${d.kind === 'Role'}`),
        ),
      ),
    );
    const checked = REQUIRED_PERMISSIONS.map(
      ([group, resource, verb, namespaced]) => `${group} ${resource} ${verb} ${namespaced}`,
    );
    expect([...checked].sort()).toEqual([...granted].sort());
  });
});
