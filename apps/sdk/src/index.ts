export { createUnicrm, type CreateUnicrmOptions } from './lib/embedded';
export { createUnicrmClient, DEFAULT_TIMEOUT_MS, type CreateUnicrmClientOptions } from './lib/remote';
export type {
  IntegratedAccountListQuery,
  IntegratedAccountUpdateBody,
  ListItemOf,
  ListPage,
  ListPageOf,
  ListQuery,
  ListResultOf,
  NormalizedPipeline,
  NormalizedStage,
  PagedList,
  PipelineList,
  PipelineListQuery,
  PipelineResult,
  ProxyListPage,
  ProxyMethod,
  ProxyQuery,
  ProxyRequest,
  RawProviderBody,
  RecordResult,
  StageCreateOptions,
  StageCreateQuery,
  StageCreateResult,
  StageList,
  StageListQuery,
  StageResult,
  Unicrm,
  UnifiedRecordQuery,
  WebhookDeliveryList,
  WebhookList,
  WriteOptions,
} from './lib/types';
export { encodeQuery } from './lib/query';
export { responseMeta, type ResponseMeta } from './lib/meta';
export { SDK_VERSION } from './lib/version';
export {
  UnicrmError,
  isUnicrmError,
  type ErrorBody,
  type DateFilter,
  type Pipeline,
  type PipelineListFilters,
  type Stage,
  type StageCreateBody,
  type StageListFilters,
  type StageUpdateBody,
  type IntegratedAccount,
  type IntegratedAccountCreateBody,
  type IntegratedAccountList,
} from '@unicrm/model';
export { DEFAULT_RETRY, parseHttpDate, retryAfterMs, retryDelay, type RetryPolicy } from './lib/retry';
