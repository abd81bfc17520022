import { randomBytes } from 'node:crypto';
import { postgresAvailable, startTestCluster, type TestCluster } from '../../testing/postgres-cluster';
import { SecretBox } from '../secret-box';
import { explainConnectError, PostgresDatabase } from './database';

describe('explainConnectError', () => {
  it("says what node-postgres' SCRAM message means, keeping it", () => {
    const error = explainConnectError(new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string'));
    expect(error.message).toBe(
      'PostgreSQL asked for a password and UNICRM_DATABASE_URL has none: put it in the URL (postgres://user:password@host:5432/database) or in PGPASSWORD (SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string).',
    );
  });

  it('names a refused password, and passes other errors through', () => {
    expect(explainConnectError(Object.assign(new Error('password authentication failed for user "u"'), { code: '28P01' })).message).toBe(
      'PostgreSQL refused the user name or password of UNICRM_DATABASE_URL (password authentication failed for user "u").',
    );
    const other = new Error('connect ECONNREFUSED 127.0.0.1:1');
    expect(explainConnectError(other)).toBe(other);
  });
});

const describeIf = postgresAvailable() ? describe : describe.skip;

describeIf('a node started on a database that does not exist', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startTestCluster();
  });
  afterAll(async () => cluster?.stop());

  it('fails its start saying so, with the server message', async () => {
    const db = new PostgresDatabase(new SecretBox(randomBytes(32)), { url: cluster.url.replace(/\/postgres$/, '/no_such_db') });
    await expect(db.started).rejects.toThrow(/^The database named in UNICRM_DATABASE_URL does not exist: create it first \(createdb\), or name another \(database "no_such_db" does not exist\)\.$/);
    await db.close();
  });
});
