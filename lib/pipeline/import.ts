/**
 * Import: a disk image (fixed, dynamic or differencing VHD, or raw) into a page blob, the way Azure keeps an
 * uploaded VHD (shared/reference/azure-sse.md, "VHD upload rules"; reference/vhd.md, "Azure rules"):
 *
 *   image.extents() ──(allocated, non-zero, ≤ 4 MiB)──▶ fillPages (durable per batch) ──▶ blob [0, V)
 *                                                       ...then the fixed footer (putPages) ──▶ blob [V, V + 512)
 *
 * - VHD images become a fixed-VHD page blob of V + 512 bytes: the data, then the image's footer rewritten as a
 *   fixed footer (`toAzureFixedFooter`: unique id, timestamp and creator kept) in the last page. A virtual
 *   size that is not a multiple of 1 MiB is kept unless `azure` says `round-up` (the blob grows to the next
 *   MiB, the footer follows) or `refuse` (`VhdFormatError` `VhdNotAzureAligned`).
 * - Raw images become a blob of exactly the raw size with no footer (the whole blob is the disk), unless
 *   `azure` is given: then they become an Azure fixed VHD like the above, with a fresh footer.
 * - Modes: `archive` (default) writes follow the account's encryption setting; `baseImage` writes plaintext
 *   whatever the setting (a marketplace base image: later writes to the blob are encrypted as usual).
 * - Only allocated extents are sent, zero runs of fixed and raw images included in what is skipped. They go
 *   through PageBlobService.fillPages, which streams them (a few 4 MiB buffers in flight, never a whole batch
 *   in memory) and makes them durable per batch of `checkpointInterval` bytes instead of per 4 MiB call; on a
 *   store without a bulk path it falls back to `concurrency` Put Page calls in flight.
 * - Resumable: the blob's metadata holds a checkpoint (checkpoint.ts) naming the source and the offset below
 *   which every extent is durable. It is created with the blob, advanced after every durable batch (the
 *   fill's `onBatch`, so it never passes a write that could still be lost), also after the batch cut short by
 *   an abort or a failing read, and removed after the footer page, which is written last. `resume: true` skips every
 *   extent below the checkpoint, and refuses a checkpoint of another source.
 */
import { MAX_WRITE_BYTES, PAGE_SIZE, StoreError, type BlobInfo, type BlobRef, type Metadata } from '../store/index.js';
import type { FillPagesExtent, PageBlobService, WriteMode } from '../blob/index.js';
import { blobName } from '../blob/index.js';
import {
  azureFixedSize, encodeFooter, FOOTER_SIZE, openImage, toAzureFixedFooter, type AzureSizeMode, type DiskImage,
  type ImageFormat,
} from '../vhd/index.js';
import { describeValue } from '../errors.js';
import {
  checkpointMetadata, resumeOffset, sourceIdentity, withoutCheckpoint, type ImportIdentity,
} from './checkpoint.js';
import { PipelineError, throwIfAborted } from './errors.js';
import { ProgressTracker, type ProgressListener } from './progress.js';

export const DEFAULT_IMPORT_CONCURRENCY = 4;
export const MAX_IMPORT_CONCURRENCY = 64;
/**
 * The checkpoint is saved whenever the durable offset has advanced this far since the last save. Each save is
 * a durable point (the fill's fdatasync and commit, then the metadata commit): about 6 ms here, 0.1 s per GiB
 * at 64 MiB; 256 MiB is about 0.2 s of import work to redo after a crash.
 */
export const DEFAULT_CHECKPOINT_INTERVAL = 256 * 1024 * 1024;

export type ImportMode = 'base-image' | 'archive';

export interface ImportOptions {
  /** Keep the pages plaintext even in an encryption-enabled account (a base image). Default false (archive). */
  baseImage?: boolean;
  /** Azure's 1 MiB rule for sizes that are not multiples of 1 MiB; undefined keeps the size as it is. */
  azure?: AzureSizeMode | undefined;
  /** How to read the file (default `auto`: a VHD if it has a footer, else raw). */
  imageFormat?: 'auto' | 'vhd' | 'raw';
  /** Replace an existing blob of that name (default false: the store's `BlobAlreadyExists`). */
  overwrite?: boolean;
  /** Continue an interrupted import of the same image into this blob (a missing blob starts afresh). */
  resume?: boolean;
  /** Most Put Page calls in flight when the store has no bulk fill path (default 4). */
  concurrency?: number;
  /** Bytes per durable batch of the fill, and so between checkpoints (default 256 MiB; 0 = every extent). */
  checkpointInterval?: number;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

export interface ImportResult {
  /** `account/container/blob`. */
  blob: string;
  imageFormat: ImageFormat;
  mode: ImportMode;
  /** The disk size the blob holds (after any Azure round-up). */
  virtualSize: number;
  /** The blob size: `virtualSize + 512` with a footer, `virtualSize` without. */
  blobSize: number;
  footer: boolean;
  /** Data bytes sent by this run (the footer page included). */
  bytesWritten: number;
  /** Virtual bytes not sent: unallocated, zero runs, Azure padding and (on resume) ranges already imported. */
  bytesSkipped: number;
  /** Of `bytesSkipped`, the bytes below the checkpoint a resumed import did not send again. */
  bytesResumed: number;
  elapsedMs: number;
  /** bytesWritten per second. */
  throughput: number;
}

/** What an image becomes as a page blob: its size and the fixed-VHD footer page, if any. */
export interface ImportPlan {
  virtualSize: number;
  blobSize: number;
  footer: Uint8Array | null;
}

/**
 * The blob an image becomes: a VHD (or, with `azure`, any image) becomes virtual size + 512 with the Azure
 * fixed footer in its last page; a raw image without `azure` keeps its exact size and no footer.
 */
export function planImport(image: DiskImage, azure: AzureSizeMode | undefined): ImportPlan {
  const size = azure === undefined ? image.virtualSize : azureFixedSize(image.virtualSize, azure);
  if (image.footer !== undefined) {
    const footer = toAzureFixedFooter(image.footer, size === image.virtualSize ? {} : { virtualSize: size });
    return { virtualSize: size, blobSize: size + FOOTER_SIZE, footer };
  }
  if (azure === undefined) return { virtualSize: size, blobSize: size, footer: null };
  return { virtualSize: size, blobSize: size + FOOTER_SIZE, footer: encodeFooter({ diskType: 'fixed', virtualSize: size }) };
}

function checkOptions(options: ImportOptions): { concurrency: number; interval: number } {
  if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describeValue(options)}`);
  const { azure, concurrency = DEFAULT_IMPORT_CONCURRENCY, checkpointInterval = DEFAULT_CHECKPOINT_INTERVAL } = options;
  if (azure !== undefined && azure !== 'round-up' && azure !== 'refuse') {
    throw new RangeError(`azure must be 'round-up', 'refuse' or undefined, got ${String(azure)}`);
  }
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > MAX_IMPORT_CONCURRENCY) {
    throw new RangeError(`concurrency must be an integer from 1 to ${MAX_IMPORT_CONCURRENCY}, got ${String(concurrency)}`);
  }
  if (!Number.isSafeInteger(checkpointInterval) || checkpointInterval < 0) {
    throw new RangeError(`checkpointInterval must be a non-negative integer, got ${String(checkpointInterval)}`);
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new TypeError(`onProgress must be a function, got ${describeValue(options.onProgress)}`);
  }
  return { concurrency, interval: checkpointInterval };
}

async function existingBlob(blobs: PageBlobService, ref: BlobRef): Promise<BlobInfo | null> {
  try {
    return await blobs.getBlob(ref);
  } catch (e) {
    if (e instanceof StoreError && e.code === 'BlobNotFound') return null;
    throw e;
  }
}

/** Create the target blob carrying a fresh checkpoint, or find where a resumed import stands. */
async function prepareTarget(blobs: PageBlobService, ref: BlobRef, identity: ImportIdentity, options: ImportOptions):
  Promise<{ done: number; metadata: Metadata }> {
  if (options.resume === true) {
    const info = await existingBlob(blobs, ref);
    if (info !== null) {
      const done = resumeOffset(info.metadata, identity, blobName(ref));
      if (info.size !== identity.blobSize) {
        throw new PipelineError('ImportSourceChanged',
          `blob ${blobName(ref)} is ${info.size} bytes, the import it resumes makes ${identity.blobSize}`);
      }
      return { done, metadata: withoutCheckpoint(info.metadata) };
    }
  }
  const metadata = checkpointMetadata(identity, 0);
  await blobs.createBlob(ref, identity.blobSize, { metadata, overwrite: options.overwrite === true });
  return { done: 0, metadata: {} };
}

/**
 * Import the image at `imagePath` into the page blob `ref` (its container must exist). Resolves when the
 * footer is written and the checkpoint removed; rejects with `PipelineError` `OperationAborted` when
 * `signal` fires (the checkpoint is kept: run again with `resume: true`).
 */
export async function importImage(blobs: PageBlobService, imagePath: string, ref: BlobRef, options: ImportOptions = {}):
  Promise<ImportResult> {
  if (typeof imagePath !== 'string') throw new TypeError(`imagePath must be a string, got ${describeValue(imagePath)}`);
  const { concurrency, interval } = checkOptions(options);
  const { signal } = options;
  throwIfAborted(signal, 'the import');
  const mode: ImportMode = options.baseImage === true ? 'base-image' : 'archive';
  const writeMode: WriteMode = mode === 'base-image' ? 'base-image' : 'account';
  const image = await openImage(imagePath, { format: options.imageFormat ?? 'auto' });
  try {
    const plan = planImport(image, options.azure);
    const identity = await sourceIdentity(image, {
      mode, virtualSize: plan.virtualSize, blobSize: plan.blobSize, footer: plan.footer !== null,
    });
    const { done: resumeFrom, metadata: baseMetadata } = await prepareTarget(blobs, ref, identity, options);
    const tracker = new ProgressTracker(plan.virtualSize, options.onProgress);
    tracker.bytesSkipped = resumeFrom;
    tracker.emit();

    let cursor = resumeFrom; // virtual bytes covered (handed to the fill, or skipped)
    let saved = resumeFrom; // the checkpoint offset last saved
    // Extents above the checkpoint, counted as they are handed over; the blob layer encrypts them.
    // The image reads into a few reused buffers; each goes back once the fill has encrypted (or written) it.
    async function* pending(): AsyncGenerator<FillPagesExtent> {
      for await (const extent of image.extents({ chunkSize: MAX_WRITE_BYTES, reuseBuffers: true })) {
        let { offset, data } = extent;
        const { release } = extent;
        if (offset + data.length <= resumeFrom) {
          release?.();
          continue;
        }
        if (offset < resumeFrom) {
          data = data.subarray(resumeFrom - offset);
          offset = resumeFrom;
        }
        tracker.bytesSkipped += offset - cursor;
        cursor = offset + data.length;
        tracker.bytesDone += data.length;
        tracker.emit();
        yield release === undefined ? { offset, data } : { offset, data, release };
      }
      tracker.bytesSkipped += plan.virtualSize - cursor;
      cursor = plan.virtualSize;
    }
    // The checkpoint follows the fill's durable batches: everything below `lastOffset` survives a crash.
    const saveCheckpoint = async (offset: number): Promise<void> => {
      if (offset <= saved) return;
      await blobs.store.setMetadata(ref, checkpointMetadata(identity, offset, baseMetadata));
      saved = offset;
    };
    try {
      await blobs.fillPages(ref, pending(), {
        mode: writeMode, batchBytes: Math.max(interval, PAGE_SIZE), concurrency, signal,
        onBatch: ({ lastOffset }) => saveCheckpoint(lastOffset),
      });
    } catch (error) {
      throwIfAborted(signal, 'the import');
      throw error;
    }
    throwIfAborted(signal, 'the import');

    if (plan.footer !== null) await blobs.putPages(ref, plan.virtualSize, plan.footer, { mode: writeMode });
    await blobs.store.setMetadata(ref, baseMetadata);
    tracker.emit(true);
    const elapsedMs = tracker.elapsedMs;
    const bytesWritten = tracker.bytesDone + (plan.footer?.length ?? 0);
    return {
      blob: blobName(ref),
      imageFormat: image.format,
      mode,
      virtualSize: plan.virtualSize,
      blobSize: plan.blobSize,
      footer: plan.footer !== null,
      bytesWritten,
      bytesSkipped: tracker.bytesSkipped,
      bytesResumed: resumeFrom,
      elapsedMs,
      throughput: elapsedMs > 0 ? bytesWritten / (elapsedMs / 1000) : 0,
    };
  } finally {
    await image.close();
  }
}
