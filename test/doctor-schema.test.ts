import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { formatJson } from '../src/cli/doctor.js';
import {
  diagnoseClasses,
  diagnoseHelperNamespace,
  diagnoseHelperPriorityClass,
  diagnoseHelperQuotas,
  diagnoseLease,
  diagnoseNode,
  diagnoseReadiness,
  type Finding,
} from '../src/domain/diagnosis.js';

const schema = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'docs/doctor.schema.json'), 'utf8')) as object;
const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema);
const check = (output: string) => {
  const valid = validate(JSON.parse(output));
  return { valid, errors: validate.errors ?? [] };
};

const target = { pod: 'hpp-1', namespace: 'hpp', url: 'http://10.1.0.5:9090/readyz' };
const healthyFindings: Finding[] = [
  diagnoseLease({ spec: { holderIdentity: 'p-1', renewTime: new Date(1000), leaseDurationSeconds: 15 } }, 2000),
  diagnoseReadiness(target, { kind: 'answer', statusCode: 200, body: 'ok: leader\n' }),
  diagnoseReadiness(target, { kind: 'error', message: 'no answer within 2 s' }),
  diagnoseHelperNamespace({ metadata: { name: 'hpp' } }),
  diagnoseHelperPriorityClass('system-node-critical', { unreadable: 'forbidden' }),
  ...diagnoseHelperQuotas('hpp', { items: [] }, 'system-node-critical'),
  ...diagnoseClasses(
    [
      {
        metadata: { name: 'microk8s-hostpath', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
        provisioner: 'microk8s.io/hostpath',
      },
    ],
    ['microk8s.io/hostpath'],
    '/var/lib/hpp',
  ),
  diagnoseNode(
    { metadata: { name: 'w1' }, status: { conditions: [{ type: 'Ready', status: 'True' }] } },
    'node-taints',
  ),
];
const brokenFindings: Finding[] = [
  diagnoseLease(undefined, 0, ['hpp']),
  diagnoseHelperNamespace({ metadata: { name: 'hpp', labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } } }),
  diagnoseHelperPriorityClass('missing', { items: [] }),
  diagnoseNode({ metadata: { name: 'w2' }, status: { conditions: [{ type: 'Ready', status: 'False' }] } }, 'none'),
];

describe('docs/doctor.schema.json', () => {
  it('is a valid draft 2020-12 schema under ajv strict mode', () => {
    expect(typeof validate).toBe('function');
  });

  it.each([
    ['healthy, with ok and info findings', healthyFindings, true],
    ['needs attention', [...healthyFindings, ...brokenFindings], false],
    ['no findings at all', [], true],
  ])('describes the real output: %s', (_n, findings, healthy) => {
    const output = formatJson(findings);
    expect(check(output)).toEqual({ valid: true, errors: [] });
    expect((JSON.parse(output) as { healthy: boolean }).healthy).toBe(healthy);
  });

  it('covers every finding status and the optional fix', () => {
    const findings = [...healthyFindings, ...brokenFindings];
    expect(new Set(findings.map((f) => f.status))).toEqual(new Set(['ok', 'info', 'attention']));
    expect(findings.some((f) => f.fix !== undefined)).toBe(true);
  });

  it('names exactly the statuses a Finding can have', () => {
    // A Record over Finding['status'] fails to compile when a status is added to the type and not here.
    const statuses: Record<Finding['status'], true> = { ok: true, attention: true, info: true };
    const defs = (schema as { $defs: { finding: { properties: { status: { enum: string[] } } } } }).$defs;
    expect([...defs.finding.properties.status.enum].sort()).toEqual(Object.keys(statuses).sort());
  });

  it.each<[string, unknown]>([
    ['an unknown status', { healthy: true, findings: [{ subject: 's', status: 'warning', summary: 'x' }] }],
    ['an extra field', { healthy: true, findings: [{ subject: 's', status: 'ok', summary: 'x', extra: 1 }] }],
    ['no summary', { healthy: true, findings: [{ subject: 's', status: 'ok' }] }],
    [
      'healthy with an attention finding',
      { healthy: true, findings: [{ subject: 's', status: 'attention', summary: 'x' }] },
    ],
    ['unhealthy without one', { healthy: false, findings: [{ subject: 's', status: 'info', summary: 'x' }] }],
  ])('rejects %s', (_n, report) => {
    expect(check(JSON.stringify(report)).valid).toBe(false);
  });
});
