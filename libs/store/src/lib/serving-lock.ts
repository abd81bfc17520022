import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** Folder of the data directory that marks it as served: the lock file and one `<pid>.json` per serving process. */
export const SERVING_DIR = 'serving';
/** The lock file inside {@link SERVING_DIR}: an empty SQLite database whose file locks do the marking. */
export const SERVING_LOCK_FILE = 'lock';

/** What a serving process writes about itself in `<dataDir>/serving/<pid>.json`, to be named in refusals. */
export interface ServingProcess {
  pid: number;
  /** `os.hostname()` of the serving process (a pid names a process on that host only). */
  host: string;
  /** When it claimed the data directory, RFC 3339 UTC. */
  started_at: string;
  /** The script it runs (`process.argv[1]`), e.g. `.../dist/apps/api/src/main.js`. */
  script: string;
}

/**
 * Thrown when a command that needs the data directory to itself (`keys rotate --master`, `restore`) finds a process serving
 * it. The message names the processes (pid, host, start time) and what to do; nothing was changed.
 */
export class DataDirectoryInUseError extends Error {
  constructor(
    message: string,
    /** The serving processes found (may be empty when the lock is held but no pid file names its holder). */
    readonly processes: ServingProcess[],
  ) {
    super(message);
    this.name = 'DataDirectoryInUseError';
  }
}

/** A claim on a data directory, held until {@link release}d (or the process ends: the OS drops its file locks). */
export interface DataDirectoryClaim {
  /** Gives the claim up (idempotent). */
  release(): void;
}

/**
 * The lock connections of the claims this process holds. better-sqlite3 closes a connection that is garbage
 * collected, which would drop its lock while the claim is still meant to hold: a claim lasts until released or the
 * end of the process, even if its holder lost every reference to it.
 */
const heldLocks = new Set<Database.Database>();

const isBusy = (error: unknown) => (error as { code?: string }).code === 'SQLITE_BUSY';

function lockDatabase(dataDir: string, waitMs: number): Database.Database {
  const folder = join(dataDir, SERVING_DIR);
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  const path = join(folder, SERVING_LOCK_FILE);
  const lock = new Database(path);
  chmodSync(path, 0o600);
  lock.pragma(`busy_timeout = ${waitMs}`);
  return lock;
}

/** True when process `pid` exists on this host (EPERM: it exists, as another user's). */
function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The pid files of `<dataDir>/serving/`, newest first; files of processes that no longer exist on this host are
 * removed (a crash leaves its file behind) and not returned. Unreadable files are skipped.
 */
export function servingProcesses(dataDir: string): ServingProcess[] {
  const folder = join(dataDir, SERVING_DIR);
  if (!existsSync(folder)) return [];
  const found: ServingProcess[] = [];
  for (const name of readdirSync(folder)) {
    if (!/^\d+\.json$/.test(name)) continue;
    const path = join(folder, name);
    let entry: ServingProcess;
    try {
      entry = JSON.parse(readFileSync(path, 'utf8')) as ServingProcess;
    } catch {
      continue;
    }
    if (typeof entry.pid !== 'number') continue;
    if (entry.host === hostname() && !alive(entry.pid)) {
      rmSync(path, { force: true });
      continue;
    }
    found.push(entry);
  }
  return found.sort((a, b) => b.started_at.localeCompare(a.started_at));
}

/**
 * Marks `dataDir` as served by this process (docs/security.md, "Rotating"), until the claim is released or the
 * process ends, by any means: the mark is a shared lock (SQLite's, i.e. a POSIX `fcntl` lock) on
 * `<dataDir>/serving/lock`, which the operating system drops when the process dies, so it cannot go stale, and a pid
 * file `<dataDir>/serving/<pid>.json` that names the process in refusals. Several processes may serve one directory.
 * Waits up to `waitMs` while `keys rotate` or `restore` holds the directory.
 * @param waitMs how long to wait for a rotation or restore to finish, in milliseconds (default 30 000)
 * @throws DataDirectoryInUseError when a rotation or restore still holds the directory after `waitMs`
 */
export function claimServing(dataDir: string, waitMs = 30_000): DataDirectoryClaim {
  const lock = lockDatabase(dataDir, waitMs);
  try {
    // A read transaction holds SQLite's SHARED lock on the file until it ends: exclusive claims fail meanwhile.
    lock.exec('BEGIN');
    lock.prepare('SELECT count(*) FROM sqlite_master').get();
  } catch (error) {
    lock.close();
    if (!isBusy(error)) throw error;
    throw new DataDirectoryInUseError(
      `Another unicrm command (keys rotate --master or restore) has the data directory ${dataDir} to itself; ` +
        'start again once it has finished.',
      [],
    );
  }
  servingProcesses(dataDir); // removes the files of crashed processes
  const pidFile = join(dataDir, SERVING_DIR, `${process.pid}.json`);
  const me: ServingProcess = { pid: process.pid, host: hostname(), started_at: new Date().toISOString(), script: process.argv[1] ?? '' };
  writeFileSync(pidFile, `${JSON.stringify(me)}\n`, { mode: 0o600 });
  heldLocks.add(lock);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      rmSync(pidFile, { force: true });
      heldLocks.delete(lock);
      lock.close();
    },
  };
}

/**
 * Takes `dataDir` for a command that must be alone on it (`keys rotate --master`, `restore`): an exclusive lock on
 * `<dataDir>/serving/lock`, held until released, so that no process serves it meanwhile (an API that starts waits).
 * A pid file without a lock holder (a crashed process's) does not count, and is removed.
 * @param command the command's name for the message, e.g. `keys rotate`
 * @throws DataDirectoryInUseError naming the serving processes (pid, host, start) and how to stop them
 */
export function claimExclusive(dataDir: string, command: string): DataDirectoryClaim {
  const lock = lockDatabase(dataDir, 0);
  try {
    // Nothing is ever written to it: no journal file beside it while the claim is held.
    lock.pragma('journal_mode = MEMORY');
    lock.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    lock.close();
    if (!isBusy(error)) throw error;
    const processes = servingProcesses(dataDir);
    throw new DataDirectoryInUseError(inUseMessage(dataDir, command, processes), processes);
  }
  // Nobody holds the lock, so nobody serves: every pid file left is a crashed process's (even if its pid was reused).
  for (const name of readdirSync(join(dataDir, SERVING_DIR))) if (/^\d+\.json$/.test(name)) rmSync(join(dataDir, SERVING_DIR, name), { force: true });
  heldLocks.add(lock);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      heldLocks.delete(lock);
      lock.exec('ROLLBACK');
      lock.close();
    },
  };
}

function inUseMessage(dataDir: string, command: string, processes: ServingProcess[]): string {
  const local = processes.filter((p) => p.host === hostname());
  const who =
    processes.length === 0
      ? `a process holds ${join(dataDir, SERVING_DIR, SERVING_LOCK_FILE)} (its pid file is missing; look for a unicrm API started on this directory)`
      : processes
          .map((p) => `pid ${p.pid}${p.host === hostname() ? '' : ` on host ${p.host}`}, since ${p.started_at}${p.script ? `, running ${p.script}` : ''}`)
          .join('; ');
  const stop =
    local.length > 0 ? `kill -TERM ${local.map((p) => p.pid).join(' ')}, or Ctrl-C in its terminal` : 'Ctrl-C in its terminal, or SIGTERM to its process';
  return (
    `${command} refused: the unicrm API is serving the data directory ${dataDir} (${who}). ` +
    'It holds the encryption key and the database open, so it must be stopped first ' +
    `(${stop}; it finishes its requests and exits), then run ${command} again and start the API after. Nothing was changed.`
  );
}
