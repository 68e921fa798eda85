-- Exactly-once writes and the change feed.

-- A per-user change counter, bumped (and so row-locked) by every write of that user in
-- the same statement: positions are then in commit order for that user, which a global
-- sequence or a timestamp cannot promise. sync_floor is the highest position whose
-- tombstones were purged: a `since` below it can no longer be answered.
ALTER TABLE users
  ADD COLUMN change_seq bigint NOT NULL DEFAULT 0,
  ADD COLUMN sync_floor bigint NOT NULL DEFAULT 0;

-- The counter's value at the task's last change. (The default, 0, is for rows written
-- outside the API, such as a benchmark's seed: they sync as part of a full sync only.)
ALTER TABLE tasks ADD COLUMN change_seq bigint;
UPDATE tasks SET change_seq = ranked.n
FROM (SELECT id, row_number() OVER (PARTITION BY user_id ORDER BY updated_at, id) AS n FROM tasks) AS ranked
WHERE ranked.id = tasks.id;
UPDATE users SET change_seq = COALESCE((SELECT max(change_seq) FROM tasks WHERE tasks.user_id = users.id), 0);
ALTER TABLE tasks ALTER COLUMN change_seq SET NOT NULL, ALTER COLUMN change_seq SET DEFAULT 0;
CREATE INDEX tasks_user_change_idx ON tasks (user_id, change_seq, id);

-- Deleted tasks, remembered for the change feed until the retention period ends.
CREATE TABLE task_tombstones (
  task_id uuid PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  change_seq bigint NOT NULL,
  deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_tombstones_user_change_idx ON task_tombstones (user_id, change_seq, task_id);
CREATE INDEX task_tombstones_deleted_at_idx ON task_tombstones (deleted_at);

-- Idempotency-Key records of successful creates: enough to replay the 201 exactly
-- (its body is a function of these columns). Scoped to the user; kept 24 hours.
CREATE TABLE idempotency_keys (
  user_id text NOT NULL,
  key text NOT NULL,
  title text NOT NULL,
  task_id uuid NOT NULL,
  created_at timestamptz(3) NOT NULL,
  PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
