export * from './database';
export * from './account-store';
export * from './token-store';
export * from './idempotency-store';
export * from './rate-limit-store';
export * from './account-locks';
export * from './data-keys';
export * from './connect-store';
