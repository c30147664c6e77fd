/**
 * LocalPageStore bulk fill (see PageStore.fillPages; fill.ts drives the stream). Extents whose pages are all
 * unallocated, in a blob without snapshots, take the batch path; anything else is an ordinary writePages
 * (local-write.ts):
 *
 *   batch:  mark dirty (once) ─ pwrite .dat × extents (no sync, a few in flight) ─ fdatasync ─ COMMIT runs
 *
 * Batch writes go through a second, O_DIRECT handle of the data file when the file system has one and the
 * extent is 4096-aligned in the file: the bytes go from the extent's buffer (or, when its memory is not
 * aligned, from an aligned staging copy) to the device, with no page-cache copy to make and write back later;
 * the closing fdatasync then only flushes the device cache and the file's block map. Anything else is an
 * ordinary buffered write, whose write-back starts early (FILL_WRITEBACK_BYTES). Each extent is released to
 * its producer (FillExtent.release) as soon as its bytes are written or copied.
 *
 * A batch holds the blob's lock shared: every mutation (they take it exclusively) waits for the commit, reads
 * go on and see the batch's pages unallocated until then, so they never read its bytes early. A second fill
 * of the same blob waits for the first (the fill key). A crash before the commit leaves bytes only in
 * unallocated pages of a dirty blob, which recovery punches: the batch vanishes whole.
 */
import { IO_ALIGNMENT, isIoAligned } from '../xts/index.js';
import { blobKey, describeRef } from './common.js';
import { StoreError } from './errors.js';
import type { FileHandleIo } from './file-io.js';
import { FillSource, runFill } from './fill.js';
import type { LocalCore } from './local-core.js';
import { type BlobRow, LOC_BLOB_FILE } from './local-meta.js';
import { writeIn } from './local-write.js';
import { pageWindow, type Run } from './ranges.js';
import type { DataFiles } from './local-files.js';
import { type BlobRef, type FillExtent, type FillOptions, type FillResult, PAGE_SIZE } from './types.js';
import * as v from './validate.js';

/** Data-file writes of a fill batch in flight at once: reading and encrypting the source overlaps the disk. */
export const FILL_WRITES_IN_FLIGHT = 4;
/** A fill batch starts writing back its pages every this many bytes (an fdatasync not waited for). */
export const FILL_WRITEBACK_BYTES = 16 * 1024 * 1024;

export async function fillPages(core: LocalCore, ref: BlobRef, extents: AsyncIterable<FillExtent>, options?: FillOptions):
  Promise<FillResult> {
  v.checkBlobRef(ref);
  const opts = v.checkFillOptions(options);
  const source = new FillSource(v.checkExtentStream(extents), opts.signal);
  core.usable();
  let blobId: number | undefined;
  const sameBlob = (blob: BlobRow): BlobRow => {
    blobId ??= blob.id;
    if (blob.id !== blobId) throw new StoreError('BlobNotFound', `blob ${describeRef(ref)} was replaced during the fill`);
    return blob;
  };
  return core.track(core.locks.with(`fill:${blobKey(ref)}`, true, () => runFill(source, opts, {
    batch: (src, batchBytes) => fillBatch(core, ref, src, batchBytes, sameBlob),
    single: (e) => core.mutate(ref, (blob) => writeIn(core, ref, sameBlob(blob), e.offset, e.data, e.tag, {})),
  })));
}

async function fillBatch(core: LocalCore, ref: BlobRef, source: FillSource, batchBytes: number,
  sameBlob: (blob: BlobRow) => BlobRow): Promise<{ bytes: number; end: number; single: boolean }> {
  core.usable();
  return core.track(core.locks.with(blobKey(ref), false, async () => {
    core.usable();
    const blob = sameBlob(core.blobRow(ref));
    if (core.meta.snapshotsOf(blob.id).length > 0) return { bytes: 0, end: 0, single: true };
    const runs: Run<number>[] = [];
    const writes = new Set<Promise<void>>();
    let failed: { error: unknown } | undefined;
    let dat: FileHandleIo | undefined;
    let direct: FileHandleIo | null = null;
    let bytes = 0;
    let single = false;
    let buffered = 0;
    let kicked = 0;
    let writeback: Promise<void> | undefined;
    while (bytes < batchBytes && failed === undefined) {
      const extent = await source.next();
      if (extent === undefined) break;
      const { offset, data, tag } = extent;
      if (offset + data.length > blob.size) {
        source.fail(new StoreError('InvalidPageRange',
          `bytes ${offset}..${offset + data.length - 1} pass the end of ${describeRef(ref)} (${blob.size} bytes)`));
        extent.release?.();
        break;
      }
      const { start, end } = pageWindow(offset, data.length);
      if (core.meta.runsIn(blob.id, start, end, 1).length > 0) {
        source.unread(extent);
        single = true;
        break;
      }
      if (dat === undefined) {
        await core.fatal(() => core.markDirty(blob));
        const path = core.files.dataPath(blob.file);
        dat = await core.fatal(() => core.files.handle(path));
        direct = await core.files.directHandle(path);
      }
      const last = runs[runs.length - 1];
      if (last !== undefined && last.end === start && last.value === tag) last.end = end;
      else runs.push({ start, end, value: tag });
      const useDirect = direct !== null && core.files.directEnabled && offset % IO_ALIGNMENT === 0
        && data.length % IO_ALIGNMENT === 0;
      if (!useDirect) buffered += data.length;
      const write: Promise<void> = putExtent(core.files, dat, useDirect ? direct : null, extent).then(
        () => { writes.delete(write); },
        (error: unknown) => { writes.delete(write); failed ??= { error }; });
      writes.add(write);
      bytes += data.length;
      while (writes.size >= FILL_WRITES_IN_FLIGHT) await Promise.race(writes);
      // Start writing back what buffered writes left in the page cache, so that the batch's closing fdatasync
      // finds little left and the disk works while we keep writing. Extra syncs change nothing: the pages stay
      // unallocated.
      if (buffered - kicked >= FILL_WRITEBACK_BYTES && writeback === undefined) {
        kicked = buffered;
        const file = dat;
        writeback = file.datasync().then(() => { writeback = undefined; },
          (error: unknown) => { writeback = undefined; failed ??= { error }; });
      }
    }
    await Promise.all(writes);
    await writeback;
    if (failed !== undefined) throw core.ioFailure((failed as { error: unknown }).error);
    const lastRun = runs[runs.length - 1];
    if (dat === undefined || lastRun === undefined) return { bytes: 0, end: 0, single };
    const file = dat;
    await core.fatal(() => file.datasync());
    await core.fatal(async () => core.tx(() => {
      const version = core.bump(blob, {});
      for (const r of runs) core.meta.overlay(blob.id, r.start, r.end, { tag: r.value, version, loc: LOC_BLOB_FILE });
    }));
    return { bytes, end: lastRun.end * PAGE_SIZE, single };
  }));
}

/**
 * Write one extent of a batch at its offset: through `direct` when given (from the extent's own buffer when it
 * is aligned in memory, else from a staging copy), or buffered. A direct write the kernel refuses (EINVAL)
 * turns direct I/O off for the store and is written buffered instead. Releases the extent in every case.
 */
async function putExtent(files: DataFiles, dat: FileHandleIo, direct: FileHandleIo | null, extent: FillExtent): Promise<void> {
  const { offset, data } = extent;
  try {
    if (direct === null) {
      await dat.write(data, 0, data.length, offset);
      return;
    }
    let source: Uint8Array = data;
    let staged: Buffer | undefined;
    if (!isIoAligned(data)) {
      staged = files.staging.take(data.length);
      staged.set(data);
      source = staged;
      extent.release?.();
    }
    try {
      await direct.write(source, 0, source.length, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
      files.directFailed();
      await dat.write(source, 0, source.length, offset);
    } finally {
      if (staged !== undefined) files.staging.give(staged);
    }
  } finally {
    extent.release?.();
  }
}
