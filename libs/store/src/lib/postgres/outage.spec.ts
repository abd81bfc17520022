/**
 * A node cut off from PostgreSQL (found by a review: requests hung, and a token revoked meanwhile stayed accepted).
 * The node reaches the database through a TCP relay that the test cuts.
 */
import { UnicrmError } from '@unicrm/model';
import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { postgresAvailable, startTestCluster, type TestCluster } from '../../testing/postgres-cluster';
import { SecretBox } from '../secret-box';
import { PostgresApiTokenStore, PostgresDatabase } from './index';

/** A relay to the cluster's port that can be cut (every connection closed, new ones refused). */
async function relay(port: number): Promise<{ port: number; cut(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = createConnection({ host: '127.0.0.1', port });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as { port: number }).port,
    async cut() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}

const describeIf = postgresAvailable() ? describe : describe.skip;

describeIf('a node that cannot reach PostgreSQL', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startTestCluster();
  });
  afterAll(async () => cluster?.stop());

  it('answers 503 with Retry-After, fails fast after the first failure, and stops trusting its caches', async () => {
    const box = new SecretBox(randomBytes(32));
    const clusterPort = Number(new URL(cluster.url).port);
    const link = await relay(clusterPort);
    const db = new PostgresDatabase(box, { url: cluster.url.replace(`:${clusterPort}/`, `:${link.port}/`), changePollMs: 100, connectTimeoutMs: 1_000 });
    try {
      await db.started;
      const tokens = new PostgresApiTokenStore(db);
      const hash = randomBytes(32);
      await tokens.add({ id: 't1', name: 'one', environmentId: 'default', createdAt: '2026-01-01T00:00:00.000Z', expiresAt: null, revokedAt: null }, hash);
      const stamp = tokens.changeStamp();
      expect(tokens.changeStamp()).toBe(stamp); // trusted while the version is read

      await link.cut();
      const failure = await tokens.findByHash(hash).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(UnicrmError);
      expect(failure).toMatchObject({ statusCode: 503, headers: { 'retry-after': '5' } });
      // The next call fails at once: it does not even ask the pool for a connection.
      const poolQuery = jest.spyOn(db.pool, 'query');
      await expect(tokens.findByHash(hash)).rejects.toMatchObject({ statusCode: 503 });
      expect(poolQuery).not.toHaveBeenCalled();
      poolQuery.mockRestore();
      // Past five missed polls, every read of the stamp moves it: a cache in front trusts nothing.
      await new Promise((resolve) => setTimeout(resolve, 5 * 100 + 300));
      const a = tokens.changeStamp();
      expect(tokens.changeStamp()).not.toBe(a);
    } finally {
      await db.close().catch(() => undefined);
    }
  });
});
