import { createRequire } from 'node:module';
import { pino } from 'pino';

/** The logger type used everywhere: a pino logger (child loggers via `logger.child({ ... })`). */
export type Logger = pino.Logger;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** pino level: fatal, error, warn, info, debug, trace or silent. */
  readonly level: string;
  /** `json`: one JSON object per line on stdout (production); `pretty`: human-readable via pino-pretty. */
  readonly format: 'json' | 'pretty';
  /** Where JSON lines go; defaults to stdout. Ignored for `pretty`. For tests. */
  readonly destination?: pino.DestinationStream;
}

/** True when the optional pino-pretty package can be resolved (it is a development dependency). */
function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates the process logger.
 *
 * JSON lines carry `level` as a label (`"info"`), an ISO `time`, and errors under `err` (pino's standard error
 * serializer: type, message, stack; also for `logger.error({ err }, msg)`). `pretty` uses the pino-pretty transport
 * (a worker thread); when pino-pretty is not installed (production image) it falls back to JSON and says so.
 *
 * @param options - level and format (see {@link LoggerOptions}).
 * @returns a pino logger.
 * @throws Error when the level is not a pino level.
 */
export function createLogger(options: LoggerOptions): Logger {
  const base: pino.LoggerOptions = {
    level: options.level,
    base: null,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: pino.stdSerializers.err },
  };
  if (options.format === 'pretty') {
    if (prettyAvailable()) {
      // Transports forbid custom level formatters; pino-pretty prints the level itself.
      return pino({
        ...base,
        formatters: {},
        transport: { target: 'pino-pretty', options: { colorize: true, translateTime: true } },
      });
    }
    const logger = options.destination ? pino(base, options.destination) : pino(base);
    logger.warn('LOG_FORMAT=pretty asked for, but pino-pretty is not installed: logging JSON');
    return logger;
  }
  return options.destination ? pino(base, options.destination) : pino(base);
}
