export { createUnicrm, type CreateUnicrmOptions } from './lib/embedded';
export { createUnicrmClient, DEFAULT_TIMEOUT_MS, type CreateUnicrmClientOptions } from './lib/remote';
export type {
  IntegratedAccountListQuery,
  IntegratedAccountUpdateBody,
  NormalizedStage,
  RawProviderBody,
  StageCreateOptions,
  StageCreateQuery,
  StageCreateResult,
  Unicrm,
} from './lib/types';
export { encodeQuery } from './lib/query';
export { responseMeta, type ResponseMeta } from './lib/meta';
export { SDK_VERSION } from './lib/version';
export {
  UnicrmError,
  isUnicrmError,
  type ErrorBody,
  type Stage,
  type StageCreateBody,
  type IntegratedAccount,
  type IntegratedAccountCreateBody,
  type IntegratedAccountList,
} from '@unicrm/model';
export { DEFAULT_RETRY, parseHttpDate, retryAfterMs, retryDelay, type RetryPolicy } from './lib/retry';
