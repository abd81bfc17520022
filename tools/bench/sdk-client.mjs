// In-process creates, for bench.mjs: the SDK's embedded client (`createUnicrm` from dist/apps/sdk) against
// calling the upstream directly with undici (what a program would do without unicrm), in a closed loop of
// `concurrency` callers for `durationMs` (after `warmupMs`). Runs as its own process, so the load generator is
// the program itself, as an SDK user's would be.
//
// `node sdk-client.mjs '<json options>'`; prints one JSON line with the figures.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Agent } from 'undici';
import { LatencyRecorder, rssOf } from './lib.mjs';

const options = JSON.parse(process.argv[2]);
const { mode, concurrency, durationMs, warmupMs, root } = options;
const MAX_CALLS = 50_000_000;

async function makeCall() {
  if (mode === 'undici') {
    const agent = new Agent({ keepAliveTimeout: 10_000, connections: 128 });
    const origin = options.upstreamUrl;
    const path = `/api/v100/rest/spaces/${options.space}/entities/Steps?validation-level=8`;
    const headers = { authorization: options.basicAuth, 'content-type': 'application/json', accept: 'application/json' };
    return {
      call: async () => {
        // A caller holds an object: serialise it, send it, parse the answer (what the SDK hands back parsed too).
        const res = await agent.request({ origin, path, method: 'POST', headers, body: JSON.stringify(options.stepBody) });
        const body = await res.body.json();
        if (res.statusCode !== 201 || typeof body?.data?.id !== 'string') throw new Error(`undici: HTTP ${res.statusCode}`);
      },
      close: () => agent.close(),
    };
  }
  const require = createRequire(import.meta.url);
  const sdk = require(join(root, 'dist/apps/sdk/src/index.js'));
  const unicrm = sdk.createUnicrm({ dataDir: options.dataDir });
  const query = { integrated_account_id: options.accountId };
  return {
    call: async () => {
      const stage = await unicrm.crm.stages.create(query, options.unifiedBody);
      if (typeof stage?.id !== 'string') throw new Error('sdk: no stage id');
    },
    close: () => unicrm.close(),
  };
}

async function loop(call, ms, recorder) {
  const end = performance.now() + ms;
  let calls = 0;
  let errors = 0;
  let firstError;
  const worker = async () => {
    while (performance.now() < end && calls < MAX_CALLS) {
      calls++;
      const t0 = performance.now();
      try {
        await call();
        recorder?.add(performance.now() - t0);
      } catch (error) {
        errors++;
        firstError ??= String(error?.message ?? error);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { seconds: (performance.now() - started) / 1000, errors, firstError };
}

const { call, close } = await makeCall();
await loop(call, warmupMs);
const recorder = new LatencyRecorder();
let rssPeak = rssOf(process.pid);
const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssOf(process.pid))), 100);
const { seconds, errors, firstError } = await loop(call, durationMs, recorder);
clearInterval(sampler);
await close();
const stats = recorder.stats();
process.stdout.write(
  `${JSON.stringify({ mode, concurrency, ok: recorder.count, errors, firstError, rps: recorder.count / seconds, ...stats, rssPeak })}\n`,
);
