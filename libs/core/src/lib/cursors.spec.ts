import { UnicrmError } from '@unicrm/model';
import { randomBytes } from 'node:crypto';
import { type CursorBinding, CursorCodec } from './cursors';

describe('CursorCodec', () => {
  const codec = new CursorCodec(randomBytes(32));
  const binding: CursorBinding = { accountId: 'a1', resource: 'crm/stages', queryFingerprint: 'f1' };
  const refused = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(UnicrmError);
      expect((error as UnicrmError).statusCode).toBe(400);
      expect((error as UnicrmError).body.details?.failures?.[0]?.path).toBe('next_cursor');
      return;
    }
    throw new Error('expected the cursor to be refused');
  };

  it('gives back the provider cursor and its direction, for the same binding', () => {
    for (const direction of ['next', 'prev'] as const) {
      const text = codec.issue(binding, { cursor: 'WyIwMSJd', direction });
      expect(text).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      expect(codec.open(binding, text)).toEqual({ cursor: 'WyIwMSJd', direction });
    }
  });

  it('refuses it for another account, resource or query, from another key, or altered', () => {
    const text = codec.issue(binding, { cursor: 'c', direction: 'next' });
    refused(() => codec.open({ ...binding, accountId: 'a2' }, text));
    refused(() => codec.open({ ...binding, resource: 'crm/pipelines' }, text));
    refused(() => codec.open({ ...binding, queryFingerprint: 'f2' }, text));
    refused(() => new CursorCodec(randomBytes(32)).open(binding, text));
    const [payload, mac] = text.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify([1, 'n', 'other']), 'utf8').toString('base64url');
    refused(() => codec.open(binding, `${forged}.${mac}`));
    refused(() => codec.open(binding, `${payload}.${mac.slice(0, -2)}`));
    for (const junk of ['', '.', 'abc', 'a.b.c', `${payload}.`, `.${mac}`]) refused(() => codec.open(binding, junk));
  });
});
