import { UnicrmError } from '@unicrm/model';
import { createHmac, timingSafeEqual } from 'node:crypto';

/** What a cursor is bound to: it opens only for the same account, resource and query (filters, remote_query). */
export interface CursorBinding {
  accountId: string;
  /** `crm/stages`, or `proxy/<resource>` for the proxy. */
  resource: string;
  /** A digest of the query that chose the records (filters, remote_query); the page size may change. */
  queryFingerprint: string;
}

/** A provider cursor and the way it goes. */
export interface ProviderCursor {
  cursor: string;
  direction: 'next' | 'prev';
}

const MAC_BYTES = 16;
const VERSION = 1;

/**
 * unicrm's list cursors (truto-contract.md §5.3; DESIGN.md §6: "opaque cursors that unicrm issues and checks"): the
 * provider's cursor and direction, base64url JSON, followed by an HMAC-SHA256 (128 bits) over them and the
 * {@link CursorBinding}, keyed by a key derived from the data directory's encryption key (so every node of one
 * deployment accepts every other's cursors, and a rotated key retires old cursors). A cursor unicrm did not issue, or
 * issued for another account, resource or query, does not open: 400.
 */
export class CursorCodec {
  constructor(private readonly key: Buffer) {}

  /** A cursor for `provider`, bound to `binding`. */
  issue(binding: CursorBinding, provider: ProviderCursor): string {
    const payload = Buffer.from(JSON.stringify([VERSION, provider.direction === 'prev' ? 'p' : 'n', provider.cursor]), 'utf8').toString('base64url');
    return `${payload}.${this.mac(binding, payload).toString('base64url')}`;
  }

  /**
   * The provider cursor in a cursor this codec issued for `binding`.
   * @throws UnicrmError 400 (`next_cursor`) for anything else
   */
  open(binding: CursorBinding, text: string): ProviderCursor {
    const invalid = () =>
      UnicrmError.validation([
        {
          path: 'next_cursor',
          message:
            'is not a cursor unicrm gave out for this list: pass back a next_cursor or prev_cursor exactly as received, with the same integrated account, filters and remote_query as the first page',
        },
      ]);
    const dot = text.indexOf('.');
    if (dot <= 0 || dot !== text.lastIndexOf('.')) throw invalid();
    const payload = text.slice(0, dot);
    const mac = Buffer.from(text.slice(dot + 1), 'base64url');
    const expected = this.mac(binding, payload);
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw invalid();
    let value: unknown;
    try {
      value = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      throw invalid();
    }
    if (!Array.isArray(value) || value[0] !== VERSION || (value[1] !== 'n' && value[1] !== 'p') || typeof value[2] !== 'string') throw invalid();
    return { cursor: value[2], direction: value[1] === 'p' ? 'prev' : 'next' };
  }

  private mac(binding: CursorBinding, payload: string): Buffer {
    return createHmac('sha256', this.key)
      .update(`${binding.accountId}\n${binding.resource}\n${binding.queryFingerprint}\n${payload}`, 'utf8')
      .digest()
      .subarray(0, MAC_BYTES);
  }
}
