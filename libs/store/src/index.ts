export * from './lib/secret-box';
export * from './lib/database';
export * from './lib/account-store';
export * from './lib/token-store';
export * from './lib/key-rotation';
export * from './lib/data-directory';
export * from './lib/idempotency-store';
export * from './lib/change-stamp';
