import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { createLogger } from '../src/runtime/logger.js';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  it('writes JSON lines with a level label, ISO time and errors under err', () => {
    const out = capture();
    const logger = createLogger({ level: 'info', format: 'json', destination: out.stream });
    logger.child({ pvc: 'ns/claim', reconcileID: 'abc' }).error({ err: new Error('boom') }, 'failed');
    logger.debug('hidden');
    const [line, ...rest] = out.lines();
    expect(rest).toHaveLength(0);
    expect(line).toMatchObject({ level: 'error', msg: 'failed', pvc: 'ns/claim', reconcileID: 'abc' });
    expect(line?.['err']).toMatchObject({ type: 'Error', message: 'boom' });
    expect(String(line?.['time'])).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('rejects an unknown level', () => {
    expect(() => createLogger({ level: 'verbose', format: 'json' })).toThrow();
  });
});
