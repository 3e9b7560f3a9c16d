import { describe, expect, it } from '@jest/globals';
import { formatFindings, terminalSafe } from '../src/cli/doctor.js';

describe('terminalSafe, formatFindings (text a namespace user wrote, on an admin terminal)', () => {
  it.each([
    ['plain text', 'node w1 is Ready', 'node w1 is Ready'],
    ['an OSC title and a screen clear', 'x\u001b]0;PWNED\u0007\u001b[2J', 'x\\u{1b}]0;PWNED\\u{7}\\u{1b}[2J'],
    ['NUL, CR and a line break', 'a\u0000b\rc\nd', 'a\\u{0}b\\u{d}c\\u{a}d'],
    ['DEL and a C1 CSI', 'a\u007fb\u009bc', 'a\\u{7f}b\\u{9b}c'],
    ['unicode stays', 'données ✓', 'données ✓'],
  ])('%s', (_n, text, shown) => {
    expect(terminalSafe(text)).toBe(shown);
  });

  it('prints no control character whatever a finding carries', () => {
    const out = formatFindings([
      {
        subject: 'claim dr2/evil',
        status: 'attention',
        summary: 'selected node x\u001b]0;PWNED\u0007\u001b[2J\u001b[31mfake OK line does not exist',
        fix: 'remove the annotation\u001b[0m',
      },
    ]);
    // Only the line breaks formatFindings itself puts between lines remain.
    // eslint-disable-next-line no-control-regex
    expect(out.replace(/\n/g, '')).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(out).toContain('\\u{1b}[2J');
  });

  it('fits 80 columns even with a 253-character name: a word longer than a line is cut across lines', () => {
    const node = `n${'a'.repeat(251)}z`;
    const out = formatFindings([
      { subject: `node ${node}`, status: 'attention', summary: 'not Ready', fix: `uncordon ${node} or replace it` },
      { subject: 'claim ns/short', status: 'ok', summary: 'Bound' },
    ]);
    const lines = out.trimEnd().split('\n');
    expect(lines.filter((l) => l.length > 80)).toEqual([]);
    // The long word goes to a line of its own, then is cut at the line's width.
    expect(lines).toEqual([
      '!! node',
      `   ${node.slice(0, 77)}`,
      `   ${node.slice(77, 154)}`,
      `   ${node.slice(154, 231)}`,
      `   ${node.slice(231)}: not Ready`,
      '   fix: uncordon',
      `        ${node.slice(0, 72)}`,
      `        ${node.slice(72, 144)}`,
      `        ${node.slice(144, 216)}`,
      `        ${node.slice(216)} or replace it`,
      'OK claim ns/short: Bound',
      '1 finding(s) need attention',
    ]);
    // Nothing is lost: the name reads whole once the cuts are joined.
    expect(
      lines
        .slice(1, 5)
        .map((l) => l.slice(3))
        .join(''),
    ).toBe(`${node}: not Ready`);
  });
});
