/**
 * `npm run mock`: a mock of the API from openapi.yaml alone (Stoplight Prism), for
 * frontend work before the backend runs: no database, no real auth (any
 * `Authorization: Bearer <anything>` is accepted; none is a 401). Each operation
 * answers with its documented example; pick another with `Prefer: code=404` or
 * `Prefer: example=expired`.
 *
 *   npm run mock [-- --port 4010 --host 127.0.0.1]
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { SPEC_PATH } from '../src/contract/spec.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4010' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
const prism = join(dirname(createRequire(import.meta.url).resolve('@stoplight/prism-cli/package.json')), 'dist', 'index.js');
const child = spawn(process.execPath, [prism, 'mock', SPEC_PATH, '--host', values.host, '--port', values.port], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
