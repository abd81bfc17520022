import express from 'express';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { BODY_LIMIT, readJsonBody } from './middleware';

// readJsonBody reads plain JSON requests itself (issue 8); whatever it does must be what body-parser does.
const bodyParser = express.json({ limit: BODY_LIMIT, strict: true, type: ['application/json', 'application/*+json'] });

let server: Server;
let port: number;
beforeAll(async () => {
  server = createServer((req, res) => {
    const target = req as typeof req & { body?: unknown };
    const answer = (outcome: unknown) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(outcome));
    };
    const fail = (error: { type?: string; message?: string; status?: number }) =>
      answer({ error: { type: error.type, message: error.message, status: error.status } });
    const parsed = () => answer({ body: target.body === undefined ? '(undefined)' : target.body, proto: Object.getPrototypeOf(target.body ?? {}) === Object.prototype });
    if (req.url === '/ours') readJsonBody(target, res).then(parsed, fail);
    else bodyParser(req as express.Request, res as express.Response, (error?: unknown) => (error ? fail(error as never) : parsed()));
  }).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => server.close());

function send(path: string, headers: Record<string, string>, body: Buffer): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path, headers: { 'content-length': String(body.length), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const JSON_TYPE = { 'content-type': 'application/json' };
const text = (value: string) => Buffer.from(value, 'utf8');
const cases: Array<[string, Record<string, string>, Buffer]> = [
  ['an object', JSON_TYPE, text('{"name":"Qualified","remote_data":{"percent":10}}')],
  ['an array', JSON_TYPE, text('[1,2]')],
  ['leading whitespace', JSON_TYPE, text(' \n\t{"a":1}')],
  ['a byte order mark', JSON_TYPE, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), text('{"a":1}')])],
  ['invalid UTF-8 in a string', JSON_TYPE, Buffer.concat([text('{"a":"'), Buffer.from([0xff, 0xfe]), text('"}')])],
  ['a __proto__ key', JSON_TYPE, text('{"__proto__":{"polluted":true},"a":1}')],
  ['duplicate keys', JSON_TYPE, text('{"a":1,"a":2}')],
  ['a big number', JSON_TYPE, text('{"a":123456789012345678901234567890}')],
  ['charset=utf-8', { 'content-type': 'application/json; charset=utf-8' }, text('{"a":"é"}')],
  ['upper-case type', { 'content-type': 'Application/JSON' }, text('{"a":1}')],
  ['charset=latin1', { 'content-type': 'application/json; charset=latin1' }, Buffer.from('{"a":"é"}', 'latin1')],
  ['+json type', { 'content-type': 'application/merge-patch+json' }, text('{"a":1}')],
  ['invalid JSON', JSON_TYPE, text('{"a":')],
  ['trailing garbage', JSON_TYPE, text('{"a":1} x')],
  ['a JSON string', JSON_TYPE, text('"name"')],
  ['a number', JSON_TYPE, text('42')],
  ['null', JSON_TYPE, text('null')],
  ['whitespace only', JSON_TYPE, text('   ')],
  ['a no-break space first', JSON_TYPE, text('\u00a0{"a":1}')],
  ['a no-break space only', JSON_TYPE, text('\u00a0')],
  ['a byte order mark only', JSON_TYPE, Buffer.from([0xef, 0xbb, 0xbf])],
  ['gzip', { ...JSON_TYPE, 'content-encoding': 'gzip' }, gzipSync('{"a":1}')],
  ['broken gzip', { ...JSON_TYPE, 'content-encoding': 'gzip' }, text('not gzip')],
  ['text/plain', { 'content-type': 'text/plain' }, text('{"a":1}')],
  ['exactly 1 MiB', JSON_TYPE, text(`{"a":"${'x'.repeat(1_048_576 - 8)}"}`)],
  ['1 MiB + 1 byte', JSON_TYPE, text(`{"a":"${'x'.repeat(1_048_576 - 7)}"}`)],
];

describe('readJsonBody', () => {
  it.each(cases)('reads %s as body-parser does', async (_name, headers, body) => {
    const ours = await send('/ours', headers, body);
    const theirs = await send('/body-parser', headers, body);
    expect(ours).toEqual(theirs);
  });

  it('reads the plain case itself and gets the same object as body-parser', async () => {
    expect(await send('/ours', JSON_TYPE, text('{"name":"x","n":[1,{"b":null}]}'))).toEqual({ body: { name: 'x', n: [1, { b: null }] }, proto: true });
  });
});
