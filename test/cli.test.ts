import { describe, expect, it } from '@jest/globals';
import { buildProgram } from '../src/cli/program.js';
import { readPackageInfo } from '../src/cli/package-info.js';
import { onStoppedLeading } from '../src/cli/run.js';
import { pino } from 'pino';

describe('leadership end', () => {
  it.each([
    ['lost while running', 'lost', false, [1]],
    ['lost during a SIGTERM shutdown', 'lost', true, [1]],
    ['released at the end of a shutdown', 'released', true, []],
  ] as const)('%s', (_what, reason, shuttingDown, exits) => {
    const codes: number[] = [];
    onStoppedLeading(
      pino({ level: 'silent' }),
      () => shuttingDown,
      (code) => codes.push(code),
    )(reason);
    expect(codes).toEqual(exits);
  });
});

describe('CLI', () => {
  it('reads its name and a semver version from package.json', () => {
    const info = readPackageInfo(import.meta.url);
    expect(info.name).toBe('hostpath-provisioner');
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('prints the version for --version', async () => {
    let out = '';
    const program = buildProgram()
      .exitOverride()
      .configureOutput({ writeOut: (s) => (out += s) });
    await expect(program.parseAsync(['node', 'hpp', '--version'])).rejects.toMatchObject({
      code: 'commander.version',
    });
    expect(out.trim()).toBe(readPackageInfo(import.meta.url).version);
  });
});
