/**
 * Runs the Portman CLI on openapi.yaml with the configuration committed next to
 * this file and returns the Postman collection it generates. Everything is
 * local: the spec, portman-config.json and postman-config.json (the
 * openapi-to-postman options) are files, nothing is uploaded (no --syncPostman)
 * and Newman is run by the caller, not by Portman.
 *
 * By hand, from a scratch directory (Portman writes ./tmp/{working,converted,newman}
 * into the current one), once `tslib` resolves (see tslibShim below):
 *
 *   npx portman -l openapi.yaml -b http://127.0.0.1:8000 \
 *     -c scripts/postman/portman-config.json -s scripts/postman/postman-config.json \
 *     -o artifacts/todo-api.postman.json
 *
 * then import that file into Postman and set the bearerToken variable.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { STREAMING_OPERATIONS } from '../../src/contract/handlers.ts';

export const CONFIG_DIR = dirname(fileURLToPath(import.meta.url));
export const PORTMAN_CONFIG = join(CONFIG_DIR, 'portman-config.json');
export const POSTMAN_CONFIG = join(CONFIG_DIR, 'postman-config.json');

const requireHere = createRequire(import.meta.url);
const PORTMAN_DIR = dirname(requireHere.resolve('@apideck/portman/package.json'));
const PORTMAN_BIN = join(PORTMAN_DIR, 'bin', 'portman');

/** The parts of a Postman collection (v2.1) this suite reads. */
export interface PostmanItem {
  name: string;
  item?: PostmanItem[];
  request?: { method: string };
  event?: Array<{ listen: string; script: { exec: string[] } }>;
}
export interface PostmanCollection {
  info: { name: string };
  item: PostmanItem[];
  variable?: Array<{ key: string; value: unknown }>;
  auth?: unknown;
}

export interface Generated {
  file: string;
  collection: PostmanCollection;
  /** Portman's console output (for diagnostics). */
  log: string;
}

export interface GenerateOptions {
  spec: string;
  baseUrl: string;
  /** A scratch directory: Portman's working files and the collection go here. */
  workDir: string;
  timeoutMs: number;
}

/**
 * The spec without its streaming operations: a Postman request waits for the whole
 * response, and a change stream never ends (test/sync/stream.test.ts covers it).
 */
async function withoutStreams(spec: string, workDir: string): Promise<string> {
  const document = parse(await readFile(spec, 'utf8')) as { paths: Record<string, Record<string, { operationId?: string }>> };
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if ((STREAMING_OPERATIONS as readonly string[]).includes(op.operationId ?? '')) delete item[method];
    }
    if (!Object.values(item).some((op) => typeof op === 'object' && op !== null && 'operationId' in op)) delete document.paths[path];
  }
  const file = join(workDir, 'openapi.postman.yaml');
  await writeFile(file, stringify(document));
  return file;
}

export async function generateCollection({ spec, baseUrl, workDir, timeoutMs }: GenerateOptions): Promise<Generated> {
  const file = join(workDir, 'todo-api.postman.json');
  const args = [
    PORTMAN_BIN,
    ...['--local', await withoutStreams(spec, workDir)],
    ...['--baseUrl', baseUrl],
    ...['--portmanConfigFile', PORTMAN_CONFIG],
    ...['--postmanConfigFile', POSTMAN_CONFIG],
    ...['--output', file],
    '--includeTests',
  ];
  // PORTMAN_* variables of the caller would become collection variables: keep the run reproducible.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PORTMAN_')));
  env.NO_COLOR = '1';
  env.FORCE_COLOR = '0';
  const shim = await tslibShim(workDir);
  if (shim !== undefined) env.NODE_PATH = [shim, process.env.NODE_PATH].filter(Boolean).join(':');

  const log = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`portman did not finish within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`portman exited with ${code ?? signal}:\n${output}`));
    });
  });
  // Portman exits 0 even when the config targets operations the spec does not have; it only warns.
  if (/targets are missing/i.test(log)) throw new Error(`portman-config.json targets operations openapi.yaml lacks:\n${log}`);
  const collection = JSON.parse(await readFile(file, 'utf8')) as PostmanCollection;
  return { file, collection, log };
}

/**
 * @apideck/portman 1.33.0's compiled code does `require("tslib")`, but the
 * package lists tslib only among its devDependencies, so a plain install has no
 * tslib and the CLI dies with "Cannot find module 'tslib'". Until the project
 * depends on tslib itself, this writes a stand-in into `workDir` (and returns
 * the directory to put on NODE_PATH): the very helpers TypeScript emits inline,
 * taken from the installed compiler. Returns undefined when tslib resolves.
 */
async function tslibShim(workDir: string): Promise<string | undefined> {
  try {
    createRequire(join(PORTMAN_DIR, 'package.json')).resolve('tslib');
    return undefined;
  } catch {
    // not installed: build the stand-in
  }
  const { default: ts } = await import('typescript');
  // Each construct makes the compiler emit one of the helpers Portman's code calls.
  const source = `
    import d from 'm'; import * as ns from 'm'; export * from 'm';
    class A {} export class B extends A {}
    export async function f(o: any, xs: any[]) {
      const { a, ...rest } = { ...o }; const [p] = xs; for (const x of xs) void x;
      await f(o, [...xs, a, p, d, ns]); return String.raw\`\${rest}\`;
    }`;
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: {
      target: ts.ScriptTarget.ES5,
      module: ts.ModuleKind.CommonJS,
      esModuleInterop: true,
      downlevelIteration: true,
      importHelpers: false,
    },
  });
  const end = outputText.indexOf('Object.defineProperty(exports, "__esModule"');
  const helpers = outputText.slice(0, end);
  const names = [...helpers.matchAll(/^var (__\w+) = /gm)].map((m) => m[1]);
  const needed = ['__assign', '__awaiter', '__exportStar', '__extends', '__generator', '__importDefault', '__importStar', '__makeTemplateObject', '__read', '__rest', '__spreadArray', '__values'];
  const missing = needed.filter((n) => !names.includes(n));
  if (end < 0 || missing.length > 0) throw new Error(`cannot build a tslib stand-in: ${missing.join(', ') || 'unexpected compiler output'}`);
  const dir = join(workDir, 'node-path');
  await mkdir(join(dir, 'tslib'), { recursive: true });
  await writeFile(join(dir, 'tslib', 'package.json'), JSON.stringify({ name: 'tslib', type: 'commonjs', main: 'index.js' }));
  await writeFile(join(dir, 'tslib', 'index.js'), `${helpers}\nmodule.exports = { ${names.join(', ')} };\n`);
  return dir;
}
