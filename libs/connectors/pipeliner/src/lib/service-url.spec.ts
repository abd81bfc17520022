import { checkServiceUrl } from './service-url';

describe('checkServiceUrl', () => {
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
