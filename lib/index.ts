/**
 * vdcrypt: AES-256-XTS storage-service encryption for page blobs and VHD disk images.
 *
 * Layers, top to bottom (each imports only from the ones below it):
 *   pipeline (import/export) → blob (page blobs with SSE) and vhd (image formats) → account, keys, store,
 *   remote → xts (the native sector engine).
 *
 * The Azure Blob backend is a separate entry point, `vdcrypt/remote`, so that importing the package does not
 * load the Azure SDK.
 */
export { describeValue, VdcryptError, XtsError } from './errors.js';
export type { VdcryptErrorOptions } from './errors.js';
export * from './xts/index.js';
export * from './keys/index.js';
export * from './account/index.js';
export * from './store/index.js';
export * from './blob/index.js';
export * from './vhd/index.js';
export * from './pipeline/index.js';
