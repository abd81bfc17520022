import { checkOutboundUrl as checkServiceUrl, forbiddenAddress } from './outbound-policy';

describe('checkOutboundUrl', () => {
  it.each([
    ['https://eu-central.api.pipelinersales.com/', 'https://eu-central.api.pipelinersales.com'],
    ['https://us-east.pipelinersales.com', 'https://us-east.pipelinersales.com'],
    ['http://127.0.0.1:8100', 'http://127.0.0.1:8100'],
    ['http://localhost:8100/', 'http://localhost:8100'],
    ['http://[::1]:8100', 'http://[::1]:8100'],
    ['http://localhost.:8100', 'http://localhost.:8100'],
    ['http://[::ffff:127.0.0.1]:8100', 'http://[::ffff:7f00:1]:8100'],
  ])('accepts %s', (input, normalised) => {
    expect(checkServiceUrl(input)).toBe(normalised);
  });

  it.each([
    ['not a url', 'absolute URL'],
    ['ftp://example.com', 'https'],
    ['http://eu-central.api.pipelinersales.com', 'http is allowed only for loopback'],
    ['https://169.254.169.254', 'link-local or metadata'],
    ['https://metadata.google.internal', 'link-local or metadata'],
    ['https://[fe80::1]', 'link-local or metadata'],
    ['https://user:pw@example.com', 'credentials'],
    // Found by the adversarial session: IPv6 forms that embed a metadata or unspecified IPv4 address.
    ['https://[::ffff:169.254.169.254]', 'link-local or metadata'],
    ['https://[::169.254.169.254]', 'link-local or metadata'],
    ['https://[64:ff9b::169.254.169.254]', 'link-local or metadata'],
    ['https://[::ffff:0.0.0.0]', 'link-local or metadata'],
    ['https://metadata.google.internal.', 'link-local or metadata'],
    ['https://metadata.', 'link-local or metadata'],
    ['https://100.100.100.200', 'link-local or metadata'],
    ['http://foo.localhost:8100', 'http is allowed only for loopback'],
    ['https://example.com/?a=1', 'query or fragment'],
  ])('rejects %s', (input, reason) => {
    expect(() => checkServiceUrl(input)).toThrow(reason);
  });
});

describe('forbiddenAddress (what a host name resolved to)', () => {
  it.each([
    ['169.254.169.254', 'https:', 'link-local or metadata'],
    ['fe80::1', 'https:', 'link-local or metadata'],
    ['::ffff:169.254.169.254', 'https:', 'link-local or metadata'],
    ['100.100.100.200', 'https:', 'link-local or metadata'],
    ['10.0.0.5', 'http:', 'not a loopback address'],
    ['93.184.216.34', 'http:', 'not a loopback address'],
  ])('refuses %s over %s', (address, protocol, reason) => {
    expect(forbiddenAddress(address, protocol)).toContain(reason);
  });

  it.each([
    ['127.0.0.1', 'http:'],
    ['::1', 'http:'],
    ['::ffff:127.0.0.1', 'http:'],
    ['93.184.216.34', 'https:'],
    ['2606:2800:220:1:248:1893:25c8:1946', 'https:'],
  ])('allows %s over %s', (address, protocol) => {
    expect(forbiddenAddress(address, protocol)).toBeUndefined();
  });

  it('keeps a query only when asked (webhook URLs)', () => {
    expect(checkServiceUrl('https://hooks.example.com/in?team=a', { allowQuery: true })).toBe('https://hooks.example.com/in?team=a');
    expect(() => checkServiceUrl('https://hooks.example.com/in#x', { allowQuery: true })).toThrow('fragment');
  });
});
