#!/usr/bin/env node
import { buildProgram } from './program.js';

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`hostpath-provisioner: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
