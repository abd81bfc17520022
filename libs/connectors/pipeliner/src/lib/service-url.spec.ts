import { checkServiceUrl } from './service-url';

describe('checkServiceUrl', () => {
  it.each([
    ['https://eu-central.api.pipelinersales.com/', 'https://eu-central.api.pipelinersales.com'],
    ['https://us-east.pipelinersales.com', 'https://us-east.pipelinersales.com'],
    ['http://127.0.0.1:8100', 'http://127.0.0.1:8100'],
    ['http://localhost:8100/', 'http://localhost:8100'],
    ['http://[::1]:8100', 'http://[::1]:8100'],
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
    ['https://example.com/?a=1', 'query or fragment'],
  ])('rejects %s', (input, reason) => {
    expect(() => checkServiceUrl(input)).toThrow(reason);
  });
});
