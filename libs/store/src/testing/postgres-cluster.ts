import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Set to `1` in CI (`.ci/run`): a test that needs PostgreSQL fails when none is found, instead of being skipped.
 * On a laptop without PostgreSQL the tests that need it are skipped with a line saying how to run them.
 */
export const REQUIRE_POSTGRES_VARIABLE = 'UNICRM_REQUIRE_POSTGRES';

/** A throwaway PostgreSQL cluster: its connection URL (database `postgres`, user `unicrm`, no password) and a stop. */
export interface TestCluster {
  url: string;
  /** Stops the server (fast shutdown) and removes its directory. */
  stop(): Promise<void>;
}

/** The directory of PostgreSQL's server programs (`initdb`, `pg_ctl`), newest version first; undefined when none. */
export function postgresBinDir(): string | undefined {
  const fromEnv = process.env.UNICRM_PG_BIN;
  if (fromEnv && existsSync(join(fromEnv, 'pg_ctl'))) return fromEnv;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    return existsSync(join(dir, 'pg_ctl')) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** True when PostgreSQL's server programs are installed; else, with `UNICRM_REQUIRE_POSTGRES=1`, it throws. */
export function postgresAvailable(): boolean {
  if (postgresBinDir() !== undefined) return true;
  if (process.env[REQUIRE_POSTGRES_VARIABLE] === '1') {
    throw new Error(`${REQUIRE_POSTGRES_VARIABLE}=1 but PostgreSQL was not found (no /usr/lib/postgresql/*/bin/pg_ctl, no pg_config): install Debian's postgresql package.`);
  }
  // Said once per test file, so a skipped run is visible in the output.
  process.stderr.write('PostgreSQL not found: its tests are skipped. Install Debian\'s postgresql package (apt-get install postgresql) to run them.\n');
  return false;
}

/** A free TCP port on 127.0.0.1 (the kernel's choice). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a throwaway PostgreSQL cluster for a test (scale.md R5): `initdb` in a new temporary directory, the server on
 * a free loopback port with its socket in that directory, `fsync`, `synchronous_commit` and `full_page_writes` off
 * (test data only), trust authentication for the superuser `unicrm`. As root, `initdb` and `pg_ctl` run as the
 * `postgres` user (`initdb` refuses root) and the directory is handed to it. About a second.
 * @throws Error when PostgreSQL is not installed or the cluster does not start (its log is in the message)
 */
export async function startTestCluster(): Promise<TestCluster> {
  const bin = postgresBinDir();
  if (!bin) throw new Error("PostgreSQL not found: install Debian's postgresql package.");
  const dir = mkdtempSync(join(tmpdir(), 'unicrm-pg-'));
  const asRoot = process.getuid?.() === 0;
  const as = async (program: string, args: string[]) => {
    const file = join(bin, program);
    return asRoot ? run('runuser', ['-u', 'postgres', '--', file, ...args], { cwd: dir }) : run(file, args, { cwd: dir });
  };
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const log = join(dir, 'log');
  try {
    await as('initdb', ['-D', data, '-U', 'unicrm', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
      try {
        await as('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '30', '-o', options, 'start']);
        const url = `postgres://unicrm@127.0.0.1:${port}/postgres`;
        let stopped = false;
        return {
          url,
          async stop() {
            if (stopped) return;
            stopped = true;
            await as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
            rmSync(dir, { recursive: true, force: true });
          },
        };
      } catch (error) {
        lastError = error; // most likely the port was taken in between: try another
      }
    }
    throw lastError;
  } catch (error) {
    const detail = existsSync(log) ? execFileSync('tail', ['-n', '20', log], { encoding: 'utf8' }) : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`the test PostgreSQL cluster did not start: ${(error as Error).message}\n${detail}`);
  }
}
