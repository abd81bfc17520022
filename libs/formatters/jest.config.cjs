module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'formatters',
  rootDir: __dirname,
};
