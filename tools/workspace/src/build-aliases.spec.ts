import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// The build compiles with SWC, which rewrites the `@unicrm/*` imports to relative paths from its own `paths` in .swcrc,
// while tsc, Jest and ESLint read tsconfig.base.json's. A lib whose alias is only in the latter type-checks, tests and
// builds, but the built API cannot load it ("Cannot find module '@unicrm/connector-hubspot'", found running the API
// built with the HubSpot connector). Entries ending in `/testing` are test helpers that only specs import (SWC does not
// build specs), so only tsconfig needs them.
const root = join(__dirname, '../../..');
type Paths = Record<string, string[]>;

const read = (file: string) => JSON.parse(readFileSync(join(root, file), 'utf8')) as { jsc?: { paths?: Paths }; compilerOptions?: { paths?: Paths } };

describe('the build aliases', () => {
  it('of tsconfig.base.json (tsc, Jest, ESLint) are all in .swcrc (SWC, the build), to the same files', () => {
    const swc = read('.swcrc').jsc?.paths ?? {};
    const tsconfig = read('tsconfig.base.json').compilerOptions?.paths ?? {};
    const built = Object.fromEntries(Object.entries(tsconfig).filter(([alias]) => !alias.endsWith('/testing')));
    expect(Object.keys(built)).toContain('@unicrm/core');
    expect(swc).toEqual(built);
  });
});
