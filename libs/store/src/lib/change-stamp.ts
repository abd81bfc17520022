import type Database from 'better-sqlite3';

interface StampState {
  /** `PRAGMA data_version`, plucked: changes when another connection (any process) committed to the database. */
  readonly dataVersion: Database.Statement;
  /** The data version last read (undefined before the first read). */
  lastDataVersion: unknown;
  /** The stamp handed out; only ever goes up. */
  stamp: number;
  /** True from a pragma read until the event loop's next check phase (`setImmediate`): the read holds for that turn. */
  readThisTurn: boolean;
}

/** Per connection, so that every store on one connection (and the key rotation) shares one stamp. */
const states = new WeakMap<Database.Database, StampState>();

function stateOf(db: Database.Database): StampState {
  let state = states.get(db);
  if (!state) {
    state = { dataVersion: db.prepare('PRAGMA data_version').pluck(), lastDataVersion: undefined, stamp: 0, readThisTurn: false };
    states.set(db, state);
  }
  return state;
}

/**
 * A number that changes whenever the database's contents may have changed, for caches in front of the stores
 * (`AccountStore.changeStamp`, `ApiTokenStore.changeStamp`). It goes up when another connection, in this process
 * or another one (the CLI on the same data directory), committed since the previous call (SQLite's
 * `PRAGMA data_version`, which does not see this connection's own commits), and when {@link noteDatabaseWrite}
 * recorded a write through this connection. Equal stamps from two calls mean nothing committed in between, so what
 * was read after the first call is still what the database holds. A stamp may also go up without a relevant change
 * (any table, a checkpoint): that only costs a re-read.
 *
 * Reads the pragma at most once per event-loop turn: every call until the loop's next check phase
 * (`setImmediate`) reuses that reading, so the requests one turn serves pay for one read (about 2 µs on a WAL
 * database, a tenth of a microsecond reused; issue 8). A commit by another process is therefore seen from the next
 * turn on: a request that arrived while the other process was committing may still see the state before it, as it
 * could have if it had been served a moment earlier. This connection's own writes ({@link noteDatabaseWrite}) are
 * seen at once.
 * @throws TypeError when the connection is closed (as any statement on it)
 */
export function databaseChangeStamp(db: Database.Database): number {
  const state = stateOf(db);
  if (state.readThisTurn) return state.stamp;
  const version = state.dataVersion.get();
  state.readThisTurn = true;
  setImmediate(() => {
    state.readThisTurn = false;
  });
  if (version !== state.lastDataVersion) {
    state.lastDataVersion = version;
    state.stamp++;
  }
  return state.stamp;
}

/**
 * Records a write made through `db` (this connection), which `PRAGMA data_version` does not report: the next
 * {@link databaseChangeStamp} is a new number. Every writing method of the account and token stores calls it after
 * writing, and so does the key rotation; a write through this connection that bypasses them is not seen.
 */
export function noteDatabaseWrite(db: Database.Database): void {
  stateOf(db).stamp++;
}
