/**
 * `npm run check:breaking`: fails when openapi.yaml breaks a client of the released
 * contract (contract/released.yaml) without raising info.version's major number.
 *
 * The diff is Optic's (the engine and breaking-changes ruleset of `optic diff --check`,
 * which read OpenAPI 3.1; run in-process, offline, no telemetry). Measured on our contract, Optic misses some breaks and flags one thing
 * we allow, so its findings are adjusted by two small, tested rules of our own:
 * - allowed: a new value in a response enum (a new error `code`): the contract tells
 *   clients to handle codes they do not know by their HTTP status;
 * - added: a narrowed request constraint (maxLength, minimum, pattern, ...), a removed
 *   request field (requests reject unknown fields), a removed response enum value, a
 *   removed required response header.
 *
 * Findings reviewed and accepted (not breaks, each with why) are listed in
 * contract/accepted-breaks.yaml; an entry that matches no finding fails the check.
 *
 *   npm run check:breaking [-- --released contract/released.yaml --current openapi.yaml --accepted FILE]
 */
// The rules walk untyped YAML (any OpenAPI document), so `any` is the honest type here.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { checkOpenAPIVersion, denormalize, parseOpenAPIWithSourcemap } from '@useoptic/openapi-io';
import { compareSpecs } from '@useoptic/openapi-utilities';
import { RuleRunner } from '@useoptic/rulesets-base';
import { BreakingChangesRuleset } from '@useoptic/standard-rulesets';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

export interface Finding {
  /** "GET /api/tasks" */
  operation: string;
  rule: string;
  message: string;
}

export interface Verdict {
  ok: boolean;
  releasedVersion: string;
  currentVersion: string;
  /** Breaking changes found (reported even when a major bump allows them). */
  breaking: Finding[];
  /** Problems with the versions or the changelog. */
  problems: string[];
}

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

export function parseSemver(v: unknown): [number, number, number] | undefined {
  const m = typeof v === 'string' ? SEMVER.exec(v) : null;
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

function compareSemver(a: [number, number, number], b: [number, number, number]): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/**
 * Optic's breaking-change findings, in-process: the libraries its CLI (`optic diff
 * --check`) is made of, loaded once, so a comparison takes seconds, not a CLI start.
 * Its "skip when the major version changes" is off: the verdict below decides that.
 */
export async function opticFindings(released: string, current: string): Promise<Finding[]> {
  const load = async (file: string) => {
    const parsed = await parseOpenAPIWithSourcemap(resolve(file));
    const version = checkOpenAPIVersion(parsed.jsonLike);
    if (version === '2.x.x') throw new Error(`${file}: Swagger 2 is not supported`);
    const flat = denormalize(parsed, version, []);
    return { ...flat, jsonLike: flat.jsonLike as Parameters<typeof compareSpecs>[0]['jsonLike'], version, isEmptySpec: false };
  };
  const ruleset = await BreakingChangesRuleset.fromOpticConfig({ skip_when_major_version_changes: false });
  if (typeof ruleset === 'string') throw new Error(`optic ruleset: ${ruleset}`);
  const { results } = await compareSpecs(await load(released), await load(current), new RuleRunner([ruleset]), {});
  return results
    .filter((r) => !r.passed && !r.exempted)
    .map((r) => ({ operation: operationOf(r.location.jsonPath), rule: r.name ?? 'optic', message: r.error ?? '' }));
}

/** "GET /api/tasks" from a JSON pointer into the spec. */
function operationOf(pointer: string): string {
  const [, paths, path, method] = pointer.split('/');
  if (paths !== 'paths' || path === undefined || method === undefined) return pointer;
  return `${method.toUpperCase()} ${path.replace(/~1/g, '/').replace(/~0/g, '~')}`;
}

/** A new response enum value is additive here (see the file comment). */
export function isAllowedByPolicy(f: Finding): boolean {
  if (f.rule === 'request and response property enums' && /^cannot add enum options? /.test(f.message)) return true;
  // Inside a response union (FieldError.in, in `details`) Optic words a new enum value as a
  // narrowing of the union. A real removal there is still caught: our own rule below walks
  // oneOf/anyOf/allOf for removed response enum values.
  return f.rule === 'prevent narrowing in response union types' && /: enums [^:]+ were removed$/.test(f.message);
}

// ---- our own rules, for what Optic's ruleset does not see -------------------------------

type Schema = Record<string, unknown>;
type Doc = Record<string, any>;

function deref(doc: Doc, value: unknown, depth = 0): any {
  if (depth > 20 || value === null || typeof value !== 'object') return value;
  const ref = (value as { $ref?: unknown }).$ref;
  if (typeof ref === 'string' && ref.startsWith('#/')) {
    const target = ref
      .slice(2)
      .split('/')
      .reduce<any>((node, key) => node?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    return deref(doc, target, depth + 1);
  }
  return value;
}

/** Lower bounds that must not rise and upper bounds that must not fall in a request. */
const LOWER = ['minLength', 'minimum', 'exclusiveMinimum', 'minItems', 'minProperties'] as const;
const UPPER = ['maxLength', 'maximum', 'exclusiveMaximum', 'maxItems', 'maxProperties'] as const;

function enumOf(s: Schema): unknown[] | undefined {
  if (Array.isArray(s.enum)) return s.enum;
  if ('const' in s) return [s.const];
  return undefined;
}

function compareSchemas(
  before: Doc,
  after: Doc,
  a: unknown,
  b: unknown,
  where: string,
  inRequest: boolean,
  report: (rule: string, message: string) => void,
  depth = 0,
): void {
  const x = deref(before, a) as Schema | undefined;
  const y = deref(after, b) as Schema | undefined;
  if (!x || !y || typeof x !== 'object' || typeof y !== 'object' || depth > 12) return;
  if (inRequest) {
    for (const k of LOWER) {
      const was = x[k];
      const now = y[k];
      if (typeof now === 'number' && (typeof was !== 'number' || now > was)) {
        report('narrowed request constraint', `${where}: ${k} ${was ?? '(none)'} -> ${now}`);
      }
    }
    for (const k of UPPER) {
      const was = x[k];
      const now = y[k];
      if (typeof now === 'number' && (typeof was !== 'number' || now < was)) {
        report('narrowed request constraint', `${where}: ${k} ${was ?? '(none)'} -> ${now}`);
      }
    }
    for (const k of ['pattern', 'format', 'multipleOf'] as const) {
      if (y[k] !== undefined && y[k] !== x[k]) {
        report('narrowed request constraint', `${where}: ${k} ${JSON.stringify(x[k] ?? null)} -> ${JSON.stringify(y[k])}`);
      }
    }
    const xp = (x.properties ?? {}) as Record<string, unknown>;
    const yp = (y.properties ?? {}) as Record<string, unknown>;
    if (y.additionalProperties === false) {
      for (const name of Object.keys(xp)) {
        if (!(name in yp)) report('removed request field', `${where}: field '${name}' is no longer accepted`);
      }
    }
  } else {
    const was = enumOf(x);
    const now = enumOf(y);
    if (was && now) {
      const gone = was.filter((v) => !now.some((n) => JSON.stringify(n) === JSON.stringify(v)));
      if (gone.length > 0) report('removed response enum value', `${where}: ${gone.map((v) => JSON.stringify(v)).join(', ')} removed`);
    }
  }
  const xp = (x.properties ?? {}) as Record<string, unknown>;
  const yp = (y.properties ?? {}) as Record<string, unknown>;
  for (const name of Object.keys(xp)) {
    if (name in yp) compareSchemas(before, after, xp[name], yp[name], `${where}.${name}`, inRequest, report, depth + 1);
  }
  if (x.items !== undefined && y.items !== undefined) {
    compareSchemas(before, after, x.items, y.items, `${where}[]`, inRequest, report, depth + 1);
  }
  for (const k of ['oneOf', 'anyOf', 'allOf'] as const) {
    const xs = x[k];
    const ys = y[k];
    if (Array.isArray(xs) && Array.isArray(ys) && xs.length === ys.length) {
      xs.forEach((s, i) => compareSchemas(before, after, s, ys[i], `${where}`, inRequest, report, depth + 1));
    }
  }
}

function parametersOf(doc: Doc, path: string, method: string): Map<string, any> {
  const all = [...(doc.paths?.[path]?.parameters ?? []), ...(doc.paths?.[path]?.[method]?.parameters ?? [])];
  return new Map(all.map((p: unknown) => deref(doc, p)).map((p: any) => [`${p.in} parameter '${p.name}'`, p]));
}

/** The breaks Optic's ruleset does not report (see the file comment). */
export function ownFindings(before: Doc, after: Doc): Finding[] {
  const findings: Finding[] = [];
  for (const [path, item] of Object.entries<Doc>(before.paths ?? {})) {
    for (const method of METHODS) {
      const x = item?.[method];
      const y = after.paths?.[path]?.[method];
      if (!x || !y) continue; // a removed operation is Optic's finding
      const operation = `${method.toUpperCase()} ${path}`;
      const report = (rule: string, message: string) => findings.push({ operation, rule, message });

      const yParams = parametersOf(after, path, method);
      for (const [name, p] of parametersOf(before, path, method)) {
        const q = yParams.get(name);
        if (q) compareSchemas(before, after, p.schema, q.schema, name, true, report);
      }
      const xBody = deref(before, x.requestBody)?.content ?? {};
      const yBody = deref(after, y.requestBody)?.content ?? {};
      for (const type of Object.keys(xBody)) {
        if (yBody[type]) compareSchemas(before, after, xBody[type].schema, yBody[type].schema, `request body (${type})`, true, report);
      }
      for (const [status, r] of Object.entries<unknown>(x.responses ?? {})) {
        const xr = deref(before, r);
        const yr = deref(after, y.responses?.[status]);
        if (!xr || !yr) continue; // a removed status code is Optic's finding
        for (const [header, h] of Object.entries<any>(xr.headers ?? {})) {
          const yh = Object.entries<any>(yr.headers ?? {}).find(([k]) => k.toLowerCase() === header.toLowerCase())?.[1];
          if (deref(before, h)?.required === true && deref(after, yh)?.required !== true) {
            report('removed response header', `response ${status}: header ${header} is no longer always sent`);
          }
        }
        for (const [type, c] of Object.entries<any>(xr.content ?? {})) {
          const yc = yr.content?.[type];
          if (yc) compareSchemas(before, after, c.schema, yc.schema, `response ${status} (${type})`, false, report);
        }
      }
    }
  }
  return findings;
}

// ---- the verdict ---------------------------------------------------------------------------

export interface CheckOptions {
  released: string;
  current: string;
  /** CHANGELOG.md: it must have a section for a new current version. */
  changelog?: string;
  /** Findings reviewed and accepted, each with why (contract/accepted-breaks.yaml). */
  accepted?: string;
}

/**
 * A finding reviewed and accepted against one released version: it matches a finding
 * with the same rule whose message starts with `where`, on every operation. An entry
 * that matches nothing is a problem, so that none outlives the change it excuses.
 */
interface Accepted {
  released: string;
  rule: string;
  where: string;
  why: string;
}

function acceptedFor(file: string, releasedVersion: string): Accepted[] {
  if (!existsSync(file)) return [];
  const entries = (parse(readFileSync(file, 'utf8')) ?? []) as Accepted[];
  for (const e of entries) {
    if (!e.released || !e.rule || !e.where || !e.why?.trim()) throw new Error(`${file}: every entry needs released, rule, where and why`);
  }
  return entries.filter((e) => String(e.released) === releasedVersion);
}

/** What is wrong with the versions alone: semver, never lower, a CHANGELOG.md section for a new one. */
export function versionProblems(releasedVersion: string, currentVersion: string, changelog: string): string[] {
  const problems: string[] = [];
  const r = parseSemver(releasedVersion);
  const c = parseSemver(currentVersion);
  if (!r) problems.push(`the released contract's info.version "${releasedVersion}" is not semver (MAJOR.MINOR.PATCH)`);
  if (!c) problems.push(`info.version "${currentVersion}" is not semver (MAJOR.MINOR.PATCH)`);
  if (r && c && compareSemver(c, r) < 0) problems.push(`info.version ${currentVersion} is lower than the released ${releasedVersion}`);
  if (r && c && compareSemver(c, r) > 0) {
    const log = existsSync(changelog) ? readFileSync(changelog, 'utf8') : '';
    const escaped = currentVersion.replace(/[.+]/g, '\\$&');
    if (!new RegExp(`^##\\s+\\[?${escaped}\\]?(\\s|$)`, 'm').test(log)) {
      problems.push(`CHANGELOG.md has no "## ${currentVersion}" section for the new contract version`);
    }
  }
  return problems;
}

export async function checkBreaking({
  released,
  current,
  changelog = join(ROOT, 'CHANGELOG.md'),
  accepted,
}: CheckOptions): Promise<Verdict> {
  const before = parse(readFileSync(released, 'utf8')) as Doc;
  const after = parse(readFileSync(current, 'utf8')) as Doc;
  const releasedVersion = String(before.info?.version);
  const currentVersion = String(after.info?.version);
  const problems = versionProblems(releasedVersion, currentVersion, changelog);
  // A malformed accepted-breaks file fails before Optic's few seconds of comparing.
  const reviewed = accepted === undefined ? [] : acceptedFor(accepted, releasedVersion);

  const found = [...(await opticFindings(released, current)).filter((f) => !isAllowedByPolicy(f)), ...ownFindings(before, after)];
  const used = new Set<Accepted>();
  const breaking = found.filter((f) => {
    const entry = reviewed.find((e) => e.rule === f.rule && f.message.startsWith(e.where));
    if (entry) used.add(entry);
    return !entry;
  });
  for (const e of reviewed) if (!used.has(e)) problems.push(`accepted-breaks.yaml: "${e.where}" (${e.rule}) matches no finding; remove it`);
  const r = parseSemver(releasedVersion);
  const c = parseSemver(currentVersion);
  const majorRaised = r !== undefined && c !== undefined && c[0] > r[0];
  return { ok: problems.length === 0 && (breaking.length === 0 || majorRaised), releasedVersion, currentVersion, breaking, problems };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      released: { type: 'string', default: join(ROOT, 'contract', 'released.yaml') },
      current: { type: 'string', default: join(ROOT, 'openapi.yaml') },
      accepted: { type: 'string', default: join(ROOT, 'contract', 'accepted-breaks.yaml') },
    },
  });
  const v = await checkBreaking({ released: values.released, current: values.current, accepted: values.accepted });
  const seen = new Set<string>();
  for (const f of v.breaking) {
    const line = `  ${f.operation}: [${f.rule}] ${f.message}`;
    if (!seen.has(line)) console.log(line);
    seen.add(line);
  }
  for (const p of v.problems) console.log(`  ${p}`);
  const range = `${v.releasedVersion} -> ${v.currentVersion}`;
  if (!v.ok && v.breaking.length > 0 && v.problems.length === 0) {
    console.log(`check:breaking: ${v.breaking.length} breaking change(s) (${range}); raise info.version's major number to release them, or undo them`);
  } else if (!v.ok) {
    console.log(`check:breaking: failed (${range})`);
  } else if (v.breaking.length > 0) {
    console.log(`check:breaking: ok (${range}): breaking changes allowed by the new major version`);
  } else {
    console.log(`check:breaking: ok (${range}): no breaking change`);
  }
  process.exit(v.ok ? 0 : 1);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
