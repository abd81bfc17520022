import { type StoredAccount } from '@unicrm/model';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteAccountStore } from './account-store';
import { openDataDirectory } from './data-directory';
import { rotateEncryptionKey } from './key-rotation';
import { KEY_FILE } from './secret-box';
import { claimExclusive, claimServing, DataDirectoryInUseError, SERVING_DIR, servingProcesses } from './serving-lock';

// Issue 12, item 2: `keys rotate` (and `restore`) must refuse while an API serves the data directory, and a marker
// left by a crashed API must not block them. Across processes this is tested with spawned processes in
// apps/sdk (the CLI) and apps/api (the built main.js); SQLite's locks behave the same between two connections of one
// process, which these tests use.
let dir: string;
const claims: Array<{ release(): void }> = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-serving-'));
});
afterEach(() => {
  for (const claim of claims.splice(0)) claim.release();
  rmSync(dir, { recursive: true, force: true });
});

const account: StoredAccount = {
  id: '00000000-0000-4000-8000-000000000001',
  environmentId: 'env-a',
  tenantId: 't',
  integration: 'pipeliner',
  status: 'active',
  context: { service_url: 'https://x.example', space_id: 's', username: 'u', password: 'SECRET' },
  publicContext: { service_url: 'https://x.example', space_id: 's' },
  lastError: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
};

/** The pid of a process that existed and has exited. */
function deadPid(): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', '']);
    child.on('exit', () => resolve(child.pid as number));
  });
}

const refusal = (fn: () => unknown): DataDirectoryInUseError => {
  try {
    fn();
  } catch (error) {
    if (error instanceof DataDirectoryInUseError) return error;
    throw error;
  }
  throw new Error('expected a DataDirectoryInUseError');
};

describe('the serving marker', () => {
  it('is a pid file and a lock while claimed; released, neither is left', () => {
    const claim = claimServing(dir);
    const pidFile = join(dir, SERVING_DIR, `${process.pid}.json`);
    expect(JSON.parse(readFileSync(pidFile, 'utf8'))).toMatchObject({ pid: process.pid, host: hostname(), started_at: expect.any(String) });
    expect(servingProcesses(dir).map((p) => p.pid)).toEqual([process.pid]);
    const error = refusal(() => claimExclusive(dir, 'keys rotate'));
    expect(error.processes.map((p) => p.pid)).toEqual([process.pid]);
    expect(error.message).toContain(`keys rotate refused: the unicrm API is serving the data directory ${dir} (pid ${process.pid}, since `);
    expect(error.message).toContain(`kill -TERM ${process.pid}, or Ctrl-C in its terminal`);
    expect(error.message).toContain('Nothing was changed.');
    claim.release();
    expect(existsSync(pidFile)).toBe(false);
    claims.push(claimExclusive(dir, 'keys rotate'));
  });

  it('lets several processes serve at once', () => {
    claims.push(claimServing(dir), claimServing(dir));
    expect(() => claimExclusive(dir, 'restore')).toThrow(DataDirectoryInUseError);
  });

  it('does not count a pid file left by a process that died (no lock held), and removes it', async () => {
    const pid = await deadPid();
    mkdirSync(join(dir, SERVING_DIR), { recursive: true });
    const stale = join(dir, SERVING_DIR, `${pid}.json`);
    writeFileSync(stale, JSON.stringify({ pid, host: hostname(), started_at: '2026-01-01T00:00:00.000Z', script: 'main.js' }));
    const claim = claimExclusive(dir, 'keys rotate');
    claims.push(claim);
    expect(existsSync(stale)).toBe(false);
  });

  it('does not count a pid file whose pid now names another live process, once no lock is held', () => {
    mkdirSync(join(dir, SERVING_DIR), { recursive: true });
    // process.ppid is alive (jest's parent), like a crashed API's pid reused by an unrelated process.
    writeFileSync(join(dir, SERVING_DIR, `${process.ppid}.json`), JSON.stringify({ pid: process.ppid, host: hostname(), started_at: '2026-01-01T00:00:00.000Z', script: 'main.js' }));
    claims.push(claimExclusive(dir, 'restore'));
    expect(readdirSync(join(dir, SERVING_DIR))).toEqual(['lock']);
  });

  it('names the holder even when its pid file is gone', () => {
    claims.push(claimServing(dir));
    rmSync(join(dir, SERVING_DIR, `${process.pid}.json`));
    expect(refusal(() => claimExclusive(dir, 'restore')).message).toContain('its pid file is missing');
  });

  it('keeps an API from starting while a rotation holds the directory (it waits, then gives up)', () => {
    claims.push(claimExclusive(dir, 'keys rotate'));
    const error = refusal(() => claimServing(dir, 50));
    expect(error.message).toBe(`Another unicrm command (keys rotate --master or restore) has the data directory ${dir} to itself; start again once it has finished.`);
    expect(existsSync(join(dir, SERVING_DIR, `${process.pid}.json`))).toBe(false);
  });
});

describe('rotateEncryptionKey while the directory is served', () => {
  it('refuses, and changes nothing: the key file and every sealed value stay', async () => {
    const opened = openDataDirectory(dir);
    await new SqliteAccountStore(opened.db, opened.box).create(account);
    const keyBefore = readFileSync(join(dir, KEY_FILE), 'utf8');
    const sealedBefore = opened.db.prepare('SELECT sealed_context FROM integrated_accounts').pluck().all();
    const serving = claimServing(dir);
    expect(() => rotateEncryptionKey(dir, opened.db, opened.box)).toThrow(DataDirectoryInUseError);
    expect(readFileSync(join(dir, KEY_FILE), 'utf8')).toBe(keyBefore);
    expect(opened.db.prepare('SELECT sealed_context FROM integrated_accounts').pluck().all()).toEqual(sealedBefore);
    expect(existsSync(join(dir, `${KEY_FILE}.next`))).toBe(false);
    serving.release();
    expect(rotateEncryptionKey(dir, opened.db, opened.box).dataKeys).toBe(1);
    expect(readFileSync(join(dir, KEY_FILE), 'utf8')).not.toBe(keyBefore);
    // The rotation gave the directory back: an API can serve it again.
    claims.push(claimServing(dir, 0));
    opened.db.close();
  });
});
