import pino, { type Logger } from 'pino';
import { escapeDeep } from './escape.js';

export type LogFormat = 'json' | 'pretty';

export function createLogger(level = 'info', format: LogFormat = 'json'): Logger {
  if (format === 'pretty') {
    // pino-pretty prints strings as they are: escape what clients sent (node ids, NACK messages).
    return pino({
      level,
      formatters: { log: (object) => escapeDeep(object) as Record<string, unknown> },
      transport: { target: 'pino-pretty', options: { colorize: process.stdout.isTTY, translateTime: 'HH:MM:ss.l' } },
    });
  }
  return pino({ level });
}
