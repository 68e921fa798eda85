/**
 * Bursts of concurrent requests over real HTTP: first writes of new users racing
 * each other, and a mix of every operation across users. No 5xx, only the
 * statuses the contract lists, and the data adds up afterwards.
 */
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { build, token, type Test } from '../helper.ts';
import { contractProblems } from '../contract.ts';

interface Reply {
  method: string;
  path: string;
  status: number;
  body: string;
  problems: string[];
}

/** A listening app and a fetch that records every response's contract problems. */
async function serve(t: Test) {
  const built = await build(t);
  await built.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = built.app.server.address() as AddressInfo;
  const tokens = new Map<string, string>();
  const bearer = (user: string) => {
    let tok = tokens.get(user);
    if (tok === undefined) {
      tok = token(user, { email: `${user}@example.com` });
      tokens.set(user, tok);
    }
    return tok;
  };

  async function send(user: string, method: string, path: string, body?: unknown): Promise<Reply> {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${bearer(user)}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    const problems = contractProblems({
      method,
      url: path,
      statusCode: res.status,
      headers: Object.fromEntries(res.headers),
      body: text,
    });
    return { method, path, status: res.status, body: text, problems };
  }

  /** Each user's list (up to 100), checked against the contract; a non-200 counts as empty. */
  async function listOfEach(t: Test, users: string[]): Promise<Array<[string, Array<{ id: string; user_id: string; title: string }>]>> {
    const lists = await Promise.all(users.map((user) => send(user, 'GET', '/api/tasks?limit=100')));
    t.same(problemsOf(lists), [], 'the lists conform to openapi.yaml');
    return users.map((user, i) => [user, lists[i]?.status === 200 ? JSON.parse(lists[i].body).items : []]);
  }

  return { ...built, send, listOfEach };
}

/** Every contract problem of a batch, labelled with its request. */
const problemsOf = (replies: Reply[]) => replies.flatMap((r) => r.problems.map((p) => `${r.method} ${r.path}: ${p}`));

/** A small deterministic generator, so that a failing burst can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('200 concurrent first writes from 20 new users: all 201, each user sees exactly their own', async (t) => {
  const { send, sql, listOfEach } = await serve(t);
  const users = Array.from({ length: 20 }, (_, i) => `new-user-${i}`);
  const perUser = 10;

  // Interleaved, so that each user's first writes arrive at the same moment as everyone else's.
  const requests: Array<[string, string]> = [];
  for (let n = 0; n < perUser; n++) for (const user of users) requests.push([user, `${user} task ${n}`]);
  const replies = await Promise.all(requests.map(([user, title]) => send(user, 'POST', '/api/tasks', { title })));

  const statuses = [...new Set(replies.map((r) => r.status))];
  t.same(statuses, [201], 'every create answers 201');
  t.same(
    replies.filter((r) => r.status >= 500).map((r) => r.body),
    [],
    'no 5xx',
  );
  t.same(problemsOf(replies), [], 'every response conforms to openapi.yaml');

  for (const [user, items] of await listOfEach(t, users)) {
    t.same(
      items.map((x) => x.title).sort(),
      Array.from({ length: perUser }, (_, n) => `${user} task ${n}`).sort(),
      `${user} lists exactly their ${perUser} tasks`,
    );
    t.ok(
      items.every((x) => x.user_id === user),
      `${user} sees no one else's task`,
    );
  }

  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM users`;
  t.equal(row?.n, users.length, 'the users table has exactly one row per user');
  const emails = await sql<{ id: string; email: string | null }[]>`SELECT id, email FROM users ORDER BY id`;
  t.ok(
    emails.every((u) => u.email === `${u.id}@example.com`),
    'each user has the email of their token',
  );
});

t.test('a mixed burst of 300 requests across 10 users: no 5xx, only the expected statuses', async (t) => {
  const { send, sql, listOfEach } = await serve(t);
  const users = Array.from({ length: 10 }, (_, i) => `mixed-user-${i}`);

  // Five tasks each to aim at.
  const seeded = await Promise.all(
    users.flatMap((user) => Array.from({ length: 5 }, (_, n) => send(user, 'POST', '/api/tasks', { title: `${user} seed ${n}` }))),
  );
  t.same(
    seeded.map((r) => r.status).filter((s) => s !== 201),
    [],
    'the seed tasks are created',
  );
  const owner = new Map<string, string>();
  const seedTitle = new Map<string, string>();
  for (const r of seeded) {
    if (r.status !== 201) continue;
    const task = JSON.parse(r.body) as { id: string; user_id: string; title: string };
    owner.set(task.id, task.user_id);
    seedTitle.set(task.id, task.title);
  }
  const ids = [...owner.keys()];

  type Planned = { user: string; method: string; path: string; body?: unknown; target?: string };
  const next = random(20260106);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T;
  const planned: Planned[] = [];
  for (let i = 0; i < 300; i++) {
    const user = pick(users);
    const target = pick(ids);
    const kind = pick(['create', 'list', 'get', 'patch', 'put', 'delete'] as const);
    switch (kind) {
      case 'create':
        planned.push({ user, method: 'POST', path: '/api/tasks', body: { title: `burst ${i}` } });
        break;
      case 'list':
        planned.push({ user, method: 'GET', path: pick(['/api/tasks', '/api/tasks?status=pending', '/api/tasks?limit=3']) });
        break;
      case 'get':
        planned.push({ user, method: 'GET', path: `/api/tasks/${target}`, target });
        break;
      case 'patch':
        planned.push({ user, method: 'PATCH', path: `/api/tasks/${target}`, body: pick([{ status: 'completed' }, { title: `patched ${i}` }]), target });
        break;
      case 'put':
        planned.push({ user, method: 'PUT', path: `/api/tasks/${target}`, body: { title: `replaced ${i}` }, target });
        break;
      case 'delete':
        planned.push({ user, method: 'DELETE', path: `/api/tasks/${target}`, target });
        break;
    }
  }
  const replies = await Promise.all(planned.map((p) => send(p.user, p.method, p.path, p.body)));

  t.same(
    replies.filter((r) => r.status >= 500).map((r) => `${r.method} ${r.path} -> ${r.status} ${r.body}`),
    [],
    'no 5xx at all',
  );
  t.same(problemsOf(replies), [], 'every response conforms to openapi.yaml');

  // What each request may answer, given who owns its target and whether the owner deletes it in the burst.
  const deletedByOwner = new Set(planned.filter((p) => p.method === 'DELETE' && p.target !== undefined && owner.get(p.target) === p.user).map((p) => p.target));
  const unexpected: string[] = [];
  const deleted = new Set<string>();
  for (const [i, p] of planned.entries()) {
    const status = replies[i]?.status ?? 0;
    let allowed: number[];
    if (p.target === undefined) {
      allowed = p.method === 'POST' ? [201] : [200];
    } else {
      const mine = owner.get(p.target) === p.user;
      const ok = p.method === 'DELETE' ? 204 : 200;
      // Someone else's task: 403 while it exists, 404 once its owner has deleted it.
      allowed = mine ? [ok] : [403];
      if (deletedByOwner.has(p.target)) allowed.push(404);
    }
    if (!allowed.includes(status)) unexpected.push(`${p.user} ${p.method} ${p.path} -> ${status} (expected ${allowed.join(' or ')})`);
    if (p.method === 'DELETE' && status === 204 && p.target !== undefined) {
      if (deleted.has(p.target)) unexpected.push(`${p.path} was deleted twice`);
      deleted.add(p.target);
    }
  }
  t.same(unexpected, [], 'every status is the one ownership and the burst allow');
  t.ok(
    replies.some((r) => r.status === 403),
    'the burst did aim at other users\' tasks',
  );
  t.ok(deleted.size > 0, 'and did delete some while others were using them');

  // A refused request changed nothing: a seed task's title and status come from its seed or its owner's own updates.
  const titles = new Map([...seedTitle].map(([id, title]) => [id, new Set([title])]));
  const completedByOwner = new Set<string>();
  for (const [i, p] of planned.entries()) {
    if (p.target === undefined || owner.get(p.target) !== p.user || replies[i]?.status !== 200) continue;
    const body = p.body as { title?: string; status?: string } | undefined;
    if (body?.title !== undefined) titles.get(p.target)?.add(body.title);
    if (body?.status === 'completed') completedByOwner.add(p.target);
  }
  const survivors = await sql<{ id: string; title: string; status: string }[]>`
    SELECT id, title, status FROM tasks WHERE id = ANY(${[...owner.keys()]}::uuid[])`;
  t.same(
    survivors.filter((x) => !titles.get(x.id)?.has(x.title) || (x.status === 'completed' && !completedByOwner.has(x.id))).map((x) => x.id),
    [],
    'no task was changed by anyone but its owner',
  );

  // Afterwards the data adds up: seeds minus deletions plus creations, each with its owner.
  const created = replies.filter((r) => r.method === 'POST' && r.status === 201).map((r) => JSON.parse(r.body) as { id: string; user_id: string });
  const expected = new Map(users.map((u) => [u, new Set<string>()]));
  for (const [id, user] of owner) if (!deleted.has(id)) expected.get(user)?.add(id);
  for (const task of created) expected.get(task.user_id)?.add(task.id);

  for (const [user, items] of await listOfEach(t, users)) {
    t.same(
      items.map((x) => x.id).sort(),
      [...(expected.get(user) ?? [])].sort(),
      `${user}: the tasks left are the seeds not deleted plus the ones created`,
    );
    t.ok(
      items.every((x) => x.user_id === user),
      `${user} sees no one else's task`,
    );
  }
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM users`;
  t.equal(row?.n, users.length, 'still one users row per user');
});
