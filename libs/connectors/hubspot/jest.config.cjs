module.exports = {
  ...require('../../../jest.preset.cjs'),
  displayName: 'connector-hubspot',
  rootDir: __dirname,
};
