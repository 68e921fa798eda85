/**
 * The breaking-change guard (`npm run check:breaking`): fixture contracts made from
 * contract/released.yaml with one change each. Every breaking one must be caught, with a
 * finding that names it; compatible ones must pass; a major bump lets a break through.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { checkBreaking, ownFindings, versionProblems, type Verdict } from '../../scripts/check-breaking.ts';
import { fileURLToPath } from 'node:url';

const RELEASED = fileURLToPath(new URL('../../contract/released.yaml', import.meta.url));
const released = () => parse(readFileSync(RELEASED, 'utf8')) as Record<string, any>;
type Doc = Record<string, any>;

const breaking: Array<[string, (s: Doc) => void, RegExp]> = [
  ['a removed operation', (s) => delete s.paths['/api/tasks/{id}'].put, /PUT \/api\/tasks\/\{id\}: \[prevent operation removal\]/],
  [
    'a removed response field',
    (s) => {
      const task = s.components.schemas.Task;
      delete task.properties.user_id;
      task.required = task.required.filter((f: string) => f !== 'user_id');
    },
    /cannot remove response property 'user_id'/,
  ],
  ['a removed enum value (request and response)', (s) => (s.components.schemas.TaskStatus.enum = ['pending']), /cannot remove enum option 'completed'/],
  [
    'a removed enum value (a response error code)',
    (s) => {
      const code = s.components.schemas.ErrorBody.properties.code;
      code.enum = code.enum.filter((c: string) => c !== 'FORBIDDEN');
    },
    /\[removed response enum value\] .*"FORBIDDEN" removed/,
  ],
  [
    'a new required query parameter',
    (s) => s.paths['/api/tasks'].get.parameters.push({ name: 'view', in: 'query', required: true, schema: { type: 'string' } }),
    /GET \/api\/tasks: \[.*required query parameter.*\]|GET \/api\/tasks: \[.*\] .*view/,
  ],
  [
    'a new required request field',
    (s) => {
      const create = s.components.schemas.CreateTaskRequest;
      create.properties.due = { type: 'string', format: 'date' };
      create.required = [...create.required, 'due'];
    },
    /POST \/api\/tasks: .*due/,
  ],
  ['a narrowed type', (s) => (s.components.parameters.Cursor.schema.type = 'integer'), /query parameter 'cursor' not be narrowed/],
  ['a narrowed request constraint', (s) => (s.components.schemas.TaskTitle.maxLength = 100), /\[narrowed request constraint\] request body \(application\/json\)\.title: maxLength 500 -> 100/],
  [
    'a changed status code',
    (s) => {
      const responses = s.paths['/api/tasks'].post.responses;
      responses['200'] = responses['201'];
      delete responses['201'];
    },
    /POST \/api\/tasks: \[prevent response status code removal\] must not remove response status code 201/,
  ],
  ['a removed request field', (s) => delete s.components.schemas.UpdateTaskRequest.properties.status, /PATCH \/api\/tasks\/\{id\}: \[removed request field\] .*'status'/],
  [
    'a removed enum value inside a response union (FieldError.in, in details)',
    (s) => (s.components.schemas.FieldError.properties.in.enum = ['body', 'query']),
    /\[removed response enum value\] .*"path", "header" removed/,
  ],
  ['a removed required response header', (s) => delete s.paths['/api/tasks'].post.responses['201'].headers, /POST \/api\/tasks: \[removed response header\] .*Location/],
];

/** What the contract grows by without breaking anyone: all of it at once must pass. */
function additive(s: Doc): void {
  s.components.schemas.CreateTaskRequest.properties.notes = { type: 'string', maxLength: 2000 };
  s.components.schemas.Task.properties.etag = { type: 'string' };
  s.components.schemas.ErrorBody.properties.code.enum.push('CONFLICT', 'PRECONDITION_FAILED');
  s.components.schemas.FieldError.properties.in.enum.push('header'); // inside the details union

  s.paths['/api/tasks'].post.parameters = [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 } }];
  s.paths['/api/tasks'].post.responses['409'] = { $ref: '#/components/responses/Forbidden' };
  s.paths['/api/tasks'].get.parameters.push({ name: 'q', in: 'query', required: false, schema: { type: 'string' } });
  s.paths['/api/tags'] = {
    get: {
      operationId: 'listTags',
      responses: { '200': { description: 'The tags.', content: { 'application/json': { schema: { type: 'array', items: { type: 'string' } } } } } },
    },
  };
}

// Each comparison takes a few seconds of CPU (more on a busy machine).
t.setTimeout(400_000);
const dir = await mkdtemp(join(tmpdir(), 'todo-api-breaking-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
let n = 0;
async function fixture(change: (s: Doc) => void, version?: string): Promise<string> {
  const s = released();
  change(s);
  if (version !== undefined) s.info.version = version;
  const file = join(dir, `fixture-${++n}.yaml`);
  await writeFile(file, stringify(s));
  return file;
}
const report = (v: Verdict) => v.breaking.map((f) => `${f.operation}: [${f.rule}] ${f.message}`).join('\n');
const changelog = async (text: string) => {
  const file = join(dir, `CHANGELOG-${++n}.md`);
  await writeFile(file, text);
  return file;
};

// Optic takes about two seconds per comparison: the breaking changes are made in one
// fixture (each must still be found and named), except the moved status code, which
// touches the same response as the removed header.
t.test('each breaking change fails the guard, named in its findings', async (t) => {
  const alone = new Set(['a changed status code']);
  const together = breaking.filter(([name]) => !alone.has(name));
  const groups = [together, breaking.filter(([name]) => alone.has(name))];
  for (const group of groups) {
    const v = await checkBreaking({ released: RELEASED, current: await fixture((s) => group.forEach(([, change]) => change(s))) });
    t.equal(v.ok, false, `${group.map(([name]) => name).join(', ')}: fails`);
    for (const [name, , expected] of group) t.match(report(v), expected, `${name}: reported`);
  }
});

t.test('compatible changes pass: new optional field/parameter/header, operation, status, error code', async (t) => {
  const withSection = await changelog('## 1.2.0\n\nNew things.\n');
  const v = await checkBreaking({ released: RELEASED, current: await fixture(additive, '1.2.0'), changelog: withSection });
  t.equal(report(v), '', 'no breaking change found');
  t.same(v.problems, [], '1.2.0 with a changelog section: no problem');
  t.equal(v.ok, true);
});

t.test('a major bump lets a breaking change through; a minor one does not', async (t) => {
  t.setTimeout(120_000);
  const log = await changelog('# Changelog\n\n## 2.0.0\n\nRemoved PUT.\n\n## 1.2.0\n\nStuff.\n');
  const removePut = (s: Doc) => delete s.paths['/api/tasks/{id}'].put;
  const major = await checkBreaking({ released: RELEASED, current: await fixture(removePut, '2.0.0'), changelog: log });
  t.equal(major.ok, true, '2.0.0 passes');
  t.match(report(major), /prevent operation removal/, 'and still lists the break');
  const minor = await checkBreaking({ released: RELEASED, current: await fixture(removePut, '1.2.0'), changelog: log });
  t.equal(minor.ok, false, '1.2.0 fails');
});

t.test('an accepted finding (contract/accepted-breaks.yaml) passes; a stale or unexplained entry fails', async (t) => {
  t.setTimeout(120_000);
  const narrowTitle = (s: Doc) => (s.components.schemas.TaskTitle.pattern = '^[^ ]+$');
  const entry = (why: string) => `- released: 1.1.0\n  rule: narrowed request constraint\n  where: 'request body (application/json).title: pattern'\n  why: ${why}\n`;
  const file = async (text: string) => {
    const f = join(dir, `accepted-${++n}.yaml`);
    await writeFile(f, text);
    return f;
  };
  const reviewed = await file(entry('reviewed'));
  const without = await checkBreaking({ released: RELEASED, current: await fixture(narrowTitle) });
  t.equal(without.ok, false, 'the narrowed pattern is a break');
  const accepted = await checkBreaking({ released: RELEASED, current: await fixture(narrowTitle), accepted: reviewed });
  t.same([accepted.ok, report(accepted), accepted.problems], [true, '', []], 'accepted: passes');
  const stale = await checkBreaking({ released: RELEASED, current: await fixture(() => {}), accepted: reviewed });
  t.equal(stale.ok, false, 'an entry that matches nothing fails');
  t.match(stale.problems, [/matches no finding/]);
  await t.rejects(checkBreaking({ released: RELEASED, current: await fixture(narrowTitle), accepted: await file(entry("''")) }), /needs released, rule, where and why/);
});

t.test('versions: semver, never lower, and a CHANGELOG.md section for a new one', async (t) => {
  t.same(versionProblems('1.1.0', '1.2.0', await changelog('## 1.2.0\n\nNew things.\n')), [], 'a new version with its section');
  t.same(versionProblems('1.1.0', '1.1.0', join(dir, 'no-changelog.md')), [], 'the same version needs no section');
  t.match(versionProblems('1.1.0', '1.2.0', await changelog('## 1.1.0\n')), [/CHANGELOG\.md has no "## 1\.2\.0" section/]);
  t.match(versionProblems('1.1.0', '1.2.0', await changelog('## 1.2.01\n')), [/no "## 1\.2\.0" section/], 'a section heading for another version');
  t.match(versionProblems('1.1.0', 'v1.1', ''), [/"v1\.1" is not semver/]);
  t.match(versionProblems('1.1.0', '0.9.0', ''), [/lower than the released/]);
  // The verdict carries them: a problem fails even without a breaking change.
  const v = await checkBreaking({ released: RELEASED, current: await fixture(() => {}, '0.9.0') });
  t.same([v.ok, v.breaking], [false, []]);
  t.match(v.problems, [/lower than the released/]);
});

t.test('our own rules on their own: request narrowing, yes; response widening, no', async (t) => {
  const before = released();
  const after = released();
  after.components.schemas.TaskTitle.maxLength = 1000; // widened: fine
  after.components.parameters.Limit.schema.maximum = 50; // narrowed
  after.components.schemas.Task.properties.title = { type: 'string', maxLength: 10 }; // a response may narrow
  t.same(
    ownFindings(before, after).map((f) => `${f.operation}: ${f.message}`),
    ["GET /api/tasks: query parameter 'limit': maximum 100 -> 50"],
  );
});

t.test('npm run check:breaking passes on the repository and names the versions', async (t) => {
  t.setTimeout(120_000);
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/check-breaking.ts'], { encoding: 'utf8' });
  t.equal(res.status, 0, res.stdout + res.stderr);
  t.match(res.stdout, /^check:breaking: ok \(1\.1\.0 -> \d+\.\d+\.\d+\)/m);
});

t.test('the command fails (non-zero) on a breaking fixture', async (t) => {
  t.setTimeout(120_000);
  const current = await fixture((s) => delete s.paths['/api/tasks/{id}'].delete);
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/check-breaking.ts', '--current', current, '--accepted', '/dev/null'], { encoding: 'utf8' });
  t.equal(res.status, 1);
  t.match(res.stdout, /DELETE \/api\/tasks\/\{id\}: \[prevent operation removal\]/);
  t.match(res.stdout, /raise info\.version's major number/);
});
