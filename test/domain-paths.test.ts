import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { checkBaseDirectory, checkRemovablePath } from '../src/domain/paths.js';

const DEFAULT = '/var/snap/microk8s/common/default-storage';
const PV = 'pvc-0f8a3c52-8d0e-4c7b-9d55-1a2b3c4d5e6f';

describe('checkBaseDirectory', () => {
  const table: [string, string, string | null][] = [
    ['the addon default', DEFAULT, null],
    ['a custom absolute path', '/mnt/usb', null],
    ['unicode', '/mnt/données', null],
    ['root', '/', 'is the root directory /'],
    ['several slashes', '///', 'is the root directory /'],
    ['relative', 'data/rel', 'is not an absolute path'],
    ['empty', '', 'is empty'],
    ['escape with ..', `${DEFAULT}/../../../../etc`, 'contains ".."'],
    ['dot component', '/mnt/./usb', 'contains "."'],
    ['double slash', '/mnt//usb', 'is not clean (empty component or trailing slash)'],
    ['trailing slash', '/mnt/usb/', 'is not clean (empty component or trailing slash)'],
    ['newline', '/mnt/usb\n/etc', 'contains control characters'],
    ['NUL', '/mnt/usb\u0000', 'contains control characters'],
    ['a component of 255 bytes', `/srv/${'a'.repeat(255)}`, null],
    ['a component of 256 bytes', `/srv/${'a'.repeat(256)}`, 'has a component longer than 255 bytes'],
    ['a component of 128 two-byte characters', `/srv/${'é'.repeat(128)}`, 'has a component longer than 255 bytes'],
    ['too long as a whole', `/${'a/'.repeat(1920)}a`, 'is longer than 3840 bytes (no room for volume directories)'],
  ];
  it.each(table)('%s', (_name, dir, reason) => {
    expect(checkBaseDirectory(dir)).toEqual(reason === null ? { ok: true, path: dir } : { ok: false, reason });
  });
});

describe('checkRemovablePath', () => {
  const bases = [DEFAULT, '/mnt/usb'];
  const ok = (path: string, base: string) => ({ ok: true as const, path, base, leaf: path.slice(base.length + 1) });
  const table: [string, string, ReturnType<typeof checkRemovablePath>][] = [
    ['our layout', `${DEFAULT}/default-data-${PV}`, ok(`${DEFAULT}/default-data-${PV}`, DEFAULT)],
    ['a pvDir base', `/mnt/usb/ns-c-${PV}`, ok(`/mnt/usb/ns-c-${PV}`, '/mnt/usb')],
    ['root', '/', { ok: false, reason: 'path "/" is the root directory /' }],
    ['a base itself', DEFAULT, { ok: false, reason: `path ${DEFAULT} is a base directory itself` }],
    [
      'outside the bases',
      '/srv/important',
      { ok: false, reason: `path /srv/important is not directly under a known base directory (${bases.join(', ')})` },
    ],
    [
      'nested deeper',
      `${DEFAULT}/x/${PV}`,
      {
        ok: false,
        reason: `path ${DEFAULT}/x/${PV} is not directly under a known base directory (${bases.join(', ')})`,
      },
    ],
    ['through ..', `${DEFAULT}/../${PV}`, { ok: false, reason: `path "${DEFAULT}/../${PV}" contains ".."` }],
    [
      'name without the PV',
      `${DEFAULT}/default-data`,
      { ok: false, reason: `directory name default-data does not end with "-" and the volume name ${PV}` },
    ],
    ['relative', `default-data-${PV}`, { ok: false, reason: `path "default-data-${PV}" is not an absolute path` }],
  ];
  it.each(table)('%s', (_name, path, expected) => {
    expect(checkRemovablePath(path, PV, bases)).toEqual(expected);
  });

  it.each([
    ['a hand-made PV named like its directory', '/mnt/usb/keepme', 'keepme'],
    ['a short PV name matching the end of a neighbour', `/mnt/usb/ns-c-${PV}`, '6f'],
    ['the PV name alone', `/mnt/usb/${PV}`, PV],
  ])('refuses %s', (_n, path, volumeName) => {
    expect(checkRemovablePath(path, volumeName, bases).ok).toBe(false);
  });

  it('refuses a base directory even when it also looks like a child of another base', () => {
    expect(checkRemovablePath(`/mnt/${PV}`, PV, ['/mnt', `/mnt/${PV}`]).ok).toBe(false);
  });

  it('never accepts a path outside the known bases, whatever the input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (suffix) => {
        const result = checkRemovablePath(`${DEFAULT}/${suffix}`, PV, bases);
        if (result.ok) {
          expect(result.base).toBe(DEFAULT);
          expect(result.leaf.includes('/')).toBe(false);
          expect(['.', '..', '']).not.toContain(result.leaf);
          expect(result.leaf.endsWith(PV)).toBe(true);
        }
      }),
    );
  });
});
