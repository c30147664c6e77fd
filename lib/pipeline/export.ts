/**
 * Export: a page blob or snapshot to a fixed VHD, a dynamic VHD or a raw file.
 *
 *   blob ranges (store.iterateRanges, allocated only) ──readRange (decrypts)──▶ createImageWriter ──▶ temp file
 *                                                                                        ──fsync, rename──▶ out
 *
 * - The disk is what blob-layout.ts finds: with a fixed footer in the last page, [0, size - 512) and that
 *   footer; else the whole blob. Unallocated ranges are never read; they become file holes (fixed, raw) or
 *   unallocated blocks (dynamic), so sparseness is kept.
 * - A fixed-VHD export of a fixed-VHD blob ends with the blob's own footer bytes, so exporting the import of a
 *   fixed VHD gives back the original file byte for byte. A dynamic export keeps the footer's unique id and
 *   timestamp. A blob without footer exported as a VHD gets a fresh footer.
 * - The output appears at `outPath` only when complete (written to a temporary file beside it, flushed, then
 *   renamed); on failure or abort the temporary file is removed and `outPath` is untouched.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import type { PageBlobService } from '../blob/index.js';
import { blobName } from '../blob/index.js';
import type { BlobOrSnapshotRef } from '../store/index.js';
import { createImageWriter, type ImageWriter, type ImageWriterOptions } from '../vhd/index.js';
import { describeValue } from '../errors.js';
import { allocatedChunks, blobDisk, type BlobDisk, type BlobLayout } from './blob-layout.js';
import { throwIfAborted } from './errors.js';
import { ProgressTracker, type ProgressListener } from './progress.js';

export type ExportFormat = 'vhd' | 'vhd-dynamic' | 'raw';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['vhd', 'vhd-dynamic', 'raw'];
export const DEFAULT_EXPORT_READ_AHEAD = 4;
const VHD_EPOCH_MS = Date.UTC(2000, 0, 1);

export interface ExportOptions {
  /** `vhd` (fixed, the default), `vhd-dynamic` or `raw`. */
  format?: ExportFormat;
  /** How to read the blob (default `auto`). */
  blobLayout?: BlobLayout;
  /** Dynamic VHD block size (default 2 MiB). */
  blockSize?: number;
  /** Reads in flight ahead of the writer (default 4). */
  readAhead?: number;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

export interface ExportResult {
  blob: string;
  path: string;
  format: ExportFormat;
  virtualSize: number;
  /** Whether the blob held a fixed-VHD footer (and the output's VHD footer came from it). */
  footerFromBlob: boolean;
  /** Data bytes written (allocated bytes of the disk). */
  bytesWritten: number;
  /** Virtual bytes never read: unallocated ranges. */
  bytesSkipped: number;
  /** Size of the output file. */
  fileSize: number;
  elapsedMs: number;
  throughput: number;
}

function writerOptions(format: ExportFormat, disk: BlobDisk, blockSize: number | undefined): ImageWriterOptions {
  const virtualSize = disk.virtualSize;
  // A fixed VHD with the blob's footer is written raw; the footer bytes are appended as stored.
  if (format === 'raw' || (format === 'vhd' && disk.footer !== null)) return { format: 'raw', virtualSize };
  const kept = disk.footer === null ? {} : {
    uniqueId: disk.footer.uniqueId,
    timestamp: new Date(VHD_EPOCH_MS + disk.footer.timestamp * 1000),
  };
  if (format === 'vhd') return { format: 'fixed', virtualSize, ...kept };
  return { format: 'dynamic', virtualSize, ...kept, ...(blockSize === undefined ? {} : { blockSize }) };
}

/**
 * Export the blob or snapshot `ref` to `outPath` (replaced if it exists). Rejects with `PipelineError`
 * `OperationAborted` when `signal` fires, leaving no file behind.
 */
export async function exportBlob(blobs: PageBlobService, ref: BlobOrSnapshotRef, outPath: string, options: ExportOptions = {}):
  Promise<ExportResult> {
  if (typeof outPath !== 'string') throw new TypeError(`outPath must be a string, got ${describeValue(outPath)}`);
  if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describeValue(options)}`);
  const format = options.format ?? 'vhd';
  if (!EXPORT_FORMATS.includes(format)) throw new RangeError(`format must be one of ${EXPORT_FORMATS.join(', ')}, got ${String(format)}`);
  const readAhead = options.readAhead ?? DEFAULT_EXPORT_READ_AHEAD;
  if (!Number.isSafeInteger(readAhead) || readAhead < 1 || readAhead > 64) {
    throw new RangeError(`readAhead must be an integer from 1 to 64, got ${String(readAhead)}`);
  }
  const { signal } = options;
  throwIfAborted(signal, 'the export');
  const disk = await blobDisk(blobs, ref, options.blobLayout ?? 'auto');
  const tracker = new ProgressTracker(disk.virtualSize, options.onProgress);
  const temp = join(dirname(outPath), `.${basename(outPath)}.${randomBytes(6).toString('hex')}.vdcrypt-tmp`);
  let writer: ImageWriter | null = null;
  const reads: Array<Promise<{ offset: number; data: Uint8Array }>> = [];
  try {
    writer = await createImageWriter(temp, writerOptions(format, disk, options.blockSize));
    let cursor = 0;
    const drainOne = async (w: ImageWriter): Promise<void> => {
      const { offset, data } = await (reads.shift() as Promise<{ offset: number; data: Uint8Array }>);
      tracker.bytesSkipped += offset - cursor;
      await w.write(offset, data);
      cursor = offset + data.length;
      tracker.bytesDone += data.length;
      tracker.emit();
    };
    for await (const chunk of allocatedChunks(blobs, ref, disk.virtualSize)) {
      throwIfAborted(signal, 'the export');
      const read = blobs.readRange(ref, chunk.offset, chunk.length).then((data) => ({ offset: chunk.offset, data }));
      read.catch(() => undefined); // observed when drained; never an unhandled rejection meanwhile
      reads.push(read);
      if (reads.length >= readAhead) await drainOne(writer);
    }
    while (reads.length > 0) {
      throwIfAborted(signal, 'the export');
      await drainOne(writer);
    }
    tracker.bytesSkipped += disk.virtualSize - cursor;
    await writer.finish();
    const handle = await open(temp, 'r+');
    let fileSize: number;
    try {
      if (format === 'vhd' && disk.footer !== null) await handle.write(disk.footer.raw, 0, disk.footer.raw.length, disk.virtualSize);
      await handle.datasync();
      fileSize = (await handle.stat()).size;
    } finally {
      await handle.close();
    }
    throwIfAborted(signal, 'the export');
    await rename(temp, outPath);
    tracker.emit(true);
    const elapsedMs = tracker.elapsedMs;
    return {
      blob: blobName(ref),
      path: outPath,
      format,
      virtualSize: disk.virtualSize,
      footerFromBlob: disk.footer !== null,
      bytesWritten: tracker.bytesDone,
      bytesSkipped: tracker.bytesSkipped,
      fileSize,
      elapsedMs,
      throughput: elapsedMs > 0 ? tracker.bytesDone / (elapsedMs / 1000) : 0,
    };
  } catch (error) {
    await Promise.allSettled(reads);
    await writer?.abort().catch(() => undefined);
    await rm(temp, { force: true });
    throw error;
  }
}
