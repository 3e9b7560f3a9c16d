/** The agent's logger: pino JSON lines on stdout (up.sh sends them to .cluster/logs/node-agent.log). */
import { pino, type Logger } from 'pino';

export type { Logger };

/** A pino logger named `node-agent` at `level` (pino level names). */
export function createLogger(level = 'info'): Logger {
  return pino({ name: 'node-agent', level });
}
