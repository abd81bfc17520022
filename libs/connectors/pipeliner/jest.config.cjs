module.exports = {
  ...require('../../../jest.preset.cjs'),
  displayName: 'connector-pipeliner',
  rootDir: __dirname,
};
