import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '../../../../..');

describe('generated Pipeliner types', () => {
  it('are what openapi-typescript makes of the committed spec (run `npm run codegen` if not)', () => {
    const output = execFileSync(process.execPath, [join(root, 'tools/codegen/generate-pipeliner-types.mjs'), '--check'], {
      encoding: 'utf8',
    });
    expect(output).toContain('is up to date');
  });

  it('are generated from the spec copy SOURCES.md names (its sha256): the copy was not changed by hand', () => {
    const recorded = /The committed copy: sha256 `([0-9a-f]{64})`/.exec(readFileSync(join(root, 'libs/connectors/pipeliner/openapi/SOURCES.md'), 'utf8'))?.[1];
    const actual = createHash('sha256').update(readFileSync(join(root, 'libs/connectors/pipeliner/openapi/pipeliner-steps-pipelines.subset.openapi.json'))).digest('hex');
    expect(recorded).toBeDefined();
    expect(actual).toBe(recorded);
  });
});
