import pino, { type Logger } from 'pino';

export type LogFormat = 'json' | 'pretty';

export function createLogger(level = 'info', format: LogFormat = 'json'): Logger {
  if (format === 'pretty') {
    return pino({ level, transport: { target: 'pino-pretty', options: { colorize: process.stdout.isTTY, translateTime: 'HH:MM:ss.l' } } });
  }
  return pino({ level });
}
