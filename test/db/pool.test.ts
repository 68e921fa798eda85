/**
 * The pool's size comes from the URL's own `?max=` or an explicit max (DB_POOL_MAX),
 * measured as connections PostgreSQL actually sees.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import t from 'tap';
import { createSql } from '../../src/db/client.ts';
import { databaseUrl } from '../helper.ts';

/** Runs 12 queries at once through a pool and returns how many connections PostgreSQL saw. */
async function connectionsUnderLoad(url: string, max?: number): Promise<number> {
  const name = `pool-${randomBytes(4).toString('hex')}`;
  const u = new URL(url);
  u.searchParams.set('application_name', name);
  const sql = createSql(u.toString(), max === undefined ? {} : { max });
  const observer = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
  try {
    const load = Promise.all(Array.from({ length: 12 }, () => sql`SELECT pg_sleep(0.4)`));
    await new Promise((r) => setTimeout(r, 250));
    const [row] = await observer<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${name}`;
    await load;
    return row?.n ?? 0;
  } finally {
    await sql.end({ timeout: 5 });
    await observer.end({ timeout: 5 });
  }
}

t.test("the URL's ?max= sets the pool size (the driver alone would take it as one connection)", async (t) => {
  const u = new URL(databaseUrl());
  u.searchParams.set('max', '3');
  t.equal(await connectionsUnderLoad(u.toString()), 3);
});

t.test('an explicit max (DB_POOL_MAX) wins over the URL', async (t) => {
  const u = new URL(databaseUrl());
  u.searchParams.set('max', '3');
  t.equal(await connectionsUnderLoad(u.toString(), 2), 2);
});

t.test('without either, 10', async (t) => {
  t.equal(await connectionsUnderLoad(databaseUrl()), 10);
});
