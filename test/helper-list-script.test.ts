/**
 * The list helper's script, run for real in a temporary base directory with this machine's `sh`, `du` and `timeout`,
 * and again with busybox's applets when busybox is installed (the helper image is busybox): the entry names first,
 * then the usage of each directory on the same file system, and the incomplete marker when du runs out of time.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import {
  HELPER_SCRIPTS,
  LIST_LINE_BREAK_NAME,
  LIST_USAGE_INCOMPLETE,
  LIST_USAGE_MARKER,
} from '../src/domain/helper-pod.js';
import { parseListOutput } from '../controllers/orphan-report.js';

const root = mkdtempSync(join(tmpdir(), 'hpp-list-script-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const toolsets: [string, string][] = [['host tools', process.env.PATH ?? '/usr/bin:/bin']];
if (has('busybox')) {
  const bin = join(root, 'busybox-bin');
  mkdirSync(bin);
  const busybox = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim();
  for (const applet of ['sh', 'du', 'timeout', 'printf', '[']) symlinkSync(busybox, join(bin, applet));
  toolsets.push(['busybox', `${bin}:${process.env.PATH ?? ''}`]);
}

let n = 0;
function list(path: string, base: string, seconds = '30', extraPath = '') {
  const run = spawnSync('sh', ['-c', HELPER_SCRIPTS.list, 'hostpath-list', base, seconds], {
    encoding: 'utf8',
    env: { PATH: `${extraPath}${path}` },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe.each(toolsets)('the list script with %s', (toolset, path) => {
  it('prints every entry, then the KiB used by each directory that is not a link', () => {
    const base = join(root, `base-${++n}`);
    mkdirSync(join(base, 'ns-a-pvc-1'), { recursive: true });
    writeFileSync(join(base, 'ns-a-pvc-1', 'data'), Buffer.alloc(256 * 1024, 1));
    mkdirSync(join(base, '.hidden'));
    mkdirSync(join(base, 'with space'));
    writeFileSync(join(base, 'a-file'), 'x');
    symlinkSync('/etc', join(base, 'link-to-etc'));
    const run = list(path, base);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    const parsed = parseListOutput(run.stdout);
    expect([...parsed.names].sort()).toEqual(['.hidden', 'a-file', 'link-to-etc', 'ns-a-pvc-1', 'with space']);
    expect([...parsed.usedBytes.keys()].sort()).toEqual(['.hidden', 'ns-a-pvc-1', 'with space']);
    // du counts blocks: at least the 256 KiB written, and a little more for the directory itself.
    expect(parsed.usedBytes.get('ns-a-pvc-1')).toBeGreaterThanOrEqual(256 * 1024);
    expect(parsed.usedBytes.get('ns-a-pvc-1')).toBeLessThan(1024 * 1024);
    expect(parsed.complete).toBe(true);
  });

  it('a name with a line break reads as one marker line and is never measured: it cannot forge a size or a name', () => {
    const base = join(root, `base-${++n}`);
    mkdirSync(join(base, 'ns-a-pvc-1'), { recursive: true });
    writeFileSync(join(base, 'ns-a-pvc-1', 'data'), Buffer.alloc(64 * 1024, 1));
    // Sorted after the real volume, each would otherwise give it a size of its choosing, or read as its name.
    mkdirSync(join(base, 'zz\n99999999\tns-a-pvc-1'));
    mkdirSync(join(base, 'zz\nns-a-pvc-1'));
    writeFileSync(join(base, 'zz-file\nns-b-pvc-2'), 'x');
    const run = list(path, base);
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    const parsed = parseListOutput(run.stdout);
    expect(parsed.names).toEqual(['ns-a-pvc-1', LIST_LINE_BREAK_NAME, LIST_LINE_BREAK_NAME, LIST_LINE_BREAK_NAME]);
    expect([...parsed.usedBytes.keys()]).toEqual(['ns-a-pvc-1']);
    expect(parsed.usedBytes.get('ns-a-pvc-1')).toBeLessThan(1024 * 1024);
    expect(parsed.complete).toBe(true);
  });

  it('an empty base: no names, no sizes, complete', () => {
    const base = join(root, `base-${++n}`);
    mkdirSync(base);
    const run = list(path, base);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(`${LIST_USAGE_MARKER}\n`);
    expect(parseListOutput(run.stdout)).toEqual({ names: [], usedBytes: new Map(), complete: true });
  });

  // Busybox's timeout runs its own du applet, never a du put ahead of it on PATH: the hanging du is shown with the
  // host tools only.
  const withHangingDu = toolset === 'host tools' ? it : it.skip;
  withHangingDu('du out of time: the names are kept and the usage is marked incomplete', () => {
    const base = join(root, `base-${++n}`);
    mkdirSync(join(base, 'slow'), { recursive: true });
    // A du that hangs, ahead of the real one on PATH.
    const slow = join(root, `slow-du-${n}`);
    mkdirSync(slow);
    writeFileSync(join(slow, 'du'), '#!/bin/sh\nsleep 5\n', { mode: 0o755 });
    const run = list(path, base, '1', `${slow}:`);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(`slow\n${LIST_USAGE_MARKER}\n${LIST_USAGE_INCOMPLETE}\n`);
    expect(parseListOutput(run.stdout)).toEqual({ names: ['slow'], usedBytes: new Map(), complete: false });
  });
});
