module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'pipeliner-sandbox',
  rootDir: __dirname,
};
