/**
 * The sector maps behind every image: where each virtual sector's bytes live.
 *
 * A *flat* layer (fixed VHD, raw file) stores sector n at byte n * 512. A *sparse* layer (dynamic or
 * differencing VHD) looks sector n up in its BAT and the block's sector bitmap, MSB first (bit 7 of byte 0 is
 * the block's first sector). A set bit means "this file holds the sector"; a clear bit, or an unallocated
 * block, means zeros on a dynamic disk and "ask the parent" on a differencing disk:
 *
 *     child (differencing)  [ B0: 1100..  ][ B1: unalloc ][ B2: 0011.. ]
 *            | clear bits and unallocated blocks fall through
 *     parent (dynamic)      [ B0: 1111..  ][ B1: 1010..  ][ B2: unalloc ]   -> clear bits read zeros
 *
 * Layers may use different block sizes: mapping works on sector ranges, not block indices.
 */
import type { ImageFile } from './file.js';
import { BAT_UNUSED, bitmapBytes, SECTOR_SIZE } from './layout.js';

/** A run of virtual sectors stored contiguously in `file` from `fileOffset`, or zeros when `file` is null. */
export interface SectorRun {
  sector: number;
  count: number;
  file: ImageFile | null;
  fileOffset: number;
}

/** A virtual byte range [start, end) that may hold data. */
export type ByteRange = [start: number, end: number];

export interface Layer {
  readonly virtualSize: number;
  /** Append the runs covering sectors [first, first + count) to `out`, in order, merging neighbours. */
  mapSectors(first: number, count: number, out: SectorRun[]): Promise<void>;
  /** Ranges that may hold data, ascending and disjoint, clipped to `limit`; null means "everything". */
  candidateRanges(limit: number): ByteRange[] | null;
}

export function pushRun(out: SectorRun[], run: SectorRun): void {
  if (run.count === 0) return;
  const last = out[out.length - 1];
  if (last !== undefined && last.file === run.file && last.sector + last.count === run.sector
    && (run.file === null || last.fileOffset + last.count * SECTOR_SIZE === run.fileOffset)) {
    last.count += run.count;
    return;
  }
  out.push({ ...run });
}

/** Fixed VHD data or a raw file: sector n at byte n * 512. */
export class FlatLayer implements Layer {
  constructor(readonly file: ImageFile, readonly virtualSize: number) {}

  mapSectors(first: number, count: number, out: SectorRun[]): Promise<void> {
    const sectors = this.virtualSize / SECTOR_SIZE;
    const inside = Math.max(0, Math.min(count, sectors - first));
    pushRun(out, { sector: first, count: inside, file: this.file, fileOffset: first * SECTOR_SIZE });
    pushRun(out, { sector: first + inside, count: count - inside, file: null, fileOffset: 0 });
    return Promise.resolve();
  }

  candidateRanges(): ByteRange[] | null {
    return null;
  }
}

const BITMAP_CACHE_ENTRIES = 32;

/** Dynamic or differencing VHD: BAT + per-block sector bitmaps, falling through to `parent`. */
export class SparseLayer implements Layer {
  readonly #bitmapBytes: number;
  readonly #sectorsPerBlock: number;
  readonly #bitmaps = new Map<number, Uint8Array>();

  constructor(
    readonly file: ImageFile,
    readonly virtualSize: number,
    readonly blockSize: number,
    readonly bat: Uint32Array,
    readonly parent: Layer | null,
  ) {
    this.#bitmapBytes = bitmapBytes(blockSize);
    this.#sectorsPerBlock = blockSize / SECTOR_SIZE;
  }

  async mapSectors(first: number, count: number, out: SectorRun[]): Promise<void> {
    const totalSectors = this.virtualSize / SECTOR_SIZE;
    let sector = first;
    const end = first + count;
    while (sector < end) {
      if (sector >= totalSectors) {
        pushRun(out, { sector, count: end - sector, file: null, fileOffset: 0 });
        return;
      }
      const block = Math.floor(sector / this.#sectorsPerBlock);
      const blockFirst = block * this.#sectorsPerBlock;
      const stop = Math.min(end, blockFirst + this.#sectorsPerBlock, totalSectors);
      const entry = this.bat[block] ?? BAT_UNUSED;
      if (entry === BAT_UNUSED) {
        await this.#fallThrough(sector, stop - sector, out);
      } else {
        const bitmap = await this.#bitmap(block, entry);
        const dataStart = entry * SECTOR_SIZE + this.#bitmapBytes;
        let s = sector;
        while (s < stop) {
          const set = bitAt(bitmap, s - blockFirst);
          let t = s + 1;
          while (t < stop && bitAt(bitmap, t - blockFirst) === set) t++;
          if (set) {
            pushRun(out, { sector: s, count: t - s, file: this.file, fileOffset: dataStart + (s - blockFirst) * SECTOR_SIZE });
          } else {
            await this.#fallThrough(s, t - s, out);
          }
          s = t;
        }
      }
      sector = stop;
    }
  }

  async #fallThrough(first: number, count: number, out: SectorRun[]): Promise<void> {
    if (this.parent === null) pushRun(out, { sector: first, count, file: null, fileOffset: 0 });
    else await this.parent.mapSectors(first, count, out);
  }

  async #bitmap(block: number, entry: number): Promise<Uint8Array> {
    const cached = this.#bitmaps.get(block);
    if (cached !== undefined) return cached;
    const bitmap = await this.file.readAt(entry * SECTOR_SIZE, this.#bitmapBytes, `bitmap of block ${block}`);
    if (this.#bitmaps.size >= BITMAP_CACHE_ENTRIES) {
      const oldest = this.#bitmaps.keys().next().value;
      if (oldest !== undefined) this.#bitmaps.delete(oldest);
    }
    this.#bitmaps.set(block, bitmap);
    return bitmap;
  }

  candidateRanges(limit: number): ByteRange[] | null {
    const own: ByteRange[] = [];
    const end = Math.min(limit, this.virtualSize);
    for (let i = 0; i < this.bat.length; i++) {
      if (this.bat[i] === BAT_UNUSED) continue;
      const start = i * this.blockSize;
      if (start >= end) break;
      const stop = Math.min(start + this.blockSize, end);
      const last = own[own.length - 1];
      if (last !== undefined && last[1] === start) last[1] = stop;
      else own.push([start, stop]);
    }
    if (this.parent === null) return own;
    const inherited = this.parent.candidateRanges(end);
    if (inherited === null) return null;
    return unionRanges(own, inherited);
  }
}

/** MSB first: bit 7 of byte 0 is sector 0. */
function bitAt(bitmap: Uint8Array, index: number): boolean {
  const byte = bitmap[index >>> 3] ?? 0; // index < sectors per block <= 2^19: a safe shift
  return (byte & (0x80 >>> (index & 7))) !== 0;
}

/** Union of two ascending disjoint range lists. */
export function unionRanges(a: ByteRange[], b: ByteRange[]): ByteRange[] {
  const out: ByteRange[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const ra = a[i];
    const rb = b[j];
    let next: ByteRange;
    if (rb === undefined || (ra !== undefined && ra[0] <= rb[0])) {
      next = ra as ByteRange;
      i++;
    } else {
      next = rb;
      j++;
    }
    const last = out[out.length - 1];
    if (last !== undefined && next[0] <= last[1]) last[1] = Math.max(last[1], next[1]);
    else out.push([next[0], next[1]]);
  }
  return out;
}
