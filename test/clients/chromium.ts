/**
 * Debian's chromium for the browser tests, driven by playwright-core: CHROMIUM_PATH when
 * set (and then only it), otherwise `chromium` on PATH; without it, the reason to skip.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const INSTALL = 'apt-get install chromium';

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Where chromium is, or why the browser tests are skipped. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): { path: string; skip: false } | { path: null; skip: string } {
  const explicit = env.CHROMIUM_PATH;
  if (explicit !== undefined && explicit !== '') {
    return isExecutableFile(explicit)
      ? { path: explicit, skip: false }
      : { path: null, skip: `chromium is not installed: CHROMIUM_PATH=${explicit} is not an executable file (${INSTALL}, or fix CHROMIUM_PATH)` };
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'chromium');
    if (isExecutableFile(candidate)) return { path: candidate, skip: false };
  }
  return { path: null, skip: `chromium is not installed: ${INSTALL}` };
}

export const CHROMIUM = findChromium();

/** As the machine's own probe starts it: no sandbox as root, no calls to the outside. */
export const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
