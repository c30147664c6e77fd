/**
 * The import/export pipeline: disk images (lib/vhd) to and from page blobs (lib/blob). It sits above both
 * layers; neither imports it. Issue 5, "Import and export".
 */
export { PipelineError, type PipelineErrorCode } from './errors.js';
export { PROGRESS_INTERVAL_MS, type PipelineProgress, type ProgressListener } from './progress.js';
export {
  CHECKPOINT_DONE_KEY, CHECKPOINT_SOURCE_KEY, checkpointMetadata, type ImportIdentity, resumeOffset, sourceIdentity,
  withoutCheckpoint,
} from './checkpoint.js';
export {
  DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_IMPORT_CONCURRENCY, importImage, type ImportPlan, MAX_IMPORT_CONCURRENCY,
  type ImportMode, type ImportOptions, type ImportResult, planImport,
} from './import.js';
export { allocatedChunks, blobDisk, EXPORT_CHUNK_SIZE, type BlobDisk, type BlobLayout } from './blob-layout.js';
export {
  DEFAULT_EXPORT_READ_AHEAD, EXPORT_FORMATS, exportBlob, type ExportFormat, type ExportOptions, type ExportResult,
} from './export.js';
