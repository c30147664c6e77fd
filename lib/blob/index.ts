/** Page blobs with Storage Service Encryption on any PageStore. */
export { BlobError, type BlobErrorCode } from './errors.js';
export { fillByWrites } from './fill-fallback.js';
export { blobName, encryptionStatus } from './encryption-status.js';
export {
  DEFAULT_FILL_CONCURRENCY, type FillPagesExtent, type FillPagesOptions, PageBlobService, type PutPagesOptions, type WriteMode,
} from './page-blob-service.js';
export { copyBlob, type CopyOptions, encryptBlob, type EncryptOptions, type EncryptResult } from './rewrite.js';
export {
  type AccountKeys, type EncryptionRange, type EncryptionState, type EncryptionStatus, type LongOperationOptions,
  PLAINTEXT_TAG, type Progress,
} from './types.js';
