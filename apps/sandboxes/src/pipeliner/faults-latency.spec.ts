import { request as httpRequest } from 'node:http';
import { type RunningSandbox, startSandbox } from './server';

// A request whose caller gives up during injected latency is still carried out, as on a real server:
// this is what makes a client-side timeout ambiguous for a write.
let sandbox: RunningSandbox;
beforeAll(async () => {
  sandbox = await startSandbox({ port: 0 });
});
afterAll(() => sandbox.close());

function postAndGiveUp(afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const url = new URL(`${sandbox.serviceUrl}/api/v100/rest/spaces/${sandbox.spaceId}/entities/Steps`);
    const req = httpRequest(url, {
      method: 'POST',
      auth: `${sandbox.username}:${sandbox.password}`,
      headers: { 'content-type': 'application/json' },
    });
    req.on('error', () => resolve());
    req.end(JSON.stringify({ name: 'Abandoned' }));
    setTimeout(() => {
      req.destroy();
      resolve();
    }, afterMs);
  });
}

describe('latency faults and callers that give up', () => {
  it('still carries out a slow write whose caller left', async () => {
    sandbox.injectFault({ method: 'POST', path: '/entities/Steps', latencyMs: 200, times: 1 });
    await postAndGiveUp(50);
    expect(sandbox.steps().filter((s) => s.name === 'Abandoned')).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sandbox.steps().filter((s) => s.name === 'Abandoned')).toHaveLength(1);
  });

  it('drops a slow write cut short by reset()', async () => {
    sandbox.injectFault({ method: 'POST', path: '/entities/Steps', latencyMs: 200, times: 1 });
    await postAndGiveUp(50);
    sandbox.reset();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sandbox.steps().filter((s) => s.name === 'Abandoned')).toHaveLength(0);
  });
});
