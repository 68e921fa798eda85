/** An in-memory pino logger for tests that read the app's log lines. */
import pino from 'pino';
import { LOG_REDACT } from '../src/app.ts';

export interface LogLine {
  level: number;
  msg?: string;
  reqId?: string;
  [key: string]: unknown;
}

/** An info-level logger, redacting as the server does, that keeps every line it writes. */
export function memoryLogger(level: pino.LevelWithSilent = 'info') {
  const lines: string[] = [];
  const logger = pino({ level, redact: LOG_REDACT }, { write: (line: string) => void lines.push(line) });
  return {
    logger,
    /** Every line written so far, as written. */
    raw: () => [...lines],
    text: () => lines.join(''),
    parsed: () => lines.map((line) => JSON.parse(line) as LogLine),
    clear: () => void lines.splice(0),
  };
}

/** Lets onResponse work (the "request completed" line) run after inject resolves. */
export const settle = () => new Promise((resolve) => setImmediate(resolve));
