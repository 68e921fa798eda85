/**
 * Logs for a developer at a terminal: when stdout is a TTY outside production, the server
 * prints pino-pretty's readable lines (time, level in words, message); piped, or in
 * production, one JSON object per line as before. The TTY is a real pseudo-terminal
 * (util-linux `script`).
 */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { freePort } from '../../src/dev/embedded.ts';
import { freshSchema } from '../helper.ts';
import { SECRET_KEY, logRecords, startServer, waitForHealth, type ServerProcess } from './server-process.ts';

/** Resolves once the server's stdout so far satisfies `seen` (its lines pass through a pty first). */
const output = (server: ServerProcess, seen: (stdout: string) => boolean) =>
  new Promise<void>((resolve) => {
    const check = () => seen(server.stdout()) && resolve();
    server.child.stdout?.on('data', () => setImmediate(check));
    check();
  });

const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

t.test('on a terminal outside production the log is readable lines; piped it is JSON', { skip: hasScript ? false : 'util-linux script is not installed' }, async (t) => {
  const { url } = await freshSchema(t);
  const env = (port: number, environment: string) => ({ DATABASE_URL: url, SECRET_KEY, PORT: String(port), HOST: '127.0.0.1', ENVIRONMENT: environment, CORS_ORIGINS: 'https://app.example.com' });
  const inTerminal = (port: number, environment: string) =>
    startServer(t, env(port, environment), { command: 'script', args: ['-qefc', `'${process.execPath}' --import tsx src/server.ts`, '/dev/null'] });

  const port = await freePort();
  const dev = inTerminal(port, 'development');
  await waitForHealth(dev, port, 60_000);
  await output(dev, (out) => /listening/.test(out));
  const lines = dev.stdout().split(/\r?\n/).filter((l) => l.trim() !== '');
  t.ok(lines.some((l) => /^\S*\[\d\d:\d\d:\d\d\.\d{3}\]\S* \S*INFO\S*: .*listening/.test(l)), 'a readable "listening" line, with its time and level in words');
  t.notOk(lines.some((l) => l.startsWith('{"level"')), 'no JSON line');

  const prodPort = await freePort();
  const prod = inTerminal(prodPort, 'production');
  await waitForHealth(prod, prodPort, 60_000);
  await output(prod, (out) => logRecords(out.replace(/\r/g, '')).length > 0);
  t.ok(logRecords(prod.stdout().replace(/\r/g, '')).some((r) => r.level === 30), 'production on a terminal: JSON lines');

  const pipedPort = await freePort();
  const piped = startServer(t, env(pipedPort, 'development'));
  await waitForHealth(piped, pipedPort, 60_000);
  await output(piped, (out) => logRecords(out).length > 0);
  t.ok(logRecords(piped.stdout()).some((r) => r.level === 30), 'piped (not a terminal): JSON lines');
});
