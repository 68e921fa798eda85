/**
 * The manual-order keys computed in PostgreSQL (sql/0003_task_model.sql) against the npm
 * package clients use, fractional-indexing 4.0.0: todo_key_between gives the library's
 * key for every pair of bounds, and raises where the library throws (and where it would
 * carry on with a key out of order or a stray character); todo_key_for_index numbers
 * keys that the library accepts; and keys sort the same in PostgreSQL (COLLATE "C") as
 * with JavaScript's `<`. Thousands of pairs go to the server in a few statements.
 *
 * The pairs come from a seeded PRNG; ORDER_KEYS_SEED=<n> replays another seed.
 */
import { generateKeyBetween } from 'fractional-indexing';
import t from 'tap';
import { createSql, type Sql } from '../../src/db/client.ts';
import { freshSchema, type Test } from '../helper.ts';
import { prng } from '../prng.ts';

const SEED = Number(process.env.ORDER_KEYS_SEED ?? 1_202_604);

type Bound = string | null;
type Pair = readonly [Bound, Bound];

const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const HEADS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** The one integer the library refuses as a key: nothing sorts below it. */
const SMALLEST = 'A' + '0'.repeat(26);
const LARGEST = 'z'.repeat(27);
/** What the SQL side (through try_key_between) answers for a refused pair. */
const ERROR = 'ERROR 22023';
/** The range of todo_key_for_index: 0 <= i < 62^5. */
const INDEX_END = 62 ** 5;

/** Integer-part length for a head: 'a'..'z' -> 2..27, 'Z'..'A' -> 2..27. */
function intLength(head: string): number {
  const i = HEADS.indexOf(head);
  return i < 26 ? 27 - i : i - 24;
}

/** The library's key, or ERROR where it throws. */
function lib(lo: Bound, hi: Bound): string {
  try {
    return generateKeyBetween(lo, hi);
  } catch {
    return ERROR;
  }
}


class Random {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  char(s: string): string {
    return s.charAt(this.int(s.length));
  }
  /** A digit, often one at an edge (0, 1, the middle, y, z), where carries and rounding happen. */
  digit(): string {
    return this.next() < 0.5 ? this.char('01UVyz') : this.char(DIGITS);
  }
  /** Any valid key: a head (mostly a short one), its digits, a fraction with no trailing '0'. */
  key(): string {
    const head = this.next() < 0.7 ? this.char('XYZabc') : this.char(HEADS);
    let key = head;
    for (let i = 1; i < intLength(head); i++) key += this.digit();
    return key === SMALLEST ? key + 'V' : key + this.fraction();
  }
  /** A fraction (maybe empty) that may begin with zeros but does not end with one. */
  fraction(): string {
    let f = '';
    for (let n = this.pick([0, 0, 1, 1, 2, 3, 5]); n > 0; n--) f += this.digit();
    return f.endsWith('0') ? f.slice(0, -1) + this.char(DIGITS.slice(1)) : f;
  }
}

/** Pairs of bounds as the library would be asked for them, each with lo < hi. */
function validPairs(seed: number): Pair[] {
  const r = new Random(seed);
  const pairs: Pair[] = [];

  /** From (lo, hi), `steps` keys, each replacing the bound that `towardLo` says. */
  const bisect = (lo: Bound, hi: Bound, steps: number, towardLo: () => boolean) => {
    for (let i = 0; i < steps; i++) {
      const mid = generateKeyBetween(lo, hi);
      pairs.push([lo, hi]);
      if (mid === SMALLEST) break; // the library gives it (before 'A0...01') but refuses it as a bound
      if (towardLo()) hi = mid;
      else lo = mid;
    }
  };
  const always = () => true;
  const never = () => false;
  const coin = () => r.next() < 0.5;

  // Around the integer-part boundaries: for every head its smallest and largest integer,
  // and a few keys known to be awkward. Chains to the front and to the back of each,
  // bisections between neighbours, and every ordered pair of them.
  const boundary = new Set(['Zz', 'a0', 'a1', 'az', 'b00', 'b0z', 'bzz', 'c000', 'Yzz', 'Z0', 'ZzV', 'a0V', 'a00V', 'a0z', 'a0zzV']);
  for (const head of HEADS) {
    const n = intLength(head) - 1;
    boundary.add(head + '0'.repeat(n)).add(head + 'z'.repeat(n)).add(head + '0'.repeat(n - 1) + '1');
  }
  boundary.delete(SMALLEST);
  boundary.add(SMALLEST + '1').add(SMALLEST + '0V').add(SMALLEST + '001').add(LARGEST + 'V').add(LARGEST + 'zz');
  const edges = [...boundary].sort();
  for (const k of edges) {
    bisect(null, k, 20, always);
    bisect(k, null, 20, never);
  }
  for (let i = 0; i + 1 < edges.length; i++) bisect(edges[i] ?? null, edges[i + 1] ?? null, 12, coin);
  for (const lo of edges) for (const hi of edges) if (lo < hi) pairs.push([lo, hi]);

  // Lists built by inserts: at random places, always after the first, always before the last.
  const inserts = (n: number, place: (length: number) => number) => {
    const list: string[] = [];
    for (let i = 0; i < n; i++) {
      const p = place(list.length);
      const lo = list[p - 1] ?? null;
      const hi = list[p] ?? null;
      pairs.push([lo, hi]);
      list.splice(p, 0, generateKeyBetween(lo, hi));
    }
  };
  inserts(2000, (length) => r.int(length + 1));
  inserts(300, (length) => Math.min(length, 1));
  inserts(300, (length) => Math.max(length - 1, 0));

  // Deep bisections between the same two keys, in random directions and one way.
  for (const [lo, hi] of [['a0', 'a1'], ['Zz', 'a0'], ['az', 'b00'], ['a0', 'a0V'], [null, SMALLEST + '1'], [LARGEST, null]] as const) {
    bisect(lo, hi, 200, coin);
    bisect(lo, hi, 100, always);
    bisect(lo, hi, 100, never);
  }

  // Random valid keys, the library's or not: apart, with the same integer part, and one
  // extending the other (a shared prefix, zeros in between).
  for (let i = 0; i < 1500; i++) {
    const a = r.key();
    const b = r.next() < 0.5 ? r.key() : a.slice(0, intLength(a.charAt(0))) + r.fraction();
    const c = a + '0'.repeat(r.int(3)) + r.char(DIGITS.slice(1)) + r.fraction();
    if (a !== b) pairs.push(a < b ? [a, b] : [b, a]);
    pairs.push([a, c], [null, a], [a, null]);
  }
  return pairs;
}

/** A valid key spoiled in one of the ways the library checks for, or one it does not. */
function spoiled(r: Random): string {
  const k = r.key();
  switch (r.int(7)) {
    case 0:
      return k + '0'; // a trailing zero (or an integer part one digit too long)
    case 1:
      return k.slice(0, -1); // too short, or now ending in '0'
    case 2:
      return r.char('0123456789') + k.slice(1); // a digit as the head
    case 3:
      return r.char(HEADS) + k.slice(1); // another head: most likely the wrong length
    case 4: {
      const at = r.int(k.length);
      return k.slice(0, at) + r.char(' -~_./é[') + k.slice(at + 1); // a stray character
    }
    case 5:
      return r.pick(['', SMALLEST, 'a', 'A']);
    default:
      return k;
  }
}

/** Bounds with a character that is not a base-62 digit: SQL refuses them, the library (4.0.0) reads them as '0'. */
const STRAY = /[^0-9A-Za-z]/;

/** What todo_key_between must answer: the library's key, or an error where it throws, and where it swaps or misreads. */
function expected(lo: Bound, hi: Bound): string {
  if ((lo !== null && STRAY.test(lo)) || (hi !== null && STRAY.test(hi))) return ERROR;
  if (lo !== null && hi !== null && lo > hi) return ERROR;
  return lib(lo, hi);
}

interface Db {
  sql: Sql;
  /**
   * todo_key_between for every pair, in one statement: the key, or 'ERROR <sqlstate>'.
   * With `icu`, the bounds arrive in the linguistic collation "und-x-icu" ('a0' < 'Zz').
   */
  between(pairs: readonly Pair[], icu?: boolean): Promise<string[]>;
  /** Whether the server has the ICU collation "und-x-icu". */
  hasIcu: boolean;
  /** SELECT ... ORDER BY k COLLATE "C". */
  sorted(keys: readonly string[]): Promise<string[]>;
}

async function db(t: Test): Promise<Db> {
  const { url } = await freshSchema(t);
  const sql = createSql(url, { max: 1 });
  t.teardown(() => sql.end());
  // In the test's own schema (dropped at teardown): an error becomes a row, not the end of the batch.
  await sql`
    CREATE FUNCTION try_key_between(lo text, hi text) RETURNS text LANGUAGE plpgsql AS $$
    BEGIN
      RETURN todo_key_between(lo, hi);
    EXCEPTION WHEN OTHERS THEN
      RETURN 'ERROR ' || SQLSTATE;
    END $$`;
  const [icu] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_collation WHERE collname = 'und-x-icu'`;
  return {
    sql,
    hasIcu: icu?.n === 1,
    async between(pairs, icu = false) {
      const bound = (i: number) => sql.unsafe(`(p ->> ${i})${icu ? ' COLLATE "und-x-icu"' : ''}`);
      const out: string[] = [];
      for (let i = 0; i < pairs.length; i += 5000) {
        const rows = await sql<{ k: string | null }[]>`
          SELECT try_key_between(${bound(0)}, ${bound(1)}) AS k
          FROM jsonb_array_elements(${sql.json(pairs.slice(i, i + 5000))}) WITH ORDINALITY AS e (p, n)
          ORDER BY n`;
        out.push(...rows.map((row) => String(row.k)));
      }
      return out;
    },
    async sorted(keys) {
      const rows = await sql<{ k: string }[]>`
        SELECT k FROM jsonb_array_elements_text(${sql.json(keys)}) AS k ORDER BY k COLLATE "C"`;
      return rows.map((row) => row.k);
    },
  };
}

/** The pairs whose SQL answer is not the expected one (the first few, for the message). */
function mismatches(pairs: readonly Pair[], got: readonly string[], want: (lo: Bound, hi: Bound) => string) {
  const bad: Array<{ lo: Bound; hi: Bound; sql: string | undefined; expected: string }> = [];
  pairs.forEach(([lo, hi], i) => {
    const expectedKey = want(lo, hi);
    if (got[i] !== expectedKey) bad.push({ lo, hi, sql: got[i], expected: expectedKey });
  });
  return { count: bad.length, first: bad.slice(0, 10) };
}

const jsSort = (keys: Iterable<string>) => [...keys].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));

t.test(`todo_key_between returns the key of fractional-indexing's generateKeyBetween (seed ${SEED})`, async (t) => {
  const { between, hasIcu } = await db(t);
  const pairs = validPairs(SEED);
  t.ok(pairs.length > 10_000, `${pairs.length} pairs`);
  t.ok(
    pairs.every(([lo, hi]) => lo === null || hi === null || lo < hi),
    'every pair is in order',
  );
  t.equal(pairs.filter(([lo, hi]) => lib(lo, hi) === ERROR).length, 0, 'the library accepts every pair');
  t.ok(Math.max(...pairs.map(([lo, hi]) => Math.max(lo?.length ?? 0, hi?.length ?? 0))) > 40, 'some keys are long (deep bisections)');

  const got = await between(pairs);
  t.same(mismatches(pairs, got, lib), { count: 0, first: [] }, 'the SQL key is the library key, for every pair');
  // Bounds in a linguistic collation (a column's, say) change nothing: the function compares bytes.
  if (hasIcu) {
    t.same(await between(pairs, true), got, 'the same keys with the bounds in collation "und-x-icu"');
  } else {
    t.comment('no ICU collation "und-x-icu" on this server: that check is skipped');
  }

  t.same(await between([[null, null]]), ['a0'], 'no bounds: a0');
  // The library gives the smallest integer (before 'A0...01'), then refuses it as a bound; so does SQL.
  const smallestPlusOne = 'A' + '0'.repeat(25) + '1';
  t.same(await between([[null, smallestPlusOne], [null, SMALLEST], [SMALLEST, null]]), [SMALLEST, ERROR, ERROR], 'SQL: the smallest integer');
  t.same([lib(null, smallestPlusOne), lib(null, SMALLEST), lib(SMALLEST, null)], [SMALLEST, ERROR, ERROR], 'the library: the same');
  t.same(await between([[null, 'a0'], ['a0', null], ['Zz', 'a0'], ['az', null], [null, 'b00'], [LARGEST, null]]), [
    'Zz',
    'a1',
    'ZzV',
    'b00',
    'az',
    LARGEST + 'V',
  ], 'across the integer-part boundaries');
});

t.test('todo_key_between raises 22023 where the library throws, and on bounds out of order or with stray characters', async (t) => {
  const { sql, between } = await db(t);

  // [lo, hi, why]: the library throws on each.
  const thrown: Array<[Bound, Bound, string]> = [
    ['', null, 'empty lo'],
    [null, '', 'empty hi'],
    ['a', null, 'integer part too short'],
    [null, 'b0', "integer part too short for 'b'"],
    ['a00', null, 'trailing zero in the fraction'],
    ['a0', 'a10', 'trailing zero in hi'],
    ['a0V0', 'a1', 'trailing zero after other digits'],
    ['0a', null, 'a digit as head'],
    [' a0', null, 'a space as head'],
    [SMALLEST, null, 'the smallest integer'],
    [null, SMALLEST, 'the smallest integer as hi'],
    ['a0', 'a0', 'lo = hi'],
    ['b00V', 'b00V', 'lo = hi, with a fraction'],
  ];
  for (const [lo, hi, why] of thrown) {
    t.equal(lib(lo, hi), ERROR, `the library throws: ${why}`);
  }
  t.same(
    await between(thrown.map(([lo, hi]) => [lo, hi])),
    thrown.map(() => ERROR),
    'SQL raises 22023 on each',
  );

  // Where 4.0.0 carries on, SQL refuses: a move's neighbours out of order mean a bug, not a request.
  const stricter: Array<[Bound, Bound, string, string]> = [
    ['a1', 'a0', 'a0V', 'lo > hi: the library swaps them'],
    ['b00', 'Zz', 'a0', 'lo > hi across heads'],
    ['a0-', null, 'a1', "a '-' in the fraction, read as '0'"],
    ['a-', null, 'a1', "a '-' as integer digit"],
    ['a0', 'a0~', 'a00V', "a '~' in hi"],
    ['a0é', null, 'a1', 'a non-ASCII character'],
    ['a0 ', 'a1', 'a0V', 'a trailing space'],
  ];
  for (const [lo, hi, answer, why] of stricter) {
    t.equal(lib(lo, hi), answer, `the library answers ${answer}: ${why}`);
  }
  t.same(
    await between(stricter.map(([lo, hi]) => [lo, hi])),
    stricter.map(() => ERROR),
    'SQL raises 22023 on each',
  );

  // The real function, not the wrapper: an exception with the SQLSTATE and the key.
  await t.rejects(sql`SELECT todo_key_between('a00', NULL)`, { code: '22023', message: /invalid order key: a00/ });
  await t.rejects(sql`SELECT todo_key_between('a1', 'a0')`, { code: '22023', message: /a1 >= a0/ });

  // Spoiled keys from the PRNG, against valid ones, NULL, and each other, in either order.
  const r = new Random(SEED + 1);
  const pairs: Pair[] = [];
  for (let i = 0; i < 3000; i++) {
    const [a, b] = [spoiled(r), r.next() < 0.3 ? spoiled(r) : r.key()];
    pairs.push([a, b], [b, a], [a, null], [null, a], [a, a]);
  }
  const got = await between(pairs);
  t.same(mismatches(pairs, got, expected), { count: 0, first: [] }, `SQL raises exactly where expected, else agrees (seed ${SEED + 1})`);
  const errors = got.filter((k) => k === ERROR).length;
  t.ok(errors > pairs.length / 4 && errors < pairs.length, `a mix of errors (${errors}) and keys (${pairs.length - errors})`);
  t.same(
    got.filter((k) => k.startsWith('ERROR') && k !== ERROR),
    [],
    'every error is 22023',
  );
});

t.test('todo_key_between is IMMUTABLE, PARALLEL SAFE and not STRICT; todo_key_for_index likewise, and STRICT', async (t) => {
  const { sql } = await db(t);
  const rows = await sql<{ proname: string; provolatile: string; proparallel: string; proisstrict: boolean }[]>`
    SELECT proname, provolatile, proparallel, proisstrict FROM pg_proc
    WHERE proname IN ('todo_key_between', 'todo_key_for_index') AND pronamespace = current_schema()::regnamespace
    ORDER BY proname`;
  t.same(rows, [
    { proname: 'todo_key_between', provolatile: 'i', proparallel: 's', proisstrict: false },
    { proname: 'todo_key_for_index', provolatile: 'i', proparallel: 's', proisstrict: true },
  ]);
});

t.test('todo_key_for_index: e00000 to ezzzzz, strictly increasing, 6 characters, keys the library accepts', async (t) => {
  const { sql, between, sorted } = await db(t);
  const r = new Random(SEED + 2);
  const sample = new Set([0, 1, 2, 61, 62, 63, 3843, 3844, 238_327, 238_328, 14_776_335, 14_776_336, INDEX_END - 2, INDEX_END - 1]);
  while (sample.size < 600) sample.add(r.int(INDEX_END));
  for (let i = 0; i < 100; i++) sample.add(i);
  const indexes = [...sample].sort((x, y) => x - y);

  const rows = await sql<{ k: string }[]>`
    SELECT todo_key_for_index(i::bigint) AS k
    FROM jsonb_array_elements_text(${sql.json(indexes)}) WITH ORDINALITY AS e (i, n) ORDER BY n`;
  const keys = rows.map((row) => row.k);
  t.equal(keys[0], 'e00000', 'the first key');
  t.equal(keys.at(-1), 'ezzzzz', 'the last key, at 62^5 - 1');
  t.ok(
    keys.every((k) => k.length === 6),
    'every key has 6 characters',
  );
  t.ok(
    keys.every((k, i) => i === 0 || (keys[i - 1] as string) < k),
    'strictly increasing in i (JavaScript <)',
  );
  t.same(await sorted(keys), keys, 'and in PostgreSQL (COLLATE "C")');
  t.same(
    keys.map((k) => [...k.slice(1)].reduce((n, c) => n * 62 + DIGITS.indexOf(c), 0)),
    indexes,
    "each is 'e' and i in 5 base-62 digits",
  );

  // The library takes them as bounds, and the SQL function agrees with it there too.
  const pairs: Pair[] = [[null, keys[0] ?? null], [keys.at(-1) ?? null, null]];
  keys.forEach((k, i) => {
    pairs.push([k, null], [null, k]);
    if (i > 0) pairs.push([keys[i - 1] ?? null, k]);
  });
  t.equal(pairs.filter(([lo, hi]) => lib(lo, hi) === ERROR).length, 0, 'the library accepts every key as a bound');
  t.same(mismatches(pairs, await between(pairs), lib), { count: 0, first: [] }, 'todo_key_between agrees with the library on them');
  t.same(await between([[null, 'e00000'], ['ezzzzz', null]]), ['dzzzz', 'f000000'], 'short keys before the first and after the last');

  for (const i of [-1, INDEX_END, Number.MAX_SAFE_INTEGER]) {
    await t.rejects(sql`SELECT todo_key_for_index(${i}::bigint)`, { code: '22023' }, `${i} is out of range`);
  }
  await t.rejects(sql`SELECT todo_key_for_index('9223372036854775807'::bigint)`, { code: '22023' }, 'the largest bigint is out of range');
  const [row] = await sql<{ k: string | null }[]>`SELECT todo_key_for_index(NULL) AS k`;
  t.equal(row?.k, null, 'NULL gives NULL');
});

t.test(`keys sort the same under COLLATE "C" as with JavaScript < (seed ${SEED})`, async (t) => {
  const { sql, sorted, hasIcu } = await db(t);
  const r = new Random(SEED + 3);
  const keys = new Set<string>();
  for (const [lo, hi] of validPairs(SEED)) keys.add(generateKeyBetween(lo, hi));
  for (let i = 0; i < 3000; i++) keys.add(r.key());
  // Digits next to each other in all three runs, and the heads around 'Z'/'a'.
  for (const c of DIGITS) keys.add('a0' + c + 'V').add('Z' + c).add('a' + c);
  const expectedOrder = jsSort(keys);
  t.ok(expectedOrder.length > 10_000, `${expectedOrder.length} distinct keys`);
  t.same(await sorted(expectedOrder.slice().reverse()), expectedOrder, 'ORDER BY k COLLATE "C" is the JavaScript order');
  if (hasIcu) {
    // Why the functions and the queries must say COLLATE "C": a linguistic order is another order.
    const [row] = await sql<{ lt: boolean }[]>`SELECT 'a0' < 'Zz' COLLATE "und-x-icu" AS lt`;
    t.equal(row?.lt, true, "under und-x-icu, 'a0' < 'Zz' (in bytes, 'Zz' < 'a0')");
  }
});
