/** The Azure Blob backend: AzurePageStore (a PageStore on Azure page blobs) and its bulk upload. */
export {
  type AzureAccountConfig, AzurePageStore, type AzurePageStoreOptions, DEFAULT_RETRY, SNAPSHOT_STATE_KEY,
} from './azure-store.js';
export { CipherPool, SHARED_POOL_IDLE_MS, sharedCipherPool } from './cipher-pool.js';
export { RemoteError } from './errors.js';
export { RESERVED_META_PREFIX, STATE_SUFFIX } from './names.js';
export { type PlainExtentSource, type SealOptions, sealExtents } from './seal.js';
export {
  DEFAULT_BATCH_BYTES, DEFAULT_UPLOAD_CONCURRENCY, type ExtentSource, type UploadExtent, type UploadOptions,
  type UploadProgress, type UploadResult,
} from './upload.js';
