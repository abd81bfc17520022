import { isIP } from 'node:net';

const LOOPBACK_NAMES = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost']);
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata', 'instance-data', 'instance-data.ec2.internal']);

function isLoopback(host: string): boolean {
  if (LOOPBACK_NAMES.has(host) || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function isLinkLocal(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith('169.254.') || host === '0.0.0.0';
  if (isIP(host) === 6) return /^fe[89ab][0-9a-f]:/i.test(host) || host === '::' || /^fd00:ec2::/i.test(host);
  return false;
}

/**
 * Checks a Pipeliner service URL an account may use (DESIGN.md §4; the outbound policy): `https`,
 * or `http` on a loopback host only (so the local sandbox works); never a link-local or cloud
 * metadata address; no credentials, query or fragment in the URL.
 * @returns the URL normalised to its origin plus path, without a trailing slash
 * @throws Error with the reason, for the caller to report as a validation failure
 */
export function checkServiceUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error('must be an absolute URL, e.g. https://eu-central.api.pipelinersales.com');
  }
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('must use https');
  if (url.protocol === 'http:' && !isLoopback(host)) throw new Error('must use https (http is allowed only for loopback hosts)');
  if (isLinkLocal(host) || METADATA_NAMES.has(host)) throw new Error('may not point at a link-local or metadata address');
  if (url.username || url.password) throw new Error('may not contain credentials');
  if (url.search || url.hash) throw new Error('may not contain a query or fragment');
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}
