import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { dnsLabel, helperPodName, volumeDirectoryName, volumeNameForClaim } from '../src/domain/names.js';

const uid = '0f8a3c52-8d0e-4c7b-9d55-1a2b3c4d5e6f';
const pv = volumeNameForClaim(uid);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

describe('names', () => {
  it('names the PV after the claim uid', () => {
    expect(pv).toBe('pvc-0f8a3c52-8d0e-4c7b-9d55-1a2b3c4d5e6f');
  });

  it.each([
    ['create', 'hostpath-create-pvc-0f8a3c52-8d0e-4c7b-9d55-1a2b3c4d5e6f'],
    ['delete', 'hostpath-delete-pvc-0f8a3c52-8d0e-4c7b-9d55-1a2b3c4d5e6f'],
  ] as const)('helper for %s of a pvc-<uid> volume keeps the readable name', (op, expected) => {
    expect(helperPodName(op, pv)).toBe(expected);
  });

  it('cuts a long hand-made volume name to 63 characters with a hash', () => {
    const long = `my-volume-${'x'.repeat(240)}`;
    const name = helperPodName('delete', long);
    expect(name).toHaveLength(63);
    expect(name).toMatch(DNS_LABEL);
    expect(name.startsWith('hostpath-delete-my-volume-xxx')).toBe(true);
    expect(helperPodName('delete', `${long}y`)).not.toBe(name);
  });

  it.each([
    ['kube-system', 'data', 'kube-system-data-' + pv],
    ['default', 'registry-claim', 'default-registry-claim-' + pv],
  ])('directory of %s/%s is the addon layout', (ns, claim, expected) => {
    expect(volumeDirectoryName(ns, claim, pv)).toBe(expected);
  });

  it('keeps a 63-character namespace and a 253-character claim under 255 bytes, unique, ending in the PV name', () => {
    const ns = 'n'.repeat(63);
    const a = volumeDirectoryName(ns, 'c'.repeat(253), pv);
    const b = volumeDirectoryName(ns, 'c'.repeat(252) + 'd', pv);
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(255);
    expect(a.endsWith(pv)).toBe(true);
    expect(a).not.toBe(b);
  });

  it('never splits a multi-byte character', () => {
    const name = volumeDirectoryName('ns', 'é'.repeat(200), pv);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
    expect(name).not.toContain('\ufffd');
    expect(Buffer.from(name, 'utf8').toString('utf8')).toBe(name);
  });

  it.each([
    ['already valid', 'hpp-gpu', 'hpp-gpu'],
    ['upper case is folded and gets a hash', 'Node-A', 'node-a-'],
  ])('dnsLabel: %s', (_n, input, prefix) => {
    const out = dnsLabel(input);
    expect(out.startsWith(prefix)).toBe(true);
    expect(out).toMatch(DNS_LABEL);
  });

  it('dnsLabel is a valid label of at most 63 characters for any input, and injective on changed inputs', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.string({ maxLength: 300 }), (a, b) => {
        const la = dnsLabel(a);
        expect(la.length).toBeLessThanOrEqual(63);
        expect(la).toMatch(DNS_LABEL);
        if (a !== b) expect(la === dnsLabel(b)).toBe(false);
      }),
    );
  });

  it('directory names stay within 255 bytes and end with the PV name for any namespace and claim', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.string({ maxLength: 400 }), (ns, claim) => {
        const name = volumeDirectoryName(ns, claim, pv);
        expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
        expect(name.endsWith(pv)).toBe(true);
      }),
    );
  });
});
