export {
  AES_BLOCK_BYTES,
  availableImplementations,
  cpuFeatures,
  DEFAULT_SECTOR_SIZE,
  MAX_SECTOR,
  SECTOR_SIZES,
  sectorTweak,
  XTS_IMPLEMENTATIONS,
  XTS_KEY_BYTES,
  XtsCipher,
} from './cipher.js';
export type { CpuFeatures, SectorNumber, SectorSize, XtsCipherOptions, XtsImplementation } from './cipher.js';
export { AlignedBufferPool, alignedBuffer, IO_ALIGNMENT, isIoAligned, poolBuffer } from './aligned.js';
export { crc64 } from './checksum.js';
export { nonZeroRunsAsync, type PageRun, pagesInRuns } from './runs.js';
