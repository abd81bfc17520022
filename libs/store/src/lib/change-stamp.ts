import type Database from 'better-sqlite3';

import { realpathSync } from 'node:fs';

/** How long one `PRAGMA data_version` reading may be reused, within one event-loop turn. */
export const STAMP_REUSE_MS = 1;

/** Writes recorded through any connection of this process to one database file. */
interface FileWrites {
  count: number;
}

interface StampState {
  /** `PRAGMA data_version`, plucked: changes when another connection (any process) committed to the database. */
  readonly dataVersion: Database.Statement;
  /** The data version last read (undefined before the first read). */
  lastDataVersion: unknown;
  /** The stamp handed out; only ever goes up. */
  stamp: number;
  /** The process-wide write count of this connection's database file, and the value the stamp last took in. */
  readonly file: FileWrites;
  seenFileWrites: number;
  /** When the pragma was last read (`performance.now()`, ms). */
  readAt: number;
  /** True from a pragma read until the event loop's next check phase (`setImmediate`). */
  readThisTurn: boolean;
}

/** Per connection, so that every store on one connection (and the key rotation) shares one stamp. */
const states = new WeakMap<Database.Database, StampState>();
/** Per database file (real path), shared by every connection of this process to it. */
const files = new Map<string, FileWrites>();

function fileWritesOf(db: Database.Database): FileWrites {
  let path: string;
  try {
    path = realpathSync(db.name);
  } catch {
    return { count: 0 }; // an in-memory database: no other connection sees it
  }
  let file = files.get(path);
  if (!file) {
    file = { count: 0 };
    files.set(path, file);
  }
  return file;
}

function stateOf(db: Database.Database): StampState {
  let state = states.get(db);
  if (!state) {
    const file = fileWritesOf(db);
    state = {
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
      lastDataVersion: undefined,
      stamp: 0,
      file,
      seenFileWrites: file.count,
      readAt: 0,
      readThisTurn: false,
    };
    states.set(db, state);
  }
  return state;
}

/**
 * A number that changes whenever the database's contents may have changed, for caches in front of the stores
 * (`AccountStore.changeStamp`, `ApiTokenStore.changeStamp`). It goes up
 * - at once after {@link noteDatabaseWrite} recorded a write through any connection of this process to the same
 *   database file (the stores and the key rotation record theirs), and
 * - when another process (the CLI on the same data directory), or a connection of this process writing without
 *   the stores, committed (SQLite's `PRAGMA data_version`).
 * Equal stamps from two calls mean nothing committed in between, so what was read after the first call is still
 * what the database holds. A stamp may also go up without a relevant change (any table, a checkpoint): that only
 * costs a re-read.
 *
 * The pragma (about 2 µs on a WAL database) is read again unless it was read less than {@link STAMP_REUSE_MS} ago in
 * the same event-loop turn, so the requests one turn serves share a reading (issue 8). A commit by another process
 * can therefore be missed only if it happened within that millisecond and this process could not have heard of it:
 * no I/O completes within a turn, and a synchronous child process takes longer than that.
 * @throws TypeError when the connection is closed (as any statement on it)
 */
export function databaseChangeStamp(db: Database.Database): number {
  const state = stateOf(db);
  if (state.file.count !== state.seenFileWrites) {
    state.seenFileWrites = state.file.count;
    state.stamp++;
  }
  const now = performance.now();
  if (state.readThisTurn && now - state.readAt < STAMP_REUSE_MS) return state.stamp;
  const version = state.dataVersion.get();
  state.readAt = now;
  if (!state.readThisTurn) {
    state.readThisTurn = true;
    setImmediate(() => {
      state.readThisTurn = false;
    });
  }
  if (version !== state.lastDataVersion) {
    state.lastDataVersion = version;
    state.stamp++;
  }
  return state.stamp;
}

/**
 * Records a write made through `db`: the next {@link databaseChangeStamp} of every connection of this process to the
 * same file is a new number (`PRAGMA data_version` does not report a connection's own commits, and another
 * connection's only from its next reading). Every writing method of the account and token stores calls it after
 * writing, and so does the key rotation.
 */
export function noteDatabaseWrite(db: Database.Database): void {
  stateOf(db).file.count++;
}
