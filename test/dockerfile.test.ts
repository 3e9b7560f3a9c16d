/**
 * The Dockerfile's promises, checked by reading it (e2e/production-image.test.ts builds and runs it): every path it
 * copies from the build context exists, stages it copies from exist, the base images default to Node 24 slim and
 * distroless, the image runs as a numeric non-root user without a shell, and its entry point is the CLI that
 * `make build` produces.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';

const ROOT = resolve(import.meta.dirname, '..');

/** One Dockerfile instruction: keyword (upper case) and its arguments, continuation lines joined. */
interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** One build stage: its base image, optional `AS` name and instructions. */
interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/**
 * Splits a Dockerfile into stages of instructions: comments and blank lines dropped, `\` continuations joined.
 *
 * @param text - the Dockerfile.
 * @returns the stages in order; a FROM naming `${ARG}` gets the default of an ARG declared before the first FROM.
 */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(pending + line);
    pending = '';
  }
  const stages: Stage[] = [];
  const globalArgs = new Map<string, string>();
  for (const line of logical) {
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m?.[1] || m[2] === undefined) throw new Error(`cannot parse Dockerfile line: ${line}`);
    const keyword = m[1].toUpperCase();
    const args = m[2].trim();
    if (keyword === 'FROM') {
      const [image = '', as, name] = args.split(/\s+/);
      const from = image.replace(/^\$\{(\w+)\}$/, (ref, arg: string) => globalArgs.get(arg) ?? ref);
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (keyword === 'ARG' && stages.length === 0) {
      const [arg = '', value = ''] = args.split('=');
      globalArgs.set(arg, value);
    } else stages.at(-1)?.instructions.push({ keyword, args });
  }
  return stages;
}

/** Source paths and `--from` stage of a COPY: `COPY [--from=x] src… dest` or the JSON form. */
function copySources(args: string): { from: string | undefined; sources: string[] } {
  const words = args.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift() ?? '';
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
  }
  const rest = words.join(' ');
  const list = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : words;
  return { from, sources: list.slice(0, -1) };
}

const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const final = stages.at(-1) as Stage;
const all = (keyword: string, stage: Stage = final) => stage.instructions.filter((i) => i.keyword === keyword);

describe('Dockerfile', () => {
  it('is multi-stage: builds on Node 24 slim and runs on distroless Node.js 24 (or Node 24 slim) by default', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages.slice(0, -1))
      expect(stage.from).toMatch(/^node:24(\.[\d.]+)?-(bookworm-|trixie-)?slim\b/);
    expect(final.from).toMatch(/^(gcr\.io\/distroless\/nodejs24-debian\d+(:nonroot)?|node:24(\.[\d.]+)?-slim)\b/);
  });

  it('copies only paths that exist in the repository, and only from stages defined before', () => {
    const missing: string[] = [];
    stages.forEach((stage, index) => {
      for (const { args } of all('COPY', stage)) {
        const { from, sources } = copySources(args);
        if (from !== undefined) {
          const earlier = stages.slice(0, index).map((s) => s.name);
          if (!earlier.includes(from)) missing.push(`stage ${from}`);
          continue;
        }
        for (const src of sources) if (!existsSync(join(ROOT, src))) missing.push(src);
      }
    });
    expect(missing).toEqual([]);
  });

  it('ships the compiled CLI: the final stage copies dist/src and dist/controllers from the build stage', () => {
    const copied = all('COPY').map((i) => copySources(i.args));
    const fromBuild = copied.filter((c) => c.from === stages[0]?.name).flatMap((c) => c.sources);
    expect(fromBuild).toEqual(expect.arrayContaining(['/app/dist/src', '/app/dist/controllers']));
    const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    expect(build.include).toEqual(expect.arrayContaining(['src', 'controllers']));
  });

  it('installs production dependencies only (npm ci --omit=dev, or a prune)', () => {
    const runs = stages.flatMap((s) => all('RUN', s).map((i) => i.args));
    expect(runs.some((r) => /npm ci\b.*--omit=dev|npm prune\b.*--omit=dev/.test(r))).toBe(true);
    const nodeModules = all('COPY')
      .map((i) => copySources(i.args))
      .filter((c) => c.sources.some((s) => s.endsWith('node_modules')));
    expect(nodeModules).toHaveLength(1);
    const producer = stages.find((s) => s.name === nodeModules[0]?.from) as Stage;
    expect(all('RUN', producer).some((i) => /--omit=dev/.test(i.args))).toBe(true);
  });

  it('runs as a numeric non-root user', () => {
    const user = all('USER').at(-1)?.args ?? '';
    const [uid, gid] = user.split(':');
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    if (gid !== undefined) expect(gid).toMatch(/^\d+$/);
  });

  it('needs no shell at run time: no RUN in the final stage, exec-form ENTRYPOINT and CMD', () => {
    expect(all('RUN')).toEqual([]);
    for (const keyword of ['ENTRYPOINT', 'CMD']) {
      const args = all(keyword).at(-1)?.args ?? '';
      expect(() => JSON.parse(args) as unknown).not.toThrow();
    }
  });

  it('starts node on dist/src/cli/main.js (the package bin) with the run subcommand', () => {
    const entrypoint = JSON.parse(all('ENTRYPOINT').at(-1)?.args ?? '[]') as string[];
    expect(entrypoint[0]).toMatch(/(^|\/)node$/);
    expect(entrypoint.slice(1)).toEqual(['dist/src/cli/main.js']);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin['hostpath-provisioner']).toBe('dist/src/cli/main.js');
    expect(JSON.parse(all('CMD').at(-1)?.args ?? '[]')).toEqual(['run']);
  });

  it('carries OCI labels, the version among them', () => {
    const labels = all('LABEL')
      .map((i) => i.args)
      .join(' ');
    for (const key of ['title', 'description', 'version', 'licenses']) {
      expect(labels).toContain(`org.opencontainers.image.${key}=`);
    }
  });

  it('exposes the metrics port that the manifests probe', () => {
    expect(all('EXPOSE').map((i) => i.args)).toContain('9090');
    const deployment = readFileSync(join(ROOT, 'manifests', 'base', 'deployment.yaml'), 'utf8');
    expect(deployment).toMatch(/containerPort: 9090/);
  });
});
