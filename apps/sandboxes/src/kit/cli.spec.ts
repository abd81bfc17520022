import { request } from 'undici';
import { PROVIDERS } from '../providers';
import { type CliIo, portFromEnv, runSandboxes, selectModules, UsageError } from './cli';
import { listenOnLoopback } from './server';
import { fakedeskModule } from './testing/fake-provider';

// `npm run sandbox [-- <name>...]` (main.ts is this plus signal handling), with the real registry and test-only modules.

const fakedesk = fakedeskModule();
const other = fakedeskModule({ name: 'otherdesk', title: 'Otherdesk', envPrefix: 'OTHERDESK_SANDBOX', defaultPort: 8998 });

function io(env: NodeJS.ProcessEnv): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { env, out, err, stdout: (text) => out.push(text), stderr: (text) => err.push(text) };
}

/** The base URL printed on a line `  <label> : <url>`. */
const printed = (text: string, label: string) => new RegExp(`${label}\\s*:\\s*(http://\\S+)`).exec(text)?.[1];

describe('npm run sandbox: choosing sandboxes', () => {
  it('registers Pipeliner, Pipedrive and HubSpot, each on its own port and prefix', () => {
    expect(PROVIDERS.map((module) => module.name)).toEqual(['pipeliner', 'pipedrive', 'hubspot']);
    expect(PROVIDERS[0]).toMatchObject({ defaultPort: 8100, envPrefix: 'PIPELINER_SANDBOX' });
    expect(PROVIDERS[1]).toMatchObject({ defaultPort: 8200, envPrefix: 'PIPEDRIVE_SANDBOX' });
    expect(PROVIDERS[2]).toMatchObject({ defaultPort: 8300, envPrefix: 'HUBSPOT_SANDBOX' });
  });

  it('selects every module without names, the named ones (any case, registry order) otherwise', () => {
    expect(selectModules([], [fakedesk, other])).toEqual([fakedesk, other]);
    expect(selectModules(['OtherDesk'], [fakedesk, other])).toEqual([other]);
    expect(selectModules(['otherdesk', 'fakedesk', 'fakedesk'], [fakedesk, other])).toEqual([fakedesk, other]);
  });

  it('refuses an unknown name, listing the known ones', () => {
    expect(() => selectModules(['hubspot', 'fakedesk'], [fakedesk, other])).toThrow(new UsageError("Unknown sandbox 'hubspot'. Known sandboxes: fakedesk, otherdesk."));
  });

  it('reads the port from <PREFIX>_PORT (default the module port) and refuses what is not a port', () => {
    expect(portFromEnv(fakedesk, {})).toBe(8999);
    expect(portFromEnv(fakedesk, { FAKEDESK_SANDBOX_PORT: '0' })).toBe(0);
    expect(portFromEnv(fakedesk, { FAKEDESK_SANDBOX_PORT: ' 8101 ' })).toBe(8101);
    for (const bad of ['abc', '-1', '65536', '80.5']) {
      expect(() => portFromEnv(fakedesk, { FAKEDESK_SANDBOX_PORT: bad })).toThrow(`FAKEDESK_SANDBOX_PORT must be a port number (0-65535), got '${bad}'.`);
    }
  });
});

describe('npm run sandbox: running them', () => {
  it('starts every registered sandbox and prints, for each, the account context to use (Pipeliner as before)', async () => {
    const cli = io({ PIPELINER_SANDBOX_PORT: '0' });
    const running = await runSandboxes([], PROVIDERS, cli);
    try {
      const text = cli.out.join('');
      const url = printed(text, 'service URL');
      expect(url).toBe(running?.sandboxes[0].url);
      expect(text).toContain('Pipeliner sandbox (an emulator of Pipeliner CRM, Steps and Pipelines)');
      for (const line of [
        /space id\s+: sandbox_space/,
        /username\s+: sandbox-api-token {3}\(API token\)/,
        /password\s+: sandbox-api-password {3}\(API password\)/,
        /"Sales Pipeline" id : 00000000-5a1e-4000-8000-000000000001/,
        /faults\s+: off \(PIPELINER_SANDBOX_FAULTS=1 turns them on\)/,
      ]) {
        expect(text).toMatch(line);
      }
      expect(text).toContain(`integration "pipeliner", context:\n    {"service_url":"${url}","space_id":"sandbox_space","username":"sandbox-api-token","password":"sandbox-api-password"}`);
      // The printed context reaches the sandbox.
      const auth = `Basic ${Buffer.from('sandbox-api-token:sandbox-api-password').toString('base64')}`;
      const res = await request(`${url}/api/v100/rest/spaces/sandbox_space/entities/Pipelines`, { headers: { authorization: auth } });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    } finally {
      await running?.close();
    }
  });

  it('starts only the named one, with its own variables, and prints its context', async () => {
    const cli = io({ FAKEDESK_SANDBOX_PORT: '0', OTHERDESK_SANDBOX_PORT: '0', OTHERDESK_SANDBOX_API_KEY: 'k2', OTHERDESK_SANDBOX_FAULTS: '1' });
    const running = await runSandboxes(['otherdesk'], [fakedesk, other], cli);
    try {
      expect(running?.sandboxes.map((sandbox) => sandbox.name)).toEqual(['otherdesk']);
      const text = cli.out.join('');
      expect(text).toMatch(/^Sandboxes running: Otherdesk\.\n/);
      expect(text).not.toContain('Fakedesk');
      const url = running?.sandboxes[0].url;
      expect(text).toContain(`{"api_url":"${url}/v1","api_key":"k2"}`);
      expect(text).toMatch(/faults\s+: on \(X-Sandbox-Fault header, \/__sandbox\/faults\)/);
      const res = await request(`${url}/v1/things`, { headers: { 'x-api-key': 'k2', 'x-sandbox-fault': '{"status":418}' } });
      expect(res.statusCode).toBe(418);
      await res.body.dump();
    } finally {
      await running?.close();
    }
  });

  it('writes contract violations to stderr when <PREFIX>_CONTRACT is on', async () => {
    const cli = io({ FAKEDESK_SANDBOX_PORT: '0', FAKEDESK_SANDBOX_CONTRACT: '1' });
    const running = await runSandboxes(['fakedesk'], [fakedesk], cli);
    try {
      const res = await request(`${running?.sandboxes[0].url}/v1/things?limit=0`, { headers: { 'x-api-key': 'fake-key' } });
      await res.body.dump();
      expect(cli.err.join('')).toBe('contract violation (fakedesk): request GET /v1/things [listThings] query /limit: must be >= 1\n');
    } finally {
      await running?.close();
    }
  });

  it('switches the rate limits on from <PREFIX>_RATE_LIMIT with <PREFIX>_RATE_LIMIT_<KEY> overrides, and prints them', async () => {
    const cli = io({ FAKEDESK_SANDBOX_PORT: '0', FAKEDESK_SANDBOX_RATE_LIMIT: '1', FAKEDESK_SANDBOX_RATE_LIMIT_MAX: '1' });
    const running = await runSandboxes(['fakedesk'], [fakedesk], cli);
    try {
      const url = running?.sandboxes[0].url;
      expect(cli.out.join('')).toContain(`rate limits : on: requests 1 per 60 s (GET ${url}/__sandbox/rate-limit)`);
      const statuses: number[] = [];
      for (let i = 0; i < 2; i += 1) {
        const res = await request(`${url}/v1/things`, { headers: { 'x-api-key': 'fake-key' } });
        statuses.push(res.statusCode);
        await res.body.dump();
      }
      expect(statuses).toEqual([200, 429]);
    } finally {
      await running?.close();
    }
    const off = io({ FAKEDESK_SANDBOX_PORT: '0' });
    const quiet = await runSandboxes(['fakedesk'], [fakedesk], off);
    await quiet?.close();
    expect(off.out.join('')).toContain('rate limits : off (FAKEDESK_SANDBOX_RATE_LIMIT=1 turns them on)');
    await expect(runSandboxes(['fakedesk'], [fakedesk], io({ FAKEDESK_SANDBOX_PORT: '0', FAKEDESK_SANDBOX_RATE_LIMIT: '190' }))).rejects.toThrow(
      /The Fakedesk sandbox failed to start: FAKEDESK_SANDBOX_RATE_LIMIT switches the rate limits on or off .*FAKEDESK_SANDBOX_RATE_LIMIT_MAX/,
    );
  });

  it('--help lists every module variable and starts nothing; an unknown name or option is a usage error', async () => {
    const cli = io({});
    expect(await runSandboxes(['--help'], [fakedesk, other], cli)).toBeUndefined();
    const help = cli.out.join('');
    for (const name of [
      'FAKEDESK_SANDBOX_PORT',
      'FAKEDESK_SANDBOX_API_KEY',
      'OTHERDESK_SANDBOX_CONTRACT',
      'FAKEDESK_SANDBOX_RATE_LIMIT ',
      'requests per window (default: 3)',
      'FAKEDESK_SANDBOX_RATE_LIMIT_MAX',
      'FAKEDESK_SANDBOX_RATE_LIMIT_WINDOW_MS',
      'Known sandboxes: fakedesk, otherdesk.',
    ]) {
      expect(help).toContain(name);
    }
    await expect(runSandboxes(['salesforce'], PROVIDERS, io({}))).rejects.toThrow(new UsageError("Unknown sandbox 'salesforce'. Known sandboxes: pipeliner, pipedrive, hubspot."));
    await expect(runSandboxes(['--port=1'], PROVIDERS, io({}))).rejects.toThrow(UsageError);
  });

  it('stops the sandboxes already started when a later one cannot start, and names it', async () => {
    const taken = await listenOnLoopback(() => undefined, 0);
    const free = await listenOnLoopback(() => undefined, 0);
    const freePort = free.port;
    await new Promise((resolve) => free.server.close(resolve));
    const cli = io({ FAKEDESK_SANDBOX_PORT: String(freePort), OTHERDESK_SANDBOX_PORT: String(taken.port) });
    try {
      await expect(runSandboxes([], [fakedesk, other], cli)).rejects.toThrow(/^The Otherdesk sandbox failed to start: listen EADDRINUSE/);
      expect(cli.out).toEqual([]);
      // Fakedesk had started on the free port; it was stopped, so the port can be bound again.
      const again = await listenOnLoopback(() => undefined, freePort);
      await new Promise((resolve) => again.server.close(resolve));
    } finally {
      await new Promise((resolve) => taken.server.close(resolve));
    }
  });
});
