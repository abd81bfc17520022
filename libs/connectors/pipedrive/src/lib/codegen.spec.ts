import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const lib = join(__dirname, '../..');

describe('generated Pipedrive types', () => {
  it('are what openapi-typescript makes of the committed spec (run tools/generate-types.mjs if not)', () => {
    const output = execFileSync(process.execPath, [join(lib, 'tools/generate-types.mjs'), '--check'], { encoding: 'utf8' });
    expect(output).toContain('is up to date');
  });

  const shared = join(lib, '../../../../shared/specs/pipedrive-v2-stages-pipelines.subset.openapi.json');
  (existsSync(shared) ? it : it.skip)('come from the same spec as shared/specs (when shared/ is beside the checkout)', () => {
    expect(readFileSync(join(lib, 'openapi/pipedrive-v2-stages-pipelines.subset.openapi.json'), 'utf8')).toBe(readFileSync(shared, 'utf8'));
  });
});
