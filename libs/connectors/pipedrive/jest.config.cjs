module.exports = {
  ...require('../../../jest.preset.cjs'),
  displayName: 'connector-pipedrive',
  rootDir: __dirname,
};
