import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

// The layering of DESIGN.md §1, proven on the real lint configuration: each case is a file that
// would sit in a project, and the rule it must trip. ESLint runs in a child process (its ESM config
// cannot load inside Jest's module system), all cases at once.
type Case = [name: string, filePath: string, code: string, expected?: string];

const forbidden: Case[] = [
  ['a lib imports Express', 'libs/model/src/lib/x.ts', "import express from 'express';\nexport const x = express;\n", 'not allowed to import "express"'],
  ['the core imports Express', 'libs/core/src/lib/x.ts', "import express from 'express';\nexport const x = express;\n", 'not allowed to import "express"'],
  ['a connector imports core', 'libs/connectors/pipeliner/src/lib/x.ts', "import { createUnicrmCore } from '@unicrm/core';\nexport const x = createUnicrmCore;\n", 'core'],
  ['query imports formatters', 'libs/query/src/lib/x.ts', "import { excludeFields } from '@unicrm/formatters';\nexport const x = excludeFields;\n", 'can only depend on libs tagged with "scope:model"'],
  ['an app imports a connector directly', 'apps/api/src/lib/x.ts', "import { PipelinerConnector } from '@unicrm/connector-pipeliner';\nexport const x = PipelinerConnector;\n", 'can only depend on libs tagged with'],
  ['an app imports the sandbox outside tests', 'apps/api/src/lib/x.ts', "import { startSandbox } from '@unicrm/sandboxes';\nexport const x = startSandbox;\n", 'Imports of apps are forbidden'],
  ['the sandbox imports the model', 'apps/sandboxes/src/pipeliner/x.ts', "import { StageSchema } from '@unicrm/model';\nexport const x = StageSchema;\n", 'scope:sandbox'],
];
const allowed: Case[] = [
  ['the core imports a connector', 'libs/core/src/lib/x.ts', "import { PipelinerConnector } from '@unicrm/connector-pipeliner';\nexport const x = PipelinerConnector;\n"],
  ['a connector imports the model', 'libs/connectors/pipeliner/src/lib/x.ts', "import { StageSchema } from '@unicrm/model';\nexport const x = StageSchema;\n"],
  ['an app test starts the sandbox', 'apps/api/src/lib/x.spec.ts', "import { startSandbox } from '@unicrm/sandboxes';\nexport const x = startSandbox;\n"],
];

const root = join(__dirname, '../../..');
const output = execFileSync(process.execPath, [join(root, 'tools/workspace/lint-cases.mjs')], {
  cwd: root,
  input: JSON.stringify([...forbidden, ...allowed].map(([, filePath, code]) => ({ filePath, code }))),
  env: { ...process.env, NX_DAEMON: 'false' },
  encoding: 'utf8',
});
const results = JSON.parse(output) as Array<Array<{ ruleId: string | null; message: string }>>;
const boundaryErrors = (index: number) =>
  (results[index] ?? []).filter((m) => m.ruleId === '@nx/enforce-module-boundaries').map((m) => m.message);

describe('module boundaries (DESIGN.md §1)', () => {
  it.each(forbidden.map((c, i) => [c[0], i, c[3]] as const))('is a lint error when %s', (_name, index, expected) => {
    expect(boundaryErrors(index).join('\n')).toContain(expected);
  });

  it.each(allowed.map((c, i) => [c[0], forbidden.length + i] as const))('allows %s', (_name, index) => {
    expect(results[index]).toBeDefined();
    expect(boundaryErrors(index)).toEqual([]);
  });
});
