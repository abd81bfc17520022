import nx from '@nx/eslint-plugin';

/**
 * Dependency direction of DESIGN.md §1, held by Nx tags:
 * model <- query, formatters, connectors/*, store <- core <- apps/*.
 * No lib may import Express (or anything HTTP-server shaped); connectors never import core or each other.
 */
const depConstraints = [
  { sourceTag: 'scope:model', onlyDependOnLibsWithTags: [] },
  { sourceTag: 'scope:query', onlyDependOnLibsWithTags: ['scope:model'] },
  { sourceTag: 'scope:formatters', onlyDependOnLibsWithTags: ['scope:model'] },
  { sourceTag: 'scope:store', onlyDependOnLibsWithTags: ['scope:model'] },
  { sourceTag: 'scope:connector', onlyDependOnLibsWithTags: ['scope:model'] },
  {
    sourceTag: 'scope:core',
    onlyDependOnLibsWithTags: ['scope:model', 'scope:query', 'scope:formatters', 'scope:store', 'scope:connector'],
  },
  { sourceTag: 'scope:api', onlyDependOnLibsWithTags: ['scope:core', 'scope:model'] },
  { sourceTag: 'scope:sdk', onlyDependOnLibsWithTags: ['scope:core', 'scope:model'] },
  { sourceTag: 'scope:sandbox', onlyDependOnLibsWithTags: [] },
  // The workspace's own tests (docs checks) read the constants the docs state, from the libs that own them.
  { sourceTag: 'scope:tools', onlyDependOnLibsWithTags: ['scope:model', 'scope:query'] },
  {
    sourceTag: 'type:lib',
    bannedExternalImports: ['express', 'express-*', 'body-parser', 'pino-http', 'supertest', 'helmet'],
  },
];

export default [
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  { ignores: ['**/dist', '**/node_modules', '**/coverage', '**/.nx', '**/generated/**'] },
  {
    files: ['**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': ['error', { enforceBuildableLibDependency: false, depConstraints }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Test doubles (fake transports, silent loggers) have empty methods on purpose.
    files: ['**/*.spec.ts'],
    rules: { '@typescript-eslint/no-empty-function': 'off' },
  },
  {
    // Tests of the apps start the bundled Pipeliner sandbox in-process, compare the front doors with each other
    // (app imports allowed only in tests), and start throwaway PostgreSQL clusters (@unicrm/store/testing).
    files: ['apps/**/*.spec.ts', 'apps/*/src/testing/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        { enforceBuildableLibDependency: false, depConstraints, allow: ['@unicrm/sandboxes', '@unicrm/sdk', '@unicrm/api', '@unicrm/store/testing'] },
      ],
    },
  },
];
