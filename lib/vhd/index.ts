/**
 * The VHD format layer: strict readers for fixed, dynamic and differencing VHDs and raw images, streaming
 * writers, and the Azure fixed-VHD rules (Microsoft Virtual Hard Disk Image Format Specification v1.0).
 * Pure: it reads and writes image files and knows nothing of blobs, keys or stores.
 */
export { VHD_ERROR_CODES, VhdFormatError } from './errors.js';
export type { VhdErrorCode } from './errors.js';
export {
  AZURE_SIZE_ALIGNMENT, azureFixedSize, chsGeometry, encodeFooter, MAX_VIRTUAL_SIZE, parseFooter, toAzureFixedFooter,
} from './footer.js';
export type { AzureSizeMode, DiskGeometry, FooterOptions, VhdFooter } from './footer.js';
export type { DynamicHeader, ParentLocator } from './dynamic.js';
export { MAX_BLOCK_SIZE } from './dynamic.js';
export { DEFAULT_CHUNK_SIZE, DEFAULT_MIN_ZERO_RUN, MAX_CHUNK_SIZE, MAX_READ_LENGTH } from './image.js';
export type { ChainMember, DiskImage, Extent, ExtentOptions, ExtentStats, ImageFormat } from './image.js';
export { DEFAULT_MAX_CHAIN_DEPTH, openImage } from './open.js';
export type { OpenImageOptions } from './open.js';
export { inspectImage } from './inspect.js';
export type { ImageReport } from './inspect.js';
export { createImageWriter } from './writer.js';
export type { ImageWriter, ImageWriterOptions, WriterFormat } from './writer.js';
export { DEFAULT_BLOCK_SIZE, FOOTER_SIZE, SECTOR_SIZE } from './layout.js';
