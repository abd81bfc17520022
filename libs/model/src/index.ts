export * from './lib/stage';
export * from './lib/errors';
export * from './lib/integrated-account';
export * from './lib/query';
export * from './lib/ports';
export * from './lib/openapi';
export * from './lib/remote-data';
