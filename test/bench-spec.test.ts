import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { loadSpec } from '../bench/provisioners.js';

const file = (text: string): string => {
  const path = join(mkdtempSync(join(tmpdir(), 'bench-spec-')), 'peer.yaml');
  writeFileSync(path, text);
  return path;
};

describe('loadSpec', () => {
  it('reads the example peer file', () => {
    expect(loadSpec('bench/peers/local-path-provisioner.yaml')).toMatchObject({
      name: 'local-path',
      provisioner: 'rancher.io/local-path',
      baseDir: '/var/snap/hpp-bench/local-path',
      ready: 'Started provisioner controller',
    });
  });

  it('reads a minimal file', () => {
    expect(loadSpec(file('name: p\nprovisioner: x.io/p\nbaseDir: /d\ncommand: [p]\nready: up\n'))).toEqual({
      name: 'p',
      provisioner: 'x.io/p',
      baseDir: '/d',
      command: ['p'],
      ready: 'up',
    });
  });

  it.each([
    { text: 'name: P_1\nprovisioner: x\nbaseDir: /d\ncommand: [p]\nready: up\n', problem: 'name: a DNS label' },
    { text: 'name: p\nprovisioner: x\nbaseDir: d/\ncommand: [p]\nready: up\n', problem: 'baseDir: an absolute path' },
    { text: 'name: p\nprovisioner: x\nbaseDir: /d\ncommand: []\nready: up\n', problem: 'command:' },
    { text: 'name: p\nprovisioner: x\nbaseDir: /d\ncommand: [p]\n', problem: 'ready:' },
    { text: 'name: p\nprovisioner: x\nbaseDir: /d\ncommand: [p]\nready: up\nworkers: 3\n', problem: 'workers' },
    { text: '- a list\n', problem: '(file)' },
  ])('names what is wrong: $problem', ({ text, problem }) => {
    expect(() => loadSpec(file(text))).toThrow(problem);
  });
});
