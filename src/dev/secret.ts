import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * In development without SECRET_KEY, the server and `npm run token` share a
 * generated secret kept in DATA_DIR, so a fresh clone works with no setup.
 */
export function developmentSecret(dataDir: string): { secret: string; path: string } {
  const path = join(dataDir, 'dev-secret');
  if (existsSync(path)) return { secret: readFileSync(path, 'utf8').trim(), path };
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(path, secret, { mode: 0o600, flag: 'wx' });
  return { secret, path };
}
