import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '../../../../..');

describe('generated Pipeliner types', () => {
  it('are what openapi-typescript makes of the committed spec (run `npm run codegen` if not)', () => {
    const output = execFileSync(process.execPath, [join(root, 'tools/codegen/generate-pipeliner-types.mjs'), '--check'], {
      encoding: 'utf8',
    });
    expect(output).toContain('is up to date');
  });

  const shared = join(root, '../shared/specs/pipeliner-steps-pipelines.subset.openapi.json');
  (existsSync(shared) ? it : it.skip)('come from the same spec as shared/specs (when shared/ is beside the checkout)', () => {
    const copy = readFileSync(join(root, 'libs/connectors/pipeliner/openapi/pipeliner-steps-pipelines.subset.openapi.json'), 'utf8');
    expect(copy).toBe(readFileSync(shared, 'utf8'));
  });
});
