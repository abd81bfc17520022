export * from './lib/connector';
export * from './lib/client';
export * from './lib/create-stage';
export * from './lib/dates';
export * from './lib/find-created';
export * from './lib/mappers';
export * from './lib/remote-errors';
export * from './lib/service-url';
export type { components as PipelinerComponents, paths as PipelinerPaths } from './lib/generated/pipeliner-api';
