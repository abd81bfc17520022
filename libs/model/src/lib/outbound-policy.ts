import { isIP } from 'node:net';

// Only names every resolver maps to loopback (not `*.localhost`, which some resolvers send to DNS).
const LOOPBACK_NAMES = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost']);
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata', 'instance-data', 'instance-data.ec2.internal']);
/** Cloud metadata services outside 169.254/16 (Alibaba Cloud). */
const METADATA_IPV4 = new Set(['100.100.100.200']);

/** The 16 bytes of an IPv6 address as 8 numbers, or undefined. */
function ipv6Groups(host: string): number[] | undefined {
  if (isIP(host) !== 6) return undefined;
  let text = host;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = (dotted[1] as string).split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -(dotted[1] as string).length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(zeros).fill('0'), ...right].map((g) => parseInt(g, 16));
}

/**
 * The IPv4 address an IPv6 address stands for, when it embeds one: IPv4-mapped (`::ffff:a.b.c.d`),
 * IPv4-compatible (`::a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`) addresses reach that IPv4 host.
 */
function embeddedIpv4(host: string): string | undefined {
  const g = ipv6Groups(host);
  if (!g) return undefined;
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  const mapped = zero(0, 5) && g[5] === 0xffff;
  const compatible = zero(0, 6) && (g[6] !== 0 || (g[7] ?? 0) > 1);
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6);
  if (!mapped && !compatible && !nat64) return undefined;
  const [hi = 0, lo = 0] = [g[6], g[7]];
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
}

/** The host as compared: lower case, no brackets, no trailing dots, an embedded IPv4 unwrapped. */
function normalHost(hostname: string): string {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase().replace(/\.+$/, '');
  return embeddedIpv4(host) ?? host;
}

function isLoopback(host: string): boolean {
  if (LOOPBACK_NAMES.has(host)) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function isLinkLocalOrMetadata(host: string): boolean {
  if (METADATA_NAMES.has(host)) return true;
  if (isIP(host) === 4) return host.startsWith('169.254.') || host === '0.0.0.0' || METADATA_IPV4.has(host);
  if (isIP(host) === 6) return /^fe[89ab][0-9a-f]:/i.test(host) || host === '::' || /^fd00:ec2::/i.test(host);
  return false;
}

/**
 * Why an address a provider host resolved to may not be reached, or undefined when it may: a link-local or cloud
 * metadata address never; with `http:` anything but loopback (the outbound policy, below). Checked by the HTTP
 * transport on every connection, after DNS, so a name that resolves to a forbidden address is refused too.
 * @param address an IPv4 or IPv6 address (or a host name, judged by name)
 */
export function forbiddenAddress(address: string, protocol: string): string | undefined {
  const host = normalHost(address);
  if (isLinkLocalOrMetadata(host)) return `${address} is a link-local or metadata address`;
  if (protocol === 'http:' && !isLoopback(host)) return `${address} is not a loopback address (http is allowed only for loopback hosts)`;
  return undefined;
}

/**
 * The outbound policy (DESIGN.md §4; nango's outbound-policy.ts is the model): where unicrm may send an account's
 * credentials or a webhook. One function for every connector's base URL, the proxy and webhook URLs: `https`, or
 * `http` on a loopback host only (so a local sandbox works); never a link-local or cloud metadata address; no
 * credentials in the URL; no query or fragment unless `allowQuery`. The HTTP transport checks the addresses a name
 * resolves to as well ({@link forbiddenAddress}).
 * @returns the URL normalised to its origin plus path, without a trailing slash (plus its query, when allowed)
 * @throws Error with the reason, for the caller to report as a validation failure
 */
export function checkOutboundUrl(text: string, options: { allowQuery?: boolean; example?: string } = {}): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`must be an absolute URL, e.g. ${options.example ?? 'https://eu-central.api.pipelinersales.com'}`);
  }
  const host = normalHost(url.hostname);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('must use https');
  if (url.protocol === 'http:' && !isLoopback(host)) throw new Error('must use https (http is allowed only for loopback hosts)');
  if (isLinkLocalOrMetadata(host)) throw new Error('may not point at a link-local or metadata address');
  if (url.username || url.password) throw new Error('may not contain credentials');
  if (url.hash || (url.search && !options.allowQuery)) throw new Error(options.allowQuery ? 'may not contain a fragment' : 'may not contain a query or fragment');
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}${options.allowQuery ? url.search : ''}`;
}
