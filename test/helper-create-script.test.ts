/**
 * The create helper's script, run for real in a temporary directory with this machine's `sh`, `mkdir`, `chmod`,
 * `chown` and `stat` — and again with busybox's applets when busybox is installed (the helper image is busybox).
 * Cases that chown to other users need root; the ones that show what the helper can do with its reduced capabilities
 * (DAC_OVERRIDE, FOWNER, CHOWN) also need `setpriv`, as the e2e node stand-in uses. Cases that cannot run here are
 * skipped, not passed.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { HELPER_SCRIPTS } from '../src/domain/helper-pod.js';
import { createHelperArguments, type DirectoryOwnership } from '../src/domain/ownership.js';

const root = mkdtempSync(join(tmpdir(), 'hpp-create-script-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const isRoot = process.getuid?.() === 0;
const canDropCapabilities = isRoot && has('setpriv');

/** Directories of PATH entries for each tool set: the machine's own, and busybox applets when available. */
const toolsets: [string, string][] = [['host tools', process.env.PATH ?? '/usr/bin:/bin']];
if (has('busybox')) {
  const bin = join(root, 'busybox-bin');
  mkdirSync(bin);
  const busybox = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim();
  for (const applet of ['sh', 'mkdir', 'chmod', 'chown', 'stat']) symlinkSync(busybox, join(bin, applet));
  toolsets.push(['busybox', `${bin}:${process.env.PATH ?? ''}`]);
}

const none: DirectoryOwnership = { uid: undefined, gid: undefined, mode: undefined };
let n = 0;

/** Runs the create script on `dir` as the helper would (optionally with only `capabilities`). */
function create(path: string, dir: string, ownership: DirectoryOwnership, capabilities?: string[]) {
  const argv = ['sh', '-c', HELPER_SCRIPTS.create, 'hostpath-create', dir, ...createHelperArguments(ownership)];
  const [cmd, ...args] = capabilities
    ? [
        'setpriv',
        '--inh-caps=-all',
        `--bounding-set=${['-all', ...capabilities.map((c) => `+${c.toLowerCase()}`)].join(',')}`,
        '--no-new-privs',
        '--',
        ...argv,
      ]
    : argv;
  const run = spawnSync(cmd!, args, { encoding: 'utf8', env: { PATH: path } });
  return { status: run.status, stderr: run.stderr };
}

function state(dir: string): { mode: string; uid: number; gid: number } {
  const st = statSync(dir);
  return { mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid };
}

describe.each(toolsets)('the create script with %s', (_name, path) => {
  const fresh = () => {
    const base = join(root, `base-${++n}`);
    mkdirSync(base);
    return { base, dir: join(base, 'ns-claim-pvc-1') };
  };

  it('makes the directory 0777 by default and fixes an existing 0755 one, with no chown', () => {
    const { dir } = fresh();
    expect(create(path, dir, none)).toEqual({ status: 0, stderr: '' });
    expect(state(dir).mode).toBe('777');
    chmodSync(dir, 0o755);
    expect(create(path, dir, none).status).toBe(0);
    expect(state(dir).mode).toBe('777');
  });

  it('applies a mode, checks it, and reaches the same state when run again', () => {
    const { dir } = fresh();
    const ownership = { ...none, mode: 0o750 };
    expect(create(path, dir, ownership)).toEqual({ status: 0, stderr: '' });
    expect(state(dir).mode).toBe('750');
    expect(create(path, dir, ownership)).toEqual({ status: 0, stderr: '' });
    expect(state(dir).mode).toBe('750');
  });

  it('refuses a symbolic link and leaves its target alone', () => {
    const { base, dir } = fresh();
    const target = join(base, 'elsewhere');
    mkdirSync(target, { mode: 0o700 });
    chmodSync(target, 0o700);
    writeFileSync(join(target, 'f'), 'x');
    symlinkSync(target, dir);
    const run = create(path, dir, { uid: isRoot ? 1000 : undefined, gid: undefined, mode: 0o777 });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('is a symbolic link');
    expect(state(target)).toMatchObject({ mode: '700', uid: process.getuid?.() });
  });

  (isRoot ? it : it.skip)('as root: chowns to uid and gid, keeping a setgid mode, twice alike', () => {
    const { dir } = fresh();
    const ownership = { uid: 1000, gid: 2000, mode: 0o2770 };
    expect(create(path, dir, ownership)).toEqual({ status: 0, stderr: '' });
    expect(state(dir)).toEqual({ mode: '2770', uid: 1000, gid: 2000 });
    expect(create(path, dir, ownership)).toEqual({ status: 0, stderr: '' });
    expect(state(dir)).toEqual({ mode: '2770', uid: 1000, gid: 2000 });
    expect(create(path, dir, { ...none, gid: 3000 }).status).toBe(0);
    expect(state(dir)).toEqual({ mode: '777', uid: 1000, gid: 3000 });
  });

  (canDropCapabilities ? it : it.skip)(
    'with DAC_OVERRIDE, FOWNER and CHOWN only: a re-run over a finished 2770 directory keeps its setgid bit',
    () => {
      const { dir } = fresh();
      const caps = ['DAC_OVERRIDE', 'FOWNER', 'CHOWN'];
      const ownership = { uid: 1000, gid: 2000, mode: 0o2770 };
      expect(create(path, dir, ownership, caps)).toEqual({ status: 0, stderr: '' });
      // Root outside group 2000 without CAP_FSETID: a plain chmod 02770 here would drop the setgid bit.
      expect(create(path, dir, ownership, caps)).toEqual({ status: 0, stderr: '' });
      expect(state(dir)).toEqual({ mode: '2770', uid: 1000, gid: 2000 });
    },
  );

  (canDropCapabilities ? it : it.skip)('without CHOWN the chown is refused and the helper fails', () => {
    const { dir } = fresh();
    const run = create(path, dir, { uid: 1000, gid: 2000, mode: 0o2770 }, ['DAC_OVERRIDE', 'FOWNER']);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/Operation not permitted/);
  });

  (canDropCapabilities ? it : it.skip)(
    'a mode the kernel does not apply as asked fails with both modes in stderr',
    () => {
      // A setgid base of group 3000 gives the new directory group 3000; with only uid set the group stays, and root
      // outside it without CAP_FSETID cannot set the setgid bit: the check says so instead of succeeding quietly.
      const { base, dir } = fresh();
      spawnSync('chown', [':3000', base]);
      chmodSync(base, 0o2777);
      const run = create(path, dir, { uid: 1000, gid: undefined, mode: 0o2770 }, ['DAC_OVERRIDE', 'FOWNER', 'CHOWN']);
      expect(run.status).toBe(1);
      expect(run.stderr).toContain(
        'has mode 770, owner 1000:3000 after chmod and chown, not mode 2770, owner 1000:3000',
      );
    },
  );
});
