/**
 * Streaming image writers: fixed VHD, dynamic VHD and raw (VHD spec, "Fixed Hard Disk Image", "Dynamic Hard
 * Disk Image"). The caller hands over allocated extents in ascending, non-overlapping order; memory stays
 * bounded (one block bitmap plus the BAT, 4 bytes per block) whatever the disk size.
 *
 * - raw: data written in place; holes are left as file holes and the file is truncated to the virtual size.
 * - fixed: the same, then the 512-byte footer at the virtual size (Azure's page-blob layout).
 * - dynamic: footer copy at 0, header at 512, the BAT at 1536 sized exactly for the disk, then only the
 *   blocks that receive data, each a sector bitmap (bits set for the sectors written) and its data, then the
 *   footer. Unwritten sectors of an allocated block are file holes, which read as zeros.
 */
import { open, type FileHandle } from 'node:fs/promises';

import { describeValue } from '../errors.js';
import { encodeFooter, MAX_VIRTUAL_SIZE, type FooterOptions } from './footer.js';
import {
  BAT_ENTRY_SIZE, BAT_UNUSED, bitmapBytes, DEFAULT_BLOCK_SIZE, DYNAMIC_HEADER_SIZE, FOOTER_SIZE, HEADER, HEADER_COOKIE,
  HEADER_VERSION, roundUp, SECTOR_SIZE, setAscii, setU32, setU64, vhdChecksum,
} from './layout.js';
import { MAX_BLOCK_SIZE } from './dynamic.js';

export type WriterFormat = 'fixed' | 'dynamic' | 'raw';

export interface ImageWriterOptions {
  format: WriterFormat;
  /** Virtual size, a positive multiple of 512 (at most 8 TiB; dynamic: under 2 TiB of data). */
  virtualSize: number;
  /** Dynamic only: block size, a power of two from 512 to 256 MiB (default 2 MiB). */
  blockSize?: number;
  /** Footer fields (VHD formats). */
  uniqueId?: Uint8Array;
  timestamp?: Date;
  creatorApplication?: string;
}

export interface ImageWriter {
  readonly format: WriterFormat;
  readonly virtualSize: number;
  /** Bytes of data written so far. */
  readonly bytesWritten: number;
  /** Write `data` at virtual `offset`; offsets ascend, extents do not overlap, both 512-aligned. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Write the metadata and close the file. */
  finish(): Promise<void>;
  /** Close the file without finishing it (the file is left incomplete). */
  abort(): Promise<void>;
}

const HEADER_OFFSET = FOOTER_SIZE;
const TABLE_OFFSET = HEADER_OFFSET + DYNAMIC_HEADER_SIZE;

/** Create (or truncate) `path` and return a writer for it. */
export async function createImageWriter(path: string, options: ImageWriterOptions): Promise<ImageWriter> {
  if (typeof path !== 'string') throw new TypeError(`path must be a string, got ${describeValue(path)}`);
  if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, got ${describeValue(options)}`);
  const { format, virtualSize } = options;
  if (format !== 'fixed' && format !== 'dynamic' && format !== 'raw') throw new RangeError(`format must be fixed, dynamic or raw, got ${String(format)}`);
  if (typeof virtualSize !== 'number') throw new TypeError(`virtualSize must be a number, got ${describeValue(virtualSize)}`);
  if (!Number.isSafeInteger(virtualSize) || virtualSize <= 0 || virtualSize % SECTOR_SIZE !== 0 || virtualSize > MAX_VIRTUAL_SIZE) {
    throw new RangeError(`virtualSize must be a positive multiple of ${SECTOR_SIZE} up to ${MAX_VIRTUAL_SIZE}, got ${virtualSize}`);
  }
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (format === 'dynamic') {
    if (!Number.isSafeInteger(blockSize) || blockSize < SECTOR_SIZE || blockSize > MAX_BLOCK_SIZE || (blockSize & (blockSize - 1)) !== 0) {
      throw new RangeError(`blockSize must be a power of two from ${SECTOR_SIZE} to ${MAX_BLOCK_SIZE}, got ${String(blockSize)}`);
    }
    if (Math.ceil(virtualSize / blockSize) >= BAT_UNUSED) {
      throw new RangeError(`${virtualSize} bytes in ${blockSize}-byte blocks need more BAT entries than a u32 counts`);
    }
  }
  const footerOptions: Omit<FooterOptions, 'diskType'> = {
    virtualSize,
    ...(options.uniqueId === undefined ? {} : { uniqueId: options.uniqueId }),
    ...(options.timestamp === undefined ? {} : { timestamp: options.timestamp }),
    ...(options.creatorApplication === undefined ? {} : { creatorApplication: options.creatorApplication }),
  };
  // Build the footer first so that bad footer options fail before the file is touched.
  const footer = format === 'raw' ? null
    : encodeFooter({ ...footerOptions, diskType: format, ...(format === 'dynamic' ? { headerOffset: HEADER_OFFSET } : {}) });
  const handle = await open(path, 'w');
  return format === 'dynamic'
    ? new DynamicWriter(handle, virtualSize, blockSize, footer ?? new Uint8Array(0))
    : new FlatWriter(handle, format, virtualSize, footer);
}

abstract class BaseWriter implements ImageWriter {
  bytesWritten = 0;
  #nextOffset = 0;
  #state: 'open' | 'finished' | 'aborted' = 'open';

  constructor(protected readonly handle: FileHandle, readonly format: WriterFormat, readonly virtualSize: number) {}

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.#requireOpen();
    if (typeof offset !== 'number') throw new TypeError(`offset must be a number, got ${describeValue(offset)}`);
    if (!(data instanceof Uint8Array)) throw new TypeError(`data must be a Uint8Array, got ${describeValue(data)}`);
    if (!Number.isSafeInteger(offset) || offset % SECTOR_SIZE !== 0 || data.length % SECTOR_SIZE !== 0) {
      throw new RangeError(`offset and data length must be multiples of ${SECTOR_SIZE}, got ${offset} and ${data.length}`);
    }
    if (offset < this.#nextOffset) {
      throw new RangeError(`extents must ascend without overlap: offset ${offset} is below the previous end ${this.#nextOffset}`);
    }
    if (offset + data.length > this.virtualSize) {
      throw new RangeError(`bytes ${offset}..${offset + data.length} pass the virtual size ${this.virtualSize}`);
    }
    if (data.length === 0) return;
    this.#nextOffset = offset + data.length;
    await this.writeData(offset, data);
    this.bytesWritten += data.length;
  }

  async finish(): Promise<void> {
    this.#requireOpen();
    this.#state = 'finished';
    try {
      await this.writeMetadata();
    } finally {
      await this.handle.close();
    }
  }

  async abort(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    await this.handle.close();
  }

  protected async writeAll(bytes: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, position + done);
      done += bytesWritten;
    }
  }

  protected abstract writeData(offset: number, data: Uint8Array): Promise<void>;
  protected abstract writeMetadata(): Promise<void>;

  #requireOpen(): void {
    if (this.#state !== 'open') throw new Error(`the image writer is already ${this.#state}`);
  }
}

class FlatWriter extends BaseWriter {
  constructor(handle: FileHandle, format: 'fixed' | 'raw', virtualSize: number, private readonly footer: Uint8Array | null) {
    super(handle, format, virtualSize);
  }

  protected writeData(offset: number, data: Uint8Array): Promise<void> {
    return this.writeAll(data, offset);
  }

  protected async writeMetadata(): Promise<void> {
    await this.handle.truncate(this.virtualSize);
    if (this.footer !== null) await this.writeAll(this.footer, this.virtualSize);
  }
}

class DynamicWriter extends BaseWriter {
  readonly #blockSize: number;
  readonly #bitmapBytes: number;
  readonly #bat: Uint32Array;
  readonly #tableBytes: number;
  readonly #footer: Uint8Array;
  /** File offset where the next block goes. */
  #end: number;
  #currentBlock = -1;
  #bitmap: Uint8Array;

  constructor(handle: FileHandle, virtualSize: number, blockSize: number, footer: Uint8Array) {
    super(handle, 'dynamic', virtualSize);
    this.#blockSize = blockSize;
    this.#bitmapBytes = bitmapBytes(blockSize);
    const blocks = Math.ceil(virtualSize / blockSize);
    this.#bat = new Uint32Array(blocks).fill(BAT_UNUSED);
    this.#tableBytes = roundUp(blocks * BAT_ENTRY_SIZE, SECTOR_SIZE);
    this.#end = TABLE_OFFSET + this.#tableBytes;
    this.#bitmap = new Uint8Array(this.#bitmapBytes);
    this.#footer = footer;
  }

  protected async writeData(offset: number, data: Uint8Array): Promise<void> {
    let pos = 0;
    while (pos < data.length) {
      const virt = offset + pos;
      const block = Math.floor(virt / this.#blockSize);
      const inBlock = virt - block * this.#blockSize;
      const take = Math.min(data.length - pos, this.#blockSize - inBlock);
      if (block !== this.#currentBlock) await this.#startBlock(block);
      const blockStart = (this.#bat[block] ?? 0) * SECTOR_SIZE;
      await this.writeAll(data.subarray(pos, pos + take), blockStart + this.#bitmapBytes + inBlock);
      const firstSector = inBlock / SECTOR_SIZE;
      for (let s = firstSector; s < firstSector + take / SECTOR_SIZE; s++) {
        const byte = Math.floor(s / 8);
        this.#bitmap[byte] = (this.#bitmap[byte] ?? 0) | (0x80 >>> (s % 8));
      }
      pos += take;
    }
  }

  async #startBlock(block: number): Promise<void> {
    await this.#flushBitmap();
    const sector = this.#end / SECTOR_SIZE;
    if (sector >= BAT_UNUSED) throw new RangeError('a dynamic VHD holds under 2 TiB of blocks; this one would not fit');
    this.#bat[block] = sector;
    this.#currentBlock = block;
    this.#bitmap.fill(0);
    this.#end += this.#bitmapBytes + this.#blockSize;
  }

  async #flushBitmap(): Promise<void> {
    if (this.#currentBlock < 0) return;
    await this.writeAll(this.#bitmap, (this.#bat[this.#currentBlock] ?? 0) * SECTOR_SIZE);
  }

  protected async writeMetadata(): Promise<void> {
    await this.#flushBitmap();
    const header = new Uint8Array(DYNAMIC_HEADER_SIZE);
    setAscii(header, HEADER.cookie, HEADER_COOKIE);
    setU64(header, HEADER.dataOffset, 0xffff_ffff_ffff_ffffn);
    setU64(header, HEADER.tableOffset, BigInt(TABLE_OFFSET));
    setU32(header, HEADER.headerVersion, HEADER_VERSION);
    setU32(header, HEADER.maxTableEntries, this.#bat.length);
    setU32(header, HEADER.blockSize, this.#blockSize);
    setU32(header, HEADER.checksum, vhdChecksum(header, HEADER.checksum));
    const table = new Uint8Array(this.#tableBytes).fill(0xff);
    const view = new DataView(table.buffer);
    this.#bat.forEach((entry, i) => view.setUint32(i * BAT_ENTRY_SIZE, entry, false));
    await this.writeAll(this.#footer, 0);
    await this.writeAll(header, HEADER_OFFSET);
    await this.writeAll(table, TABLE_OFFSET);
    await this.handle.truncate(this.#end);
    await this.writeAll(this.#footer, this.#end);
  }
}
