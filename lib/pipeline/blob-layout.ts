/**
 * What disk a page blob holds. Azure keeps an uploaded VHD as a fixed VHD (reference/vhd.md, "Azure rules"):
 * the disk in [0, size - 512) and a fixed-disk footer in the last page. A blob whose last page is such a
 * footer (valid checksum, disk type fixed, current size = blob size - 512) is read that way; any other blob is
 * a bare disk of its whole size. The allocated ranges of the disk are walked in bounded memory, in chunks that
 * never cross a {@link EXPORT_CHUNK_SIZE} boundary.
 */
import type { PageBlobService } from '../blob/index.js';
import { blobName } from '../blob/index.js';
import { MAX_WRITE_BYTES, type BlobOrSnapshotRef } from '../store/index.js';
import { FOOTER_SIZE, parseFooter, VhdFormatError, type VhdFooter } from '../vhd/index.js';
import { PipelineError } from './errors.js';

/** Largest read of an export: 4 MiB, one Put Page's worth. */
export const EXPORT_CHUNK_SIZE = MAX_WRITE_BYTES;

/** `auto`: a fixed-VHD blob when the last page is its footer; `fixed-vhd`: insist; `disk`: the whole blob. */
export type BlobLayout = 'auto' | 'fixed-vhd' | 'disk';

export interface BlobDisk {
  blobSize: number;
  virtualSize: number;
  /** The footer kept in the blob's last page, or null for a bare disk. */
  footer: VhdFooter | null;
}

export async function blobDisk(blobs: PageBlobService, ref: BlobOrSnapshotRef, layout: BlobLayout = 'auto'): Promise<BlobDisk> {
  if (layout !== 'auto' && layout !== 'fixed-vhd' && layout !== 'disk') {
    throw new RangeError(`blobLayout must be 'auto', 'fixed-vhd' or 'disk', got ${String(layout)}`);
  }
  const { size } = await blobs.getBlob(ref);
  if (layout !== 'disk' && size > FOOTER_SIZE) {
    const last = await blobs.readRange(ref, size - FOOTER_SIZE, FOOTER_SIZE);
    let footer: VhdFooter | null = null;
    let why = '';
    try {
      footer = parseFooter(last);
      if (footer.diskType !== 'fixed') why = `its footer is of a ${footer.diskType} disk`;
      else if (footer.currentSize !== size - FOOTER_SIZE) why = `its footer says ${footer.currentSize} bytes, the blob holds ${size - FOOTER_SIZE}`;
    } catch (e) {
      if (!(e instanceof VhdFormatError)) throw e;
      why = `its last page is no VHD footer (${e.code} at ${e.field})`;
    }
    if (why === '' && footer !== null) return { blobSize: size, virtualSize: size - FOOTER_SIZE, footer };
    if (layout === 'fixed-vhd') throw new PipelineError('NotAFixedVhdBlob', `blob ${blobName(ref)} is not a fixed-VHD page blob: ${why}`);
  } else if (layout === 'fixed-vhd') {
    throw new PipelineError('NotAFixedVhdBlob', `blob ${blobName(ref)} is ${size} bytes, too small to hold a disk and a VHD footer`);
  }
  return { blobSize: size, virtualSize: size, footer: null };
}

/**
 * The allocated parts of [0, limit) of a blob, ascending, each at most {@link EXPORT_CHUNK_SIZE} bytes and
 * inside one chunk-aligned window. Adjacent ranges of different encryption state are joined.
 */
export async function* allocatedChunks(blobs: PageBlobService, ref: BlobOrSnapshotRef, limit: number):
  AsyncGenerator<{ offset: number; length: number }> {
  if (limit <= 0) return;
  let start = -1;
  let end = -1; // exclusive
  const split = function* (from: number, to: number): Generator<{ offset: number; length: number }> {
    for (let o = from; o < to;) {
      const next = Math.min(to, (Math.floor(o / EXPORT_CHUNK_SIZE) + 1) * EXPORT_CHUNK_SIZE);
      yield { offset: o, length: next - o };
      o = next;
    }
  };
  for await (const r of blobs.store.iterateRanges(ref, { start: 0, end: limit - 1 })) {
    const s = Math.max(0, r.start);
    const e = Math.min(limit, r.end + 1);
    if (e <= s) continue;
    if (s === end) {
      end = e;
      continue;
    }
    if (start >= 0) yield* split(start, end);
    start = s;
    end = e;
  }
  if (start >= 0) yield* split(start, end);
}
