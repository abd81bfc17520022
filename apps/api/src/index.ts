export * from './lib/app';
