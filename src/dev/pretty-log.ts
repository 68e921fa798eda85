import { writeSync } from 'node:fs';
import { prettyFactory } from 'pino-pretty';
import type { LogDestination } from '../log-destination.ts';

/**
 * Development on a terminal: each JSON line printed as pino-pretty prints it (time, level
 * in words, message, then the fields), written synchronously, so nothing is pending at
 * exit. Only server.ts picks it, and only when stdout is a terminal outside production;
 * piped or in production the log stays one JSON object per line.
 */
export function prettyDestination(fd = 1, colorize = true): LogDestination {
  const pretty = prettyFactory({ colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  return {
    write(line: string) {
      const text = pretty(line);
      if (text) writeSync(fd, text);
    },
    flush(cb) {
      cb?.();
    },
    drained: async () => {},
  };
}
