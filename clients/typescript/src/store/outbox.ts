/**
 * The outbox's mutations and how each shows locally: the view is the server's state
 * with every queued mutation applied on top, in order (a rebase, each time either changes).
 */
import { generateKeyBetween } from 'fractional-indexing';
import type { MoveTarget, Task } from '../index.js';

/** The fields an update may change. */
export type Fields = Partial<Pick<Task, 'title' | 'status' | 'notes' | 'due_date'>>;

export type Mutation =
  | { kind: 'create'; id: string; title: string; notes: string; due_date: string | null; at: string }
  | {
      kind: 'update';
      id: string;
      /** Only the fields the user changed... */
      fields: Fields;
      /** ...their values when the user changed them (what "nobody else changed it" means)... */
      base: Fields;
      /** ...and the server version it was made on (its If-Match); null for a task not yet created. */
      version: string | null;
      at: string;
    }
  | { kind: 'move'; id: string; to: MoveTarget }
  | { kind: 'remove'; id: string };

/** Positions compare as byte strings; their keys are fractional-indexing's, as the server's. */
const byPosition = (a: Task, b: Task) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0);

/** A key for a task placed locally by `to` (the server gives the real one when it applies the move). */
function placed(view: Map<string, Task>, id: string, to: MoveTarget): string | undefined {
  const others = [...view.values()].filter((t) => t.id !== id).sort(byPosition);
  let lo: string | null = null;
  let hi: string | null = null;
  if ('to' in to) {
    if (to.to === 'top') hi = others[0]?.position ?? null;
    else lo = others.at(-1)?.position ?? null;
  } else {
    const anchor = view.get('before' in to ? to.before : to.after);
    if (!anchor || anchor.id === id) return undefined;
    // The nearest other key (a pulled state can briefly hold two tasks at one key).
    const below = others.filter((t) => t.position < anchor.position).at(-1)?.position ?? null;
    const above = others.find((t) => t.position > anchor.position)?.position ?? null;
    [lo, hi] = 'before' in to ? [below, anchor.position] : [anchor.position, above];
  }
  try {
    return generateKeyBetween(lo, hi);
  } catch {
    return undefined; // keys not as the server makes them: keep the task where it is
  }
}

/** Applies one mutation to the view in place. */
export function apply(view: Map<string, Task>, m: Mutation, userId: string): void {
  switch (m.kind) {
    case 'create': {
      if (view.has(m.id)) return;
      const top = [...view.values()].sort(byPosition)[0]?.position ?? null;
      let position = 'a0';
      try {
        position = generateKeyBetween(null, top);
      } catch {
        // keep a0
      }
      const { id, title, notes, due_date, at } = m;
      view.set(id, { id, title, status: 'pending', user_id: userId, created_at: at, updated_at: at, notes, due_date, completed_at: null, position });
      return;
    }
    case 'update': {
      const task = view.get(m.id);
      if (!task) return;
      const next = { ...task, ...m.fields, updated_at: task.updated_at > m.at ? task.updated_at : m.at };
      if (m.fields.status === 'completed' && task.status !== 'completed') next.completed_at = next.updated_at;
      if (m.fields.status === 'pending') next.completed_at = null;
      view.set(m.id, next);
      return;
    }
    case 'move': {
      const task = view.get(m.id);
      const position = task && placed(view, m.id, m.to);
      if (task && position !== undefined) view.set(m.id, { ...task, position });
      return;
    }
    case 'remove':
      view.delete(m.id);
      return;
  }
}

/** The task a mutation is about. */
export const subject = (m: Mutation): string => m.id;
