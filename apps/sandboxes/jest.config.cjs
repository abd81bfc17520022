module.exports = {
  ...require('../../jest.preset.cjs'),
  displayName: 'sandboxes',
  rootDir: __dirname,
};
