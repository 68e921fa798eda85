-- Users are owned by the auth server (Better Auth); this is their mirror, so that
-- tasks.user_id is a real foreign key. A row appears on the user's first write.
CREATE TABLE users (
  id text PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 255),
  email text,
  created_at timestamptz(3) NOT NULL DEFAULT now()
);

-- Millisecond timestamps: exactly what a JavaScript Date and the API carry, so the
-- pagination cursor round-trips without loss.
CREATE TABLE tasks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  title text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed')),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now()
);

-- The list query: one user's tasks, newest first, with and without a status filter
-- (read backwards for created_at DESC, id DESC).
CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at, id);
CREATE INDEX tasks_user_status_created_idx ON tasks (user_id, status, created_at, id);
