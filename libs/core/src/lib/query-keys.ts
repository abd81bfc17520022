import { parseQueryString } from '@unicrm/query';

/**
 * The integrated account a unified request names, read exactly as the use cases read it (qs, so every
 * spelling the parser accepts counts: `integrated_account_id`, `[integrated_account_id]`, encoded brackets),
 * lower-cased. Front doors key per-account rate limits on it.
 * @returns the id, or undefined when the query names none or cannot be parsed (the request then fails with 400)
 */
export function integratedAccountIdOf(rawQuery: string): string | undefined {
  try {
    const value = parseQueryString(rawQuery).integrated_account_id;
    return typeof value === 'string' && value !== '' ? value.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}
