/**
 * `npm run mock` stops when npm alone is signalled, as IDE stop buttons and process
 * managers do: SIGINT and SIGTERM to the npm process reach the mock (the script execs
 * node, so no shell sits in between) and it stops Prism, which stops listening.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { freePort } from '../../src/dev/embedded.ts';
import { sleep } from './server-process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const refused = (port: number) =>
  fetch(`http://127.0.0.1:${port}/health`).then(
    () => false,
    () => true,
  );

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`${signal} to npm alone stops npm run mock and its Prism`, async (t) => {
    const port = await freePort();
    const npm = spawn('npm', ['run', '-s', 'mock', '--', '--port', String(port)], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stdout.on('data', (d: Buffer) => (output += d.toString()));
    npm.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<void>((resolve) => npm.on('exit', () => resolve()));
    t.teardown(() => {
      if (npm.exitCode === null) npm.kill('SIGKILL');
    });
    await new Promise<void>((resolve, reject) => {
      npm.stdout.on('data', () => {
        if (output.includes(`Prism is listening on http://127.0.0.1:${port}`)) resolve();
      });
      npm.on('exit', (code) => reject(new Error(`the mock exited with ${code}:\n${output}`)));
    });
    t.equal(await refused(port), false, 'the mock answers');

    npm.kill(signal);
    await exited;
    // A bound against a hang, not a timing assertion.
    let stopped = await refused(port);
    for (let i = 0; i < 100 && !stopped; i++) {
      await sleep(100);
      stopped = await refused(port);
    }
    t.ok(stopped, 'nothing listens on its port any more');
  });
}
