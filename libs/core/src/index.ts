export * from './lib/core';
export * from './lib/config';
export * from './lib/accounts';
export * from './lib/api-tokens';
export * from './lib/create-stage';
export * from './lib/registry';
export * from './lib/undici-transport';
