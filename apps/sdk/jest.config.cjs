const { availableParallelism } = require('node:os');

module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'sdk',
  rootDir: __dirname,
  // cli.shared.spec.ts holds the CLI suites that cli-embedded.spec.ts and cli-remote.spec.ts run.
  testPathIgnorePatterns: ['/node_modules/', '\\.shared\\.spec\\.ts$'],
  // The CLI suites wait on spawned processes: run the two files side by side even on two cores.
  maxWorkers: Math.max(2, availableParallelism() - 1),
};
