/**
 * The pool's timestamp handling: timestamptz comes back as the RFC 3339 text the
 * contract shows (milliseconds, Z), straight from PostgreSQL's text, for any
 * fraction PostgreSQL prints (it drops trailing zeros).
 */
import t from 'tap';
import { createSql, isoTimestamp } from '../../src/db/client.ts';
import { freshSchema } from '../helper.ts';

t.test('timestamptz values arrive as RFC 3339 with milliseconds', async (t) => {
  const { url } = await freshSchema(t);
  const sql = createSql(url, { max: 1 });
  t.teardown(() => sql.end());
  for (const value of ['2026-01-02T03:04:05.000Z', '2026-01-02T03:04:05.100Z', '2026-01-02T03:04:05.120Z', '2026-12-31T23:59:59.999Z', '0999-06-01T00:00:00.007Z']) {
    const [row] = await sql<{ at: string }[]>`SELECT ${value}::timestamptz(3) AS at`;
    t.equal(row?.at, value, `${value} round-trips`);
  }
  const [row] = await sql<{ at: string; zone: string }[]>`SELECT '2026-06-01 12:00:00+02'::timestamptz AS at, current_setting('TimeZone') AS zone`;
  t.equal(row?.zone, 'UTC', 'the session is in UTC');
  t.equal(row?.at, '2026-06-01T10:00:00.000Z');
});

t.test('isoTimestamp: other zones and forms take the slow, exact way', async (t) => {
  t.equal(isoTimestamp('2026-06-01 12:00:00.5+00'), '2026-06-01T12:00:00.500Z');
  t.equal(isoTimestamp('2026-06-01 12:00:00+02'), '2026-06-01T10:00:00.000Z', 'another offset');
  t.equal(isoTimestamp('2026-06-01 12:00:00.25+05:30'), '2026-06-01T06:30:00.250Z', 'an offset with minutes');
});
