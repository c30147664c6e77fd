/**
 * The uniform image interface: every format (fixed, dynamic, differencing VHD, raw) as a virtual size, a
 * stream of *allocated* extents and random-access reads.
 *
 * `extents()` visits only the ranges some layer of the image has allocated (whole disk for fixed and raw),
 * ascending, in chunks of at most `chunkSize` bytes that never cross a chunk boundary, 512-aligned. With
 * `skipZeroRuns` (the default) sector runs of zeros at least `minZeroRun` long are dropped too, so fixed and
 * raw images are imported sparsely. `stats` counts what the last `extents()` pass read, yielded and skipped.
 */
import { describeValue } from '../errors.js';
import { AlignedBufferPool } from '../xts/index.js';
import type { DynamicHeader } from './dynamic.js';
import type { ImageFile } from './file.js';
import type { VhdFooter } from './footer.js';
import type { Layer, SectorRun } from './layers.js';
import { SECTOR_SIZE } from './layout.js';

export type ImageFormat = 'fixed' | 'dynamic' | 'differencing' | 'raw';

/** Largest extent: 4 MiB, the largest Azure Put Page. */
export const MAX_CHUNK_SIZE = 4 * 1024 * 1024;
export const DEFAULT_CHUNK_SIZE = MAX_CHUNK_SIZE;
/** Zero runs shorter than this stay inside an extent rather than splitting it. */
export const DEFAULT_MIN_ZERO_RUN = 64 * 1024;
/** Read buffers kept for reuse by one `extents({ reuseBuffers: true })` pass. */
const KEPT_READ_BUFFERS = 8;
/** Largest single `read()`. */
export const MAX_READ_LENGTH = 64 * 1024 * 1024;

export interface Extent {
  /** Virtual byte offset, a multiple of 512. */
  offset: number;
  /** Bytes, a multiple of 512, at most the chunk size. */
  length: number;
  /** The bytes: a fresh buffer the caller may keep, unless `reuseBuffers` was asked for. */
  data: Uint8Array;
  /**
   * With `reuseBuffers`: call once `data` is no longer needed (at most once; calling it is optional), so that
   * its buffer can carry a later extent.
   */
  release?: () => void;
}

export interface ExtentOptions {
  /** Drop all-zero sector runs (default true). */
  skipZeroRuns?: boolean;
  /** Largest extent, a multiple of 512 up to 4 MiB (default 4 MiB). */
  chunkSize?: number;
  /** Shortest zero run dropped, a multiple of 512 (default 64 KiB). */
  minZeroRun?: number;
  /**
   * Read into a few reused, page-aligned buffers instead of a fresh one per extent (default false): each extent
   * then has a `release`, and its buffer is read into again once every extent cut from it was released. An
   * extent never released keeps its buffer (it is then collected), so forgetting costs memory, not data.
   */
  reuseBuffers?: boolean;
}

export interface ExtentStats {
  /** Bytes read from files. */
  bytesRead: number;
  /** Bytes handed out as extents. */
  bytesYielded: number;
  /** Virtual bytes no layer had allocated. */
  bytesUnallocated: number;
  /** Allocated bytes dropped as zero runs. */
  bytesZeroSkipped: number;
  /** bytesUnallocated + bytesZeroSkipped. */
  bytesSkipped: number;
}

/** One file of a differencing chain, child first. */
export interface ChainMember {
  path: string;
  format: Exclude<ImageFormat, 'raw'>;
  virtualSize: number;
  uniqueId: Uint8Array;
}

export interface DiskImage {
  readonly path: string;
  readonly format: ImageFormat;
  readonly virtualSize: number;
  /** The footer (VHD formats). */
  readonly footer?: VhdFooter;
  /** The dynamic header (dynamic and differencing). */
  readonly header?: DynamicHeader;
  /** The files of a differencing chain, this one first; a single entry otherwise (empty for raw). */
  readonly chain: readonly ChainMember[];
  readonly stats: Readonly<ExtentStats>;
  /** Virtual bytes inside allocated blocks (the whole disk for fixed and raw): an upper bound of the data. */
  readonly allocatedSize: number;
  extents(options?: ExtentOptions): AsyncIterable<Extent>;
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export interface ImageParts {
  path: string;
  format: ImageFormat;
  virtualSize: number;
  footer?: VhdFooter;
  header?: DynamicHeader;
  chain: ChainMember[];
  layer: Layer;
  files: ImageFile[];
}

const ZERO_SECTOR = new Uint8Array(SECTOR_SIZE);
const WORD_BYTES = 4;
const SECTOR_WORDS = SECTOR_SIZE / WORD_BYTES;

export class LayeredImage implements DiskImage {
  readonly path: string;
  readonly format: ImageFormat;
  readonly virtualSize: number;
  readonly footer?: VhdFooter;
  readonly header?: DynamicHeader;
  readonly chain: readonly ChainMember[];
  readonly stats: ExtentStats = emptyStats();
  readonly allocatedSize: number;
  readonly #layer: Layer;
  readonly #files: ImageFile[];

  constructor(parts: ImageParts) {
    this.path = parts.path;
    this.format = parts.format;
    this.virtualSize = parts.virtualSize;
    if (parts.footer !== undefined) this.footer = parts.footer;
    if (parts.header !== undefined) this.header = parts.header;
    this.chain = parts.chain;
    this.#layer = parts.layer;
    this.#files = parts.files;
    const ranges = this.#layer.candidateRanges(this.virtualSize);
    this.allocatedSize = ranges === null ? this.virtualSize : ranges.reduce((sum, [s, e]) => sum + e - s, 0);
  }

  async *extents(options: ExtentOptions = {}): AsyncGenerator<Extent> {
    if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describeValue(options)}`);
    const chunk = sectorMultiple('chunkSize', options.chunkSize ?? DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE);
    const minZeroRun = sectorMultiple('minZeroRun', options.minZeroRun ?? DEFAULT_MIN_ZERO_RUN, Number.MAX_SAFE_INTEGER);
    const skipZeros = options.skipZeroRuns ?? true;
    const reuse = options.reuseBuffers ?? false;
    if (typeof reuse !== 'boolean') throw new TypeError(`reuseBuffers must be a boolean, got ${describeValue(reuse)}`);
    const pool = reuse ? new AlignedBufferPool(chunk, KEPT_READ_BUFFERS) : undefined;
    Object.assign(this.stats, emptyStats());
    const ranges = this.#layer.candidateRanges(this.virtualSize) ?? [[0, this.virtualSize]];
    for (const [start, end] of ranges) {
      for (let w = start; w < end;) {
        const wEnd = Math.min(end, (Math.floor(w / chunk) + 1) * chunk);
        const runs: SectorRun[] = [];
        await this.#layer.mapSectors(w / SECTOR_SIZE, (wEnd - w) / SECTOR_SIZE, runs);
        for (const group of dataGroups(runs)) {
          const data = await this.#readRuns(group, pool);
          const offset = (group[0]?.sector ?? 0) * SECTOR_SIZE;
          const spans: Array<[number, number]> = skipZeros ? nonZeroSpans(data, minZeroRun) : [[0, data.length]];
          // The buffer goes back to the pool once every extent cut from it is released (now, if none is).
          let holders = spans.length;
          const letGo = (): void => {
            if (--holders === 0) pool?.give(data);
          };
          if (holders === 0) pool?.give(data);
          if (skipZeros) this.stats.bytesZeroSkipped += data.length;
          for (const [from, to] of spans) {
            this.stats.bytesYielded += to - from;
            if (skipZeros) this.stats.bytesZeroSkipped -= to - from;
            const extent: Extent = { offset: offset + from, length: to - from, data: from === 0 && to === data.length ? data : data.subarray(from, to) };
            if (pool !== undefined) {
              let released = false;
              extent.release = () => {
                if (released) return;
                released = true;
                letGo();
              };
            }
            yield extent;
          }
        }
        w = wEnd;
      }
    }
    this.stats.bytesUnallocated = this.virtualSize - this.stats.bytesRead;
    this.stats.bytesSkipped = this.stats.bytesUnallocated + this.stats.bytesZeroSkipped;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    for (const [name, value] of [['offset', offset], ['length', length]] as const) {
      if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describeValue(value)}`);
      if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
    }
    if (length > MAX_READ_LENGTH) throw new RangeError(`length must be at most ${MAX_READ_LENGTH}, got ${length}`);
    if (offset + length > this.virtualSize) {
      throw new RangeError(`bytes ${offset}..${offset + length} pass the virtual size ${this.virtualSize}`);
    }
    const out = new Uint8Array(length);
    const first = Math.floor(offset / SECTOR_SIZE);
    const last = Math.ceil((offset + length) / SECTOR_SIZE);
    const step = MAX_CHUNK_SIZE / SECTOR_SIZE;
    for (let s = first; s < last; s += step) {
      const runs: SectorRun[] = [];
      await this.#layer.mapSectors(s, Math.min(step, last - s), runs);
      for (const run of runs) {
        if (run.file === null) continue;
        const runStart = run.sector * SECTOR_SIZE;
        const from = Math.max(runStart, offset);
        const to = Math.min(runStart + run.count * SECTOR_SIZE, offset + length);
        if (from >= to) continue;
        await run.file.readInto(out, from - offset, to - from, run.fileOffset + (from - runStart), 'block data');
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.#files.map((f) => f.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The bytes of consecutive data runs, into a buffer of `pool` or a fresh one (every byte is read over). */
  async #readRuns(group: SectorRun[], pool: AlignedBufferPool | undefined): Promise<Uint8Array> {
    const first = group[0]?.sector ?? 0;
    let sectors = 0;
    for (const run of group) sectors += run.count;
    const data = pool === undefined ? new Uint8Array(sectors * SECTOR_SIZE) : pool.take(sectors * SECTOR_SIZE);
    for (const run of group) {
      if (run.file === null) continue;
      const bytes = run.count * SECTOR_SIZE;
      await run.file.readInto(data, (run.sector - first) * SECTOR_SIZE, bytes, run.fileOffset, 'block data');
      this.stats.bytesRead += bytes;
    }
    return data;
  }
}

function emptyStats(): ExtentStats {
  return { bytesRead: 0, bytesYielded: 0, bytesUnallocated: 0, bytesZeroSkipped: 0, bytesSkipped: 0 };
}

function sectorMultiple(name: string, value: unknown, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describeValue(value)}`);
  if (!Number.isSafeInteger(value) || value <= 0 || value % SECTOR_SIZE !== 0 || value > max) {
    throw new RangeError(`${name} must be a positive multiple of ${SECTOR_SIZE} up to ${max}, got ${value}`);
  }
  return value;
}

/** Split runs into maximal groups of consecutive data runs (zero runs separate groups). */
function dataGroups(runs: SectorRun[]): SectorRun[][] {
  const groups: SectorRun[][] = [];
  let current: SectorRun[] = [];
  for (const run of runs) {
    if (run.file === null) {
      if (current.length > 0) groups.push(current);
      current = [];
    } else {
      current.push(run);
    }
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Byte spans of `data` to keep: sectors that are not zero, joined across zero gaps shorter than `minZeroRun`. */
export function nonZeroSpans(data: Uint8Array, minZeroRun: number): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  // Fast path: a sector whose first or last word is non-zero is data, without a native call.
  const words = data.byteOffset % WORD_BYTES === 0 ? new Uint32Array(data.buffer, data.byteOffset, data.byteLength / WORD_BYTES) : null;
  let spanStart = -1;
  let spanEnd = -1;
  for (let pos = 0; pos < buf.length; pos += SECTOR_SIZE) {
    const w = pos / WORD_BYTES;
    const quick = words !== null && (words[w] !== 0 || words[w + SECTOR_WORDS - 1] !== 0);
    if (!quick && buf.compare(ZERO_SECTOR, 0, SECTOR_SIZE, pos, pos + SECTOR_SIZE) === 0) continue;
    if (spanStart >= 0 && pos - spanEnd < minZeroRun) {
      spanEnd = pos + SECTOR_SIZE;
    } else {
      if (spanStart >= 0) spans.push([spanStart, spanEnd]);
      spanStart = pos;
      spanEnd = pos + SECTOR_SIZE;
    }
  }
  if (spanStart >= 0) spans.push([spanStart, spanEnd]);
  return spans;
}
