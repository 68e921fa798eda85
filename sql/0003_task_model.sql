-- The task model (contract 1.2.0): notes, due dates, completion time, manual order, search.

-- Manual-order keys: computed here, not in the app, so that a create or a move is one
-- round trip that reads its neighbours after locking the row. The keys are exactly those
-- of the npm package fractional-indexing 4.0.0 (generateKeyBetween with its default
-- base-62 digits), so a client using that library agrees with the server. Keys compare
-- as bytes: every comparison of keys says COLLATE "C".

-- The key between lo and hi (NULL: no bound), as generateKeyBetween(lo, hi) returns it.
-- A key is a head ('a'..'z': 2..27 characters of integer part, 'Z'..'A': 2..27) and its
-- base-62 digits, then a fraction with no trailing '0'. Raises 22023 where the library
-- throws, and, stricter than 4.0.0, where it would carry on: for lo > hi (it swaps them)
-- and for characters outside 0-9A-Za-z (it reads them as '0').
CREATE FUNCTION todo_key_between(lo text, hi text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  digits constant text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  -- The integer-part lengths given by the heads of lo and hi.
  la constant int := CASE WHEN ascii(lo) >= ascii('a') THEN ascii(lo) - 95 ELSE 92 - ascii(lo) END;
  lb constant int := CASE WHEN ascii(hi) >= ascii('a') THEN ascii(hi) - 95 ELSE 92 - ascii(hi) END;
  ia text := left(lo, la);
  ib text := left(hi, lb);
  fa text := substr(lo, la + 1);
  fb text := substr(hi, lb + 1);
  r text;
  n int := 0;
  da int;
  db int;
BEGIN
  -- Invalid: a stray character, too short for the head, a trailing zero in the fraction,
  -- or the smallest integer (nothing can go before it).
  IF lo COLLATE "C" !~ '^[A-Za-z][0-9A-Za-z]*$' OR length(lo) < la OR fa LIKE '%0'
     OR lo COLLATE "C" = 'A' || repeat('0', 26) THEN
    RAISE EXCEPTION 'invalid order key: %', lo USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF hi COLLATE "C" !~ '^[A-Za-z][0-9A-Za-z]*$' OR length(hi) < lb OR fb LIKE '%0'
     OR hi COLLATE "C" = 'A' || repeat('0', 26) THEN
    RAISE EXCEPTION 'invalid order key: %', hi USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF lo COLLATE "C" >= hi THEN
    RAISE EXCEPTION 'order keys out of order: % >= %', lo, hi USING ERRCODE = 'invalid_parameter_value';
  END IF;

  IF lo IS NULL AND hi IS NULL THEN
    RETURN 'a0';
  ELSIF lo IS NULL THEN
    -- Before hi: its integer part if hi has a fraction, else the integer below it.
    IF ib COLLATE "C" = 'A' || repeat('0', 26) THEN
      fa := '';  -- hi is the smallest integer and a fraction: below that fraction (below)
    ELSIF fb <> '' THEN
      RETURN ib;
    ELSE
      -- Decrement: trailing '0's become 'z's; if all are '0', the head steps down and the
      -- digit run takes the new head's length. (Head 'A' with all zeros is handled above.)
      r := rtrim(substr(ib, 2), '0');
      IF r <> '' THEN
        RETURN left(ib, 1) || left(r, -1) || substr(digits, strpos(digits, right(r, 1)) - 1, 1)
               || repeat('z', lb - 1 - length(r));
      END IF;
      r := CASE left(ib, 1) WHEN 'a' THEN 'Z' ELSE chr(ascii(ib) - 1) END;
      RETURN r || repeat('z', CASE WHEN ascii(r) >= ascii('a') THEN ascii(r) - 96 ELSE 91 - ascii(r) END);
    END IF;
    ia := ib;
  ELSIF hi IS NOT NULL AND ia COLLATE "C" = ib THEN
    NULL;  -- same integer part: the midpoint of the fractions (below)
  ELSE
    -- After lo: the next integer, unless that is not below hi (or there is none).
    -- Increment: trailing 'z's become '0's; if all are 'z', the head steps up.
    r := rtrim(substr(ia, 2), 'z');
    IF r <> '' THEN
      r := left(ia, 1) || left(r, -1) || substr(digits, strpos(digits, right(r, 1)) + 1, 1)
           || repeat('0', la - 1 - length(r));
    ELSIF left(ia, 1) <> 'z' THEN
      r := CASE left(ia, 1) WHEN 'Z' THEN 'a' ELSE chr(ascii(ia) + 1) END;
      r := r || repeat('0', CASE WHEN ascii(r) >= ascii('a') THEN ascii(r) - 96 ELSE 91 - ascii(r) END);
    ELSE
      r := NULL;  -- the largest integer
    END IF;
    IF r IS NOT NULL AND (hi IS NULL OR r COLLATE "C" < hi) THEN
      RETURN r;
    END IF;
    fb := NULL;
  END IF;

  -- ia || midpoint(fa, fb): drop the common prefix (fa padded with '0's), then take the
  -- middle digit if there is room, else fb's first digit, else fa's and go on unbounded.
  IF fb IS NOT NULL THEN
    WHILE substr(fb, n + 1, 1) COLLATE "C" = coalesce(nullif(substr(fa, n + 1, 1), ''), '0') LOOP
      n := n + 1;
    END LOOP;
    ia := ia || left(fb, n);
    fa := substr(fa, n + 1);
    fb := substr(fb, n + 1);
    da := strpos(digits, coalesce(nullif(left(fa, 1), ''), '0')) - 1;
    db := strpos(digits, left(fb, 1)) - 1;
    IF db - da > 1 THEN
      RETURN ia || substr(digits, (da + db + 1) / 2 + 1, 1);  -- JS Math.round: halves go up
    ELSIF length(fb) > 1 THEN
      RETURN ia || left(fb, 1);
    END IF;
    ia := ia || substr(digits, da + 1, 1);
    fa := substr(fa, 2);
  END IF;
  -- midpoint(fa, NULL): fa's leading 'z's, then the digit halfway from the next one to 62.
  n := length(fa) - length(ltrim(fa, 'z'));
  da := strpos(digits, coalesce(nullif(substr(fa, n + 1, 1), ''), '0')) - 1;
  RETURN ia || left(fa, n) || substr(digits, (da + 62 + 1) / 2 + 1, 1);  -- 62: no upper digit
END $$;

-- The i-th key (0 <= i < 62^5 = 916132832) of a fresh numbering, for renumbering a user's
-- positions: 'e' (an integer part of 6 characters) and i in 5 base-62 digits, from 'e00000'
-- to 'ezzzzz'. Always 6 characters, strictly increasing in i, valid for the library; new
-- keys before the first ('dzzzz') and after the last ('f000000') stay short.
CREATE FUNCTION todo_key_for_index(i bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  digits constant text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
BEGIN
  IF i < 0 OR i >= 916132832 THEN
    RAISE EXCEPTION 'order key index out of range [0, 916132832): %', i USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN 'e' || substr(digits, (i / 14776336 % 62)::int + 1, 1)  -- 62^4
             || substr(digits, (i / 238328 % 62)::int + 1, 1)    -- 62^3
             || substr(digits, (i / 3844 % 62)::int + 1, 1)      -- 62^2
             || substr(digits, (i / 62 % 62)::int + 1, 1)
             || substr(digits, (i % 62)::int + 1, 1);
END $$;

-- The new fields. Notes are never NULL ("" when there are none); a position is a key of
-- todo_key_between, compared byte-wise (COLLATE "C"), so that clients compare alike.
ALTER TABLE tasks
  ADD COLUMN notes text NOT NULL DEFAULT '' CHECK (char_length(notes) <= 8192),
  ADD COLUMN due_date date,
  ADD COLUMN completed_at timestamptz(3),
  ADD COLUMN position text COLLATE "C" CHECK (char_length(position) BETWEEN 1 AND 64);

-- Existing rows: completed tasks were completed at their last change at the latest, and the
-- manual order starts as the order users already see (newest first).
-- The backfill writes a new version of every row. With the indexes in place it adds each to
-- every index one row at a time (52 s of 67 s at 1,100,000 tasks); dropped before it and built
-- after it, in this same transaction so that no query ever sees the table without them, the
-- whole migration took 33 s (README, "Migration 0003 on the large set").
SET LOCAL work_mem = '256MB';
SET LOCAL maintenance_work_mem = '256MB';
ALTER TABLE tasks DROP CONSTRAINT tasks_pkey;
DROP INDEX tasks_user_created_idx, tasks_user_status_created_idx, tasks_user_change_idx;
UPDATE tasks SET completed_at = CASE WHEN tasks.status = 'completed' THEN tasks.updated_at END,
  position = todo_key_for_index(ranked.n - 1)
FROM (SELECT id, row_number() OVER (PARTITION BY user_id ORDER BY created_at DESC, id DESC) AS n FROM tasks) AS ranked
WHERE ranked.id = tasks.id;
ALTER TABLE tasks ALTER COLUMN position SET NOT NULL;
ALTER TABLE tasks ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);
CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at, id);
CREATE INDEX tasks_user_status_created_idx ON tasks (user_id, status, created_at, id);
CREATE INDEX tasks_user_change_idx ON tasks (user_id, change_seq, id);

-- No two tasks of a user share a position. Deferrable, so that a renumbering (one UPDATE
-- over all of a user's tasks) is checked once, at its end, not row by row.
ALTER TABLE tasks ADD CONSTRAINT tasks_user_position_key UNIQUE (user_id, position) DEFERRABLE INITIALLY IMMEDIATE;

-- The lowest key ever issued to the user (never above any of their positions): a create
-- takes the key before it in the statement that bumps the user's counter, so that
-- concurrent creates, serialised on that row, never compute the same key.
ALTER TABLE users ADD COLUMN top_position text COLLATE "C";
-- One pass over the table: the indexes built above cannot serve this transaction
-- (pg_index.indcheckxmin after the backfill's HOT updates), so a per-user lookup would scan
-- the whole table once per user.
UPDATE users SET top_position = tops.top
FROM (SELECT user_id, min(position) AS top FROM tasks GROUP BY user_id) AS tops
WHERE tops.user_id = users.id;

-- One index per sort, with and without the status filter, in the sort's order, so that
-- every page (first or 500 deep) is a range read of an index with no sort.
CREATE INDEX tasks_user_status_position_idx ON tasks (user_id, status, position);
CREATE INDEX tasks_user_updated_idx ON tasks (user_id, updated_at, id);
CREATE INDEX tasks_user_status_updated_idx ON tasks (user_id, status, updated_at, id);
-- sort=due: earliest first, none last, ties newest first, as one descending key (the "due
-- rank": days before 1970-01-01, the lowest value for none) read backwards with created_at, id.
CREATE INDEX tasks_user_due_idx ON tasks (user_id, (COALESCE(DATE '1970-01-01' - due_date, -2147483648)), created_at, id);
CREATE INDEX tasks_user_status_due_idx ON tasks (user_id, status, (COALESCE(DATE '1970-01-01' - due_date, -2147483648)), created_at, id);

-- Search: a case-insensitive substring of title or notes (ILIKE), served by trigrams.
-- pg_trgm ships with PostgreSQL (and Neon); its operator classes are named by the schema
-- the extension lives in, wherever an earlier install put it.
DO $$
DECLARE
  ext_schema text;
BEGIN
  CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
  SELECT n.nspname INTO ext_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
  EXECUTE format('CREATE INDEX tasks_search_idx ON tasks USING gin (title %1$I.gin_trgm_ops, notes %1$I.gin_trgm_ops)', ext_schema);
END $$;

-- What a create answered, to replay it exactly: the Idempotency-Key's or the client id's.
-- A client id's record (its key is the task's id) is kept as long as its task, so only the
-- others expire, and only they are in the sweep's index.
ALTER TABLE idempotency_keys
  ADD COLUMN notes text NOT NULL DEFAULT '',
  ADD COLUMN due_date date,
  ADD COLUMN position text COLLATE "C";
DROP INDEX idempotency_keys_created_idx;
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at) WHERE key <> task_id::text;

-- Ids of deleted tasks whose tombstones were purged: a client-chosen id never brings a
-- deleted task back, however late its create arrives.
CREATE TABLE retired_task_ids (task_id uuid PRIMARY KEY);

-- A move in one round trip: the task's owner is checked, the user's row locked, and only
-- then are the neighbours read, each statement with a fresh snapshot (so concurrent moves
-- of one user always see each other's keys). A key that would pass 64 characters makes it
-- renumber all of the user's keys first (one UPDATE; every renumbered task is a change).
-- Outcomes: found (with the task), missing, forbidden, precondition-failed, bad-neighbour.
-- The caller notifies the change streams when it is found.
CREATE FUNCTION todo_move_task(p_user text, p_id uuid, p_before uuid, p_after uuid, p_to text,
  p_conditional boolean, p_any boolean, p_versions timestamptz[])
RETURNS TABLE (outcome text, owner_id text, id uuid, user_id text, title text, status text,
  created_at timestamptz, updated_at timestamptz, notes text, due_date text, completed_at timestamptz, "position" text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_owner text;
  v_task tasks%ROWTYPE;
  v_top text COLLATE "C";
  v_anchor text COLLATE "C";
  v_lo text COLLATE "C";
  v_hi text COLLATE "C";
  v_key text COLLATE "C";
  v_seq bigint;
  v_now timestamptz;
BEGIN
  SELECT t.user_id INTO v_owner FROM tasks AS t WHERE t.id = p_id;
  IF v_owner IS NULL THEN RETURN QUERY SELECT 'missing', NULL::text, NULL::uuid, NULL, NULL, NULL, NULL::timestamptz, NULL::timestamptz, NULL, NULL, NULL::timestamptz, NULL; RETURN; END IF;
  IF v_owner <> p_user THEN RETURN QUERY SELECT 'forbidden', v_owner, NULL::uuid, NULL, NULL, NULL, NULL::timestamptz, NULL::timestamptz, NULL, NULL, NULL::timestamptz, NULL; RETURN; END IF;

  SELECT u.top_position INTO v_top FROM users AS u WHERE u.id = p_user FOR UPDATE;
  SELECT * INTO v_task FROM tasks AS t WHERE t.id = p_id AND t.user_id = p_user;
  IF NOT FOUND THEN
    RETURN QUERY SELECT CASE WHEN p_conditional THEN 'precondition-failed' ELSE 'missing' END, p_user, NULL::uuid, NULL, NULL, NULL, NULL::timestamptz, NULL::timestamptz, NULL, NULL, NULL::timestamptz, NULL;
    RETURN;
  END IF;
  IF p_conditional AND NOT p_any AND NOT (v_task.updated_at = ANY (p_versions)) THEN
    RETURN QUERY SELECT 'precondition-failed', p_user, NULL::uuid, NULL, NULL, NULL, NULL::timestamptz, NULL::timestamptz, NULL, NULL, NULL::timestamptz, NULL;
    RETURN;
  END IF;

  FOR attempt IN 1..2 LOOP
    IF p_before IS NOT NULL OR p_after IS NOT NULL THEN
      SELECT t."position" INTO v_anchor FROM tasks AS t WHERE t.id = COALESCE(p_before, p_after) AND t.user_id = p_user AND t.id <> p_id;
      IF v_anchor IS NULL THEN
        RETURN QUERY SELECT 'bad-neighbour', p_user, NULL::uuid, NULL, NULL, NULL, NULL::timestamptz, NULL::timestamptz, NULL, NULL, NULL::timestamptz, NULL;
        RETURN;
      END IF;
      IF p_before IS NOT NULL THEN
        v_hi := v_anchor;
        SELECT max(t."position") INTO v_lo FROM tasks AS t WHERE t.user_id = p_user AND t."position" < v_anchor AND t.id <> p_id;
      ELSE
        v_lo := v_anchor;
        SELECT min(t."position") INTO v_hi FROM tasks AS t WHERE t.user_id = p_user AND t."position" > v_anchor AND t.id <> p_id;
      END IF;
    ELSIF p_to = 'top' THEN
      v_lo := NULL;
      v_hi := v_top;
    ELSE
      SELECT max(t."position") INTO v_lo FROM tasks AS t WHERE t.user_id = p_user AND t.id <> p_id;
      v_hi := NULL;
    END IF;
    -- Nothing above the lowest key ever issued may be taken by a create later (see top_position).
    IF v_lo IS NULL AND v_hi IS NOT NULL AND v_top IS NOT NULL AND v_top < v_hi THEN v_hi := v_top; END IF;
    v_key := todo_key_between(v_lo, v_hi);
    EXIT WHEN char_length(v_key) <= 64 OR attempt = 2;

    -- Renumber: every key of the user, in their current order, made short and evenly spaced.
    UPDATE users AS u SET change_seq = u.change_seq + 1 WHERE u.id = p_user RETURNING u.change_seq, clock_timestamp() INTO v_seq, v_now;
    UPDATE tasks AS t SET "position" = todo_key_for_index(r.n - 1), change_seq = v_seq,
      updated_at = GREATEST(v_now, t.updated_at + interval '1 millisecond')
    FROM (SELECT t2.id, row_number() OVER (ORDER BY t2."position") AS n FROM tasks AS t2 WHERE t2.user_id = p_user) AS r
    WHERE t.id = r.id;
    UPDATE users AS u SET top_position = (SELECT min(t."position") FROM tasks AS t WHERE t.user_id = p_user) WHERE u.id = p_user
      RETURNING u.top_position INTO v_top;
  END LOOP;

  UPDATE users AS u SET change_seq = u.change_seq + 1, top_position = LEAST(u.top_position, v_key) WHERE u.id = p_user
    RETURNING u.change_seq, clock_timestamp() INTO v_seq, v_now;
  RETURN QUERY
    UPDATE tasks AS t SET "position" = v_key, change_seq = v_seq, updated_at = GREATEST(v_now, t.updated_at + interval '1 millisecond')
    WHERE t.id = p_id
    RETURNING 'found'::text, t.user_id, t.id, t.user_id, t.title, t.status, t.created_at, t.updated_at, t.notes, t.due_date::text, t.completed_at, t."position";
END $$;
