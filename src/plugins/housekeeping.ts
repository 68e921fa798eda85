import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Sql } from '../db/client.ts';

export interface HousekeepingOptions {
  /** How long deletions stay in the change feed (SYNC_RETENTION_DAYS). */
  syncRetentionDays: number;
  /** How often to sweep; 0 disables the timer (tests call `app.housekeeping()`). */
  intervalMs?: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Forgets what has expired: idempotency keys after 24 h, tombstones after the retention period. */
    housekeeping: () => Promise<{ keys: number; tombstones: number }>;
  }
}

/**
 * Expiry without a cron job: every instance sweeps now and then (idempotent, cheap on
 * the created_at / deleted_at indexes, in bounded batches). Expired keys are already
 * ignored by the create statement, so the sweep only reclaims space.
 */
export async function sweep(sql: Sql, syncRetentionDays: number): Promise<{ keys: number; tombstones: number }> {
  const [keys] = await sql<{ count: number }[]>`
    WITH gone AS (
      DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM idempotency_keys WHERE created_at <= now() - interval '24 hours' AND key <> task_id::text LIMIT 10000))
      RETURNING 1
    )
    SELECT count(*)::int AS count FROM gone`;
  // A user's floor rises to the newest position purged: a `since` below it is 410 SYNC_EXPIRED.
  // The ids stay retired, so that a late create with a client id never brings a task back.
  const [tombstones] = await sql<{ count: number }[]>`
    WITH gone AS (
      DELETE FROM task_tombstones WHERE task_id = ANY (ARRAY(
        SELECT task_id FROM task_tombstones
        WHERE deleted_at <= now() - make_interval(days => ${syncRetentionDays}) LIMIT 10000))
      RETURNING task_id, user_id, change_seq
    ),
    retired AS (
      INSERT INTO retired_task_ids (task_id) SELECT task_id FROM gone ON CONFLICT DO NOTHING
    ),
    floors AS (
      UPDATE users SET sync_floor = GREATEST(users.sync_floor, top.seq)
      FROM (SELECT user_id, max(change_seq) AS seq FROM gone GROUP BY user_id) AS top
      WHERE users.id = top.user_id
    )
    SELECT count(*)::int AS count FROM gone`;
  return { keys: keys?.count ?? 0, tombstones: tombstones?.count ?? 0 };
}

async function housekeeping(app: FastifyInstance, options: HousekeepingOptions): Promise<void> {
  const run = () => sweep(app.sql, options.syncRetentionDays);
  app.decorate('housekeeping', run);
  const intervalMs = options.intervalMs ?? 10 * 60_000;
  if (intervalMs === 0) return;
  let timer: NodeJS.Timeout | undefined;
  app.addHook('onReady', async () => {
    timer = setInterval(() => {
      run().catch((err: unknown) => app.log.warn({ err }, 'housekeeping failed; it is retried at the next interval'));
    }, intervalMs);
    timer.unref();
  });
  app.addHook('onClose', async () => clearInterval(timer));
}

export default fp(housekeeping, { name: 'housekeeping', fastify: '5.x', dependencies: ['db'] });
