import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '../../../..');

describe('generated remote-client types', () => {
  it('are what openapi-typescript makes of the API document (run `npm run codegen:sdk` if not)', () => {
    // The script builds the document with buildOpenApiDocument() of dist/libs/model: sdk:test builds it first.
    const output = execFileSync(process.execPath, [join(root, 'tools/codegen/generate-sdk-types.mjs'), '--check'], { encoding: 'utf8' });
    expect(output).toContain('apps/sdk/src/lib/generated/unicrm-api.ts is up to date.');
  });

  it('describe every operation the remote client calls', () => {
    const generated = readFileSync(join(__dirname, 'generated/unicrm-api.ts'), 'utf8');
    const operations = [
      ...['listStages', 'getStage', 'createStage', 'updateStage', 'deleteStage', 'listPipelines', 'getPipeline'],
      ...['proxyList', 'proxyGet', 'proxyCreate', 'proxyUpdate', 'proxyDelete', 'proxyAction'],
      ...['createIntegratedAccount', 'listIntegratedAccounts', 'getIntegratedAccount', 'updateIntegratedAccount', 'deleteIntegratedAccount'],
    ];
    for (const operation of operations) {
      expect(generated).toContain(`${operation}: {`);
    }
  });
});
