/**
 * What the offline-first store adds to @todo-api/client in a browser app: at most 10 KB
 * minified and gzipped. Measured as an app's bundler would: the package entry bundled with
 * esbuild (minified, for browsers, ES module, everything inlined: openapi-fetch,
 * fractional-indexing, idb), once whole and once through an entry that takes only the plain
 * client (createTodoClient and its companions, none of the store's exports); the difference
 * of the two gzipped sizes is the store's.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import t from 'tap';

const INDEX = join(import.meta.dirname, '..', '..', 'clients', 'typescript', 'src', 'index.ts');
const LIMIT = 10 * 1024;

async function measure(entry: string): Promise<{ min: number; gzip: number; text: string }> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const text = result.outputFiles[0]?.text ?? '';
  return { min: Buffer.byteLength(text), gzip: gzipSync(text, { level: 9 }).length, text };
}

t.test('the store adds at most 10 KB (minified + gzipped) to the package', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'store-size-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const clientOnly = join(dir, 'client-only.ts');
  writeFileSync(clientOnly, `export { createTodoClient, etagOf, TodoApiError } from ${JSON.stringify(INDEX)};\n`);

  const whole = await measure(INDEX);
  const plain = await measure(clientOnly);
  const added = whole.gzip - plain.gzip;
  t.comment(`client only: ${plain.min} B minified, ${plain.gzip} B gzipped`);
  t.comment(`with the store: ${whole.min} B minified, ${whole.gzip} B gzipped`);
  t.comment(`the store adds ${whole.min - plain.min} B minified, ${added} B (${(added / 1024).toFixed(1)} KB) gzipped; limit ${LIMIT} B`);

  // The measure is honest only if the client-only bundle has none of the store and the whole one has all of it.
  for (const marker of ['the store is closed', 'invalid order key', 'createObjectStore']) {
    t.notOk(plain.text.includes(marker), `the client-only bundle has no ${JSON.stringify(marker)}`);
  }
  t.ok(whole.text.includes('the store is closed'), 'the whole bundle has the store');
  t.ok(whole.text.includes('invalid order key'), 'with fractional-indexing inlined');
  t.ok(whole.text.includes('createObjectStore'), 'and its IndexedDB storage (idb)');
  t.ok(added > 0, 'the store costs something');
  t.ok(added <= LIMIT, `the store adds ${added} B gzipped (at most ${LIMIT})`);
});
