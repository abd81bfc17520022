export * from './lib/exclude-fields';
export * from './lib/format';
