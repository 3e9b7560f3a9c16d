import { describe, expect, it } from '@jest/globals';
import {
  ADDON_OWNERSHIP,
  createHelperArguments,
  describeOwnership,
  formatMode,
  needsChown,
  parseId,
  parseMode,
} from '../src/domain/ownership.js';

const ID_REASON = 'must be a decimal integer from 0 to 4294967294 (a numeric id, not a name)';
const MODE_REASON = 'must be an octal mode of at most 4 digits, e.g. "0770" or "2775"';

describe('parseId', () => {
  it.each([
    ['0', 0],
    ['1000', 1000],
    ['65534', 65534],
    ['4294967294', 4294967294],
  ])('accepts %j', (value, expected) => {
    expect(parseId(value)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['empty', ''],
    ['negative', '-1'],
    ['a plus sign', '+1000'],
    ['a leading zero', '01000'],
    ['an octal-looking mode', '0750'],
    ['(uid_t)-1, which chown reads as "leave it"', '4294967295'],
    ['beyond 32 bits', '4294967296'],
    ['far beyond', '1'.repeat(400)],
    ['a decimal point', '1000.0'],
    ['an exponent', '1e3'],
    ['hexadecimal', '0x3e8'],
    ['a user name', 'nobody'],
    ['spaces', ' 1000'],
    ['a trailing newline', '1000\n'],
    ['uid:gid in one', '1000:2000'],
    ['non-ASCII digits', '١٠٠٠'],
  ])('refuses %s', (_name, value) => {
    expect(parseId(value)).toEqual({ ok: false, reason: ID_REASON });
  });
});

describe('parseMode', () => {
  it.each([
    ['0770', 0o770],
    ['770', 0o770],
    ['2775', 0o2775],
    ['2770', 0o2770],
    ['1777', 0o1777],
    ['0777', 0o777],
    ['0', 0],
    ['7777', 0o7777],
  ])('accepts %j', (value, expected) => {
    expect(parseMode(value)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['empty', ''],
    ['five digits', '02770'],
    ['a digit 8', '0780'],
    ['a digit 9', '9'],
    ['an 0o prefix', '0o770'],
    ['hexadecimal', '0x1ff'],
    ['a symbolic mode', 'u+rwx'],
    ['a symbolic assignment', 'a=rwx'],
    ['a sign', '+770'],
    ['a negative number', '-770'],
    ['spaces', ' 770'],
    ['a trailing newline', '770\n'],
  ])('refuses %s', (_name, value) => {
    expect(parseMode(value)).toEqual({ ok: false, reason: MODE_REASON });
  });
});

describe('createHelperArguments', () => {
  it.each([
    ['nothing set: chmod 00777 and no check (the addon)', ADDON_OWNERSHIP, ['00777', '', '', '']],
    ['uid, gid and a setgid mode', { uid: 1000, gid: 2000, mode: 0o2770 }, ['02770', '1000', '2000', '2770']],
    [
      'uid only: the default mode, checked',
      { uid: 1000, gid: undefined, mode: undefined },
      ['00777', '1000', '', '777'],
    ],
    ['gid only', { uid: undefined, gid: 0, mode: undefined }, ['00777', '', '0', '777']],
    ['mode only', { uid: undefined, gid: undefined, mode: 0o750 }, ['00750', '', '', '750']],
    ['mode 0', { uid: undefined, gid: undefined, mode: 0 }, ['00000', '', '', '0']],
    [
      'the largest id',
      { uid: 4294967294, gid: 4294967294, mode: 0o7777 },
      ['07777', '4294967294', '4294967294', '7777'],
    ],
  ] as const)('%s', (_name, ownership, expected) => {
    expect(createHelperArguments(ownership)).toEqual(expected);
  });
});

describe('needsChown, describeOwnership, formatMode', () => {
  it.each([
    [ADDON_OWNERSHIP, false, ''],
    [{ uid: undefined, gid: undefined, mode: 0o770 }, false, 'mode 0770'],
    [{ uid: 0, gid: undefined, mode: undefined }, true, 'uid 0'],
    [{ uid: undefined, gid: 2000, mode: undefined }, true, 'gid 2000'],
    [{ uid: 1000, gid: 2000, mode: 0o2770 }, true, 'uid 1000, gid 2000, mode 2770'],
  ])('%j', (ownership, chown, description) => {
    expect(needsChown(ownership)).toBe(chown);
    expect(describeOwnership(ownership)).toBe(description);
  });

  it('formats modes as four octal digits', () => {
    expect([0o777, 0o2770, 0, 0o7777, 0o1777].map(formatMode)).toEqual(['0777', '2770', '0000', '7777', '1777']);
  });
});
