/** vdcrypt: AES-256-XTS storage-service encryption for page blobs and VHD disk images. */
export { describeValue, VdcryptError, XtsError } from './errors.js';
export type { VdcryptErrorOptions } from './errors.js';
export * from './xts/index.js';
