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
});
