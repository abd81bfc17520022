export * from './lib/parse-query';
