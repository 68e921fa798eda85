/**
 * Where a store keeps its replica, its outbox and its sync position: one small
 * interface, so that an app can bring its own (React Native, SQLite, ...).
 */
import type { IDBPDatabase } from 'idb';
import type { Task } from '../index.js';
import type { Mutation } from './outbox.js';

/** Everything a store needs to start again where it stopped. */
export interface SavedState {
  version: 1;
  /** The server's tasks as last pulled or acknowledged. */
  server: Task[];
  /** Mutations not yet acknowledged, oldest first. */
  outbox: Mutation[];
  /** The change feed's next_since, or null before the first full sync. */
  since: string | null;
  /** Ids the server said were deleted (an id never comes back). */
  gone: string[];
  userId: string;
}

export interface TodoStorage {
  /** The saved state, or undefined the first time. */
  load(): Promise<SavedState | undefined> | SavedState | undefined;
  /**
   * Replaces the saved state. Called synchronously by every mutation: a storage that can
   * write synchronously (memory, file) has it durable before the mutation returns; an
   * asynchronous one (IndexedDB) has its write started by then, and its promise resolves
   * once it is durable. Writes must land in the order they were made.
   */
  save(state: SavedState): void | Promise<void>;
  close?(): void | Promise<void>;
}

/** Kept in this object only: survives a store's close and re-creation, not a reload. */
export function memoryStorage(): TodoStorage {
  let saved: string | undefined;
  return {
    load: () => (saved === undefined ? undefined : (JSON.parse(saved) as SavedState)),
    save: (state) => {
      saved = JSON.stringify(state);
    },
  };
}

interface SyncFs {
  readFileSync(path: string, encoding: 'utf8'): string;
  writeFileSync(path: string, data: string): void;
  renameSync(from: string, to: string): void;
  existsSync(path: string): boolean;
}

/**
 * A JSON file (Node): each save writes a temporary file and renames it over the old
 * one, so a crash leaves either state whole. Synchronous, so durable on return.
 */
export function fileStorage(path: string): TodoStorage {
  // Found at run time, so that bundling the package for a browser never pulls in node:fs.
  const fs = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:fs') as SyncFs | undefined;
  if (!fs) throw new Error('fileStorage needs Node.js 20.16 or later');
  return {
    load: () => (fs.existsSync(path) ? (JSON.parse(fs.readFileSync(path, 'utf8')) as SavedState) : undefined),
    save: (state) => {
      fs.writeFileSync(`${path}.tmp`, JSON.stringify(state));
      fs.renameSync(`${path}.tmp`, path);
    },
  };
}

/**
 * IndexedDB (browsers), through idb: one record holding the whole state. Once the database
 * is open, each save starts its transaction at once, in the mutation's own task: IndexedDB
 * runs read-write transactions on one store in the order they were made, and a write is not
 * left waiting behind the previous one's commit, where a reload would drop it unstarted.
 */
export function indexedDbStorage(name: string): TodoStorage {
  let db: Promise<IDBPDatabase> | undefined;
  let opened: IDBPDatabase | undefined;
  const open = async () => {
    const { openDB } = await import('idb');
    return (opened = await openDB(name, 1, { upgrade: (d) => void d.createObjectStore('state') }));
  };
  const database = () => (db ??= open());
  // Writes made before the database is open wait for it, in order.
  let waiting = 0;
  let last: Promise<unknown> = Promise.resolve();
  return {
    load: async () => (await (await database()).get('state', 'state')) as SavedState | undefined,
    save: (state) => {
      let write: Promise<unknown>;
      if (opened && waiting === 0) {
        write = opened.put('state', state, 'state'); // put clones the state before it returns
      } else {
        const copy = structuredClone(state);
        waiting++;
        write = last.then(async () => {
          try {
            return (await database()).put('state', copy, 'state');
          } finally {
            waiting--; // started: later writes may start at once, behind it
          }
        });
      }
      last = write.catch(() => undefined);
      return write.then(() => undefined);
    },
    close: async () => {
      await last;
      if (db) (await db).close();
    },
  };
}
