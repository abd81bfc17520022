export { createUnicrm, type CreateUnicrmOptions, type StageCreateQuery, type Unicrm } from './lib/embedded';
export { UnicrmError, isUnicrmError, type ErrorBody, type Stage, type StageCreateBody, type IntegratedAccount } from '@unicrm/model';
