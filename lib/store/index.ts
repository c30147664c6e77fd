/** The embedded page store: page blobs with opaque per-page tags, in memory or in a local directory. */
export * from './types.js';
export { STORE_ERROR_STATUS, StoreError, type StoreErrorCode } from './errors.js';
export { MemoryPageStore } from './memory.js';
export { DATA_DIR, LocalPageStore, type LocalPageStoreOptions, META_FILE } from './local.js';
export { type ByteRange, type FileHandleIo, type FileIo, nodeFileIo } from './file-io.js';
