// Tests of the two floors (floor-undici.mjs, floor.mjs): each forwards a request and its body unchanged, and the
// answer back unchanged, parsing neither. `node --test tools/bench/`.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startHttpFloor } from './floor.mjs';
import { startUndiciFloor } from './floor-undici.mjs';

/** An upstream that records each request (method, url, raw headers, body bytes) and answers what the test set. */
async function startRecorder() {
  const seen = [];
  let answer = { status: 200, headers: {}, body: Buffer.alloc(0) };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) });
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
    });
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  return {
    port: server.address().port,
    seen,
    answer: (next) => (answer = next),
    close: () => new Promise((done) => {
      server.closeAllConnections();
      server.close(done);
    }),
  };
}

for (const [name, start] of [['undici floor', startUndiciFloor], ['node:http floor', startHttpFloor]]) {
  describe(name, () => {
    let upstream;
    let floor;
    before(async () => {
      upstream = await startRecorder();
      floor = await start(upstream.port, 0);
    });
    after(async () => {
      await floor.close();
      await upstream.close();
    });

    test('forwards method, path and query, headers and a binary body unchanged; answers status, headers and body unchanged', async () => {
      const body = randomBytes(256 * 1024); // not JSON, not UTF-8: nothing may parse or re-encode it
      const answerBody = randomBytes(100 * 1024);
      upstream.answer({ status: 418, headers: { 'content-type': 'application/octet-stream', 'x-upstream': 'yes', 'set-cookie': ['a=1', 'b=2'] }, body: answerBody });
      const path = '/api/v100/rest/spaces/s/entities/Steps?validation-level=8&filter%5Bname%5D=a%20b&x=%C3%A9';
      const res = await request(`http://127.0.0.1:${floor.port}${path}`, {
        method: 'POST',
        headers: { authorization: 'Basic dTpw', 'content-type': 'application/octet-stream', 'x-custom': 'Value With Case', accept: 'application/json' },
        body,
      });
      const got = Buffer.from(await res.body.arrayBuffer());
      const seen = upstream.seen.at(-1);
      assert.equal(seen.method, 'POST');
      assert.equal(seen.url, path);
      assert.equal(seen.headers.authorization, 'Basic dTpw');
      assert.equal(seen.headers['content-type'], 'application/octet-stream');
      assert.equal(seen.headers['x-custom'], 'Value With Case');
      assert.equal(seen.headers.accept, 'application/json');
      assert.equal(seen.headers['content-length'], String(body.length));
      assert.equal(seen.headers.host, `127.0.0.1:${upstream.port}`);
      assert.ok(seen.body.equals(body), 'the body reached the upstream unchanged');
      assert.equal(res.statusCode, 418);
      assert.equal(res.headers['x-upstream'], 'yes');
      assert.equal(res.headers['content-type'], 'application/octet-stream');
      assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
      assert.ok(got.equals(answerBody), 'the answer reached the client unchanged');
    });

    test('forwards a body without Content-Length (chunked) and a GET without a body', async () => {
      upstream.answer({ status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"success":true}') });
      const parts = [Buffer.from('{"name":'), Buffer.from('"Ünïcode ✓"}')];
      const res = await request(`http://127.0.0.1:${floor.port}/x`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: Readable.from(parts) });
      assert.equal(await res.body.text(), '{"success":true}');
      const chunked = upstream.seen.at(-1);
      assert.equal(chunked.method, 'PATCH');
      assert.ok(chunked.body.equals(Buffer.concat(parts)));
      // Framing is per hop: chunked, or (undici, when the body has all arrived before it is sent) its exact length.
      if (chunked.headers['transfer-encoding'] !== 'chunked') assert.equal(chunked.headers['content-length'], String(Buffer.concat(parts).length));

      const got = await request(`http://127.0.0.1:${floor.port}/entities/Steps/1?load-only=id,name`, { headers: { authorization: 'Basic x' } });
      assert.equal(got.statusCode, 200);
      await got.body.text();
      const plain = upstream.seen.at(-1);
      assert.equal(plain.method, 'GET');
      assert.equal(plain.url, '/entities/Steps/1?load-only=id,name');
      assert.equal(plain.body.length, 0);
      assert.equal(plain.headers['transfer-encoding'], undefined);
    });

    test('many requests at once, on kept-alive connections, each with its own answer', async () => {
      upstream.answer({ status: 201, headers: { 'content-type': 'text/plain' }, body: Buffer.from('ok') });
      const before = upstream.seen.length;
      const bodies = Array.from({ length: 200 }, (_, i) => `body ${i}`);
      const answers = await Promise.all(bodies.map(async (body) => {
        const res = await request(`http://127.0.0.1:${floor.port}/n`, { method: 'POST', body });
        return [res.statusCode, await res.body.text()];
      }));
      assert.deepEqual(answers, bodies.map(() => [201, 'ok']));
      assert.deepEqual(upstream.seen.slice(before).map((s) => s.body.toString()).sort(), [...bodies].sort());
    });
  });
}

test('the undici floor answers 502 when the upstream cannot be reached', async () => {
  const gone = await startRecorder();
  const port = gone.port;
  await gone.close();
  const floor = await startUndiciFloor(port, 0);
  try {
    const res = await request(`http://127.0.0.1:${floor.port}/x`);
    assert.equal(res.statusCode, 502);
    assert.equal(await res.body.text(), '{"statusCode":502}');
  } finally {
    await floor.close();
  }
});
