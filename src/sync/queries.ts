import type { Sql } from '../db/client.ts';
import type { Deadline } from '../db/deadline.ts';
import type { components } from '../generated/openapi.ts';
import { toTask, type Task } from '../tasks/queries.ts';
import type { Position } from './position.ts';

export type Change = components['schemas']['Change'];

/** A task's columns (all null for a deletion), with where it stands in the feed. */
type ChangeRow = { [K in keyof Task]: Task[K] | null } & {
  /** The user's counter now, and the lowest position still answerable (null: no writes yet). */
  head: string | null;
  floor: string | null;
  seq: string | null;
  deleted: boolean | null;
};

export interface ChangeBatch {
  changes: Array<{ position: Position; change: Change }>;
  more: boolean;
  head: number;
  floor: number;
}

export function createSyncQueries(sql: Sql) {
  return {
    /**
     * The caller's changes after `after`, in commit order: tasks whose last change is
     * later (upserts) and tombstones (deletes), merged on (counter, id). Each task has
     * one position, so it comes at most once. `full`: a full sync, current tasks only.
     * Read in one statement, so the head and floor agree with the rows.
     */
    async changesAfter(deadline: Deadline, userId: string, after: Position, limit: number, full: boolean): Promise<ChangeBatch> {
      // Each side is read in order from its own index and cut at limit + 1; the merge of
      // those (at most 2 × (limit + 1) rows) is done here, so no plan ever sorts a table.
      const rows = await deadline.run(sql<ChangeRow[]>`
        SELECT u.change_seq AS head, u.sync_floor AS floor, c.*
        FROM (SELECT 1) AS one
        LEFT JOIN users AS u ON u.id = ${userId}
        LEFT JOIN (
          (SELECT change_seq AS seq, id, title, status, created_at, updated_at, notes, due_date::text AS due_date, completed_at, position,
             false AS deleted
           FROM tasks
           WHERE user_id = ${userId} AND (change_seq, id) > (${after.seq}, ${after.id}::uuid)
           ORDER BY change_seq, id LIMIT ${limit + 1})
          UNION ALL
          (SELECT change_seq, task_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, true
           FROM task_tombstones
           WHERE user_id = ${userId} AND (change_seq, task_id) > (${after.seq}, ${after.id}::uuid) AND NOT ${full}
           ORDER BY change_seq, task_id LIMIT ${limit + 1})
        ) AS c ON true`);
      // (uuid order is the byte order of the lower-case hex text: compare code units, not locale.)
      const merged = rows
        .filter((row) => row.seq !== null && row.id !== null)
        .sort((a, b) => Number(a.seq) - Number(b.seq) || ((a.id ?? '') < (b.id ?? '') ? -1 : 1))
        .slice(0, limit + 1);
      const first = rows[0];
      const changes: ChangeBatch['changes'] = [];
      for (const row of merged.slice(0, limit)) {
        if (row.seq === null || row.id === null) continue;
        const position = { seq: Number(row.seq), id: row.id };
        changes.push({
          position,
          change: row.deleted
            ? { type: 'delete', id: row.id }
            : {
                type: 'upsert',
                task: toTask({ ...(row as Task), user_id: userId }),
              },
        });
      }
      return {
        changes,
        more: merged.length > limit,
        head: Number(first?.head ?? 0),
        floor: Number(first?.floor ?? 0),
      };
    },
  };
}

export type SyncQueries = ReturnType<typeof createSyncQueries>;
