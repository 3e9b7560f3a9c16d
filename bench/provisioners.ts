/**
 * The provisioners the benchmark knows by name, and the loading of one described in a file (a peer binary the user
 * has): see {@link ProvisionerSpec} for the fields and placeholders, and bench/peers/ for an example.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import type { ProvisionerSpec } from './run.js';

/** This project with its defaults (16 workers, QPS 20 / burst 40, leader election on), as a user runs it. */
export const THIS_PROJECT: ProvisionerSpec = {
  name: 'hostpath-provisioner',
  provisioner: 'bench.hostpath-provisioner',
  baseDir: '/var/snap/hpp-bench/hostpath-provisioner',
  command: [
    'node',
    '{{repo}}/dist/src/cli/main.js',
    'run',
    '--kubeconfig',
    '{{kubeconfig}}',
    '--namespace',
    '{{namespace}}',
    '--node-name',
    'bench',
    '--provisioner-names',
    '{{provisioner}}',
    '--pv-dir',
    '{{baseDir}}',
    '--lease-name',
    '{{class}}',
    '--metrics-address',
    '127.0.0.1:{{port}}',
  ],
  env: { LOG_LEVEL: 'info' },
  ready: '"became leader"',
};

/** The lower bound (bench/lower-bound.ts): the API writes per claim and nothing else. */
export const LOWER_BOUND: ProvisionerSpec = {
  name: 'lower-bound',
  provisioner: 'bench.lower-bound',
  baseDir: '/var/snap/hpp-bench/lower-bound',
  command: [
    'node',
    '{{repo}}/dist/bench/lower-bound.js',
    '--kubeconfig',
    '{{kubeconfig}}',
    '--namespace',
    '{{namespace}}',
    '--class',
    '{{class}}',
    '--base-dir',
    '{{baseDir}}',
  ],
  ready: 'lower bound ready',
};

/** Built-in provisioners by name. */
export const BUILT_IN: Readonly<Record<string, ProvisionerSpec>> = {
  [THIS_PROJECT.name]: THIS_PROJECT,
  [LOWER_BOUND.name]: LOWER_BOUND,
};

const SpecFile = z.strictObject({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/, 'a DNS label of at most 32 characters'),
  provisioner: z.string().min(1),
  parameters: z.record(z.string(), z.string()).optional(),
  baseDir: z.string().regex(/^\/[^\0]*[^/]$/, 'an absolute path without a trailing slash'),
  command: z.array(z.string()).min(1),
  env: z.record(z.string(), z.string()).optional(),
  objects: z.string().optional(),
  ready: z.string().min(1),
});

/**
 * Reads a provisioner described in a YAML file with the fields of {@link ProvisionerSpec}.
 *
 * @throws Error naming the file and each invalid field.
 */
export function loadSpec(file: string): ProvisionerSpec {
  const parsed = SpecFile.safeParse(parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new Error(`${file}: ${problems.join('; ')}`);
  }
  const { parameters, env, objects, ...rest } = parsed.data;
  return {
    ...rest,
    ...(parameters ? { parameters } : {}),
    ...(env ? { env } : {}),
    ...(objects ? { objects } : {}),
  };
}
