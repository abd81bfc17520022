export * from './lib/app';
export * from './lib/server';
