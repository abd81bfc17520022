import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const lib = join(__dirname, '../..');

describe('generated HubSpot types', () => {
  it('are what openapi-typescript makes of the committed spec (run tools/generate-types.mjs if not)', () => {
    const output = execFileSync(process.execPath, [join(lib, 'tools/generate-types.mjs'), '--check'], { encoding: 'utf8' });
    expect(output).toContain('is up to date');
  });

  it('are generated from the spec copy SOURCES.md names (its sha256): the copy was not changed by hand', () => {
    const recorded = /\(sha256 `([0-9a-f]{64})`/.exec(readFileSync(join(lib, 'openapi/SOURCES.md'), 'utf8'))?.[1];
    const actual = createHash('sha256').update(readFileSync(join(lib, 'openapi/hubspot-crm-pipelines-v3.openapi.json'))).digest('hex');
    expect(recorded).toBeDefined();
    expect(actual).toBe(recorded);
  });
});
