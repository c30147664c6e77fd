/**
 * Test image generator: dynamic and differencing VHDs built in memory from a simple model (qemu cannot make
 * differencing disks), the reference model that reads a chain sector by sector, and the helpers that mutate
 * images (field overwrites with checksums fixed, so the mutation reaches the deeper checks).
 */
import { randomBytes } from 'node:crypto';

import {
  bitmapBytes, BAT_UNUSED, DYNAMIC_HEADER_SIZE, FOOTER, FOOTER_SIZE, HEADER, HEADER_COOKIE, HEADER_VERSION, LOCATOR,
  PARENT_LOCATOR_SIZE, PLATFORM_W2KU, PLATFORM_W2RU, roundUp, SECTOR_SIZE, setAscii, setU32, setU64, vhdChecksum,
} from '../../lib/vhd/layout.js';
import { encodeFooter } from '../../lib/vhd/footer.js';

export interface GenBlock {
  index: number;
  /** Sector bitmap; default all ones. Its length is the bitmap's meaningful bytes (blockSize / 512 / 8). */
  bitmap?: Uint8Array;
  /** blockSize bytes of data (sectors with a clear bit are stored too, as a real file may). */
  data: Uint8Array;
}

export interface GenLocator {
  code: 'W2ru' | 'W2ku' | number;
  path: string;
  /** Store the data space in sectors (the spec) instead of bytes (Hyper-V). */
  spaceInSectors?: boolean;
}

export interface GenOptions {
  virtualSize: number;
  blockSize: number;
  blocks: GenBlock[];
  uniqueId?: Uint8Array;
  parent?: { uniqueId: Uint8Array; name: string; locators: GenLocator[] };
}

export interface GenLayout {
  bytes: Uint8Array;
  headerOffset: number;
  tableOffset: number;
  locatorOffsets: number[];
  blockOffsets: Map<number, number>;
  uniqueId: Uint8Array;
}

export function utf16le(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'utf16le'));
}

/** Build a dynamic (no parent) or differencing (with parent) VHD in memory. */
export function buildSparseVhd(opts: GenOptions): GenLayout {
  const { virtualSize, blockSize } = opts;
  const uniqueId = opts.uniqueId ?? new Uint8Array(randomBytes(16));
  const entries = Math.ceil(virtualSize / blockSize);
  const headerOffset = FOOTER_SIZE;
  const tableOffset = headerOffset + DYNAMIC_HEADER_SIZE;
  const tableBytes = roundUp(entries * 4, SECTOR_SIZE);
  let end = tableOffset + tableBytes;
  const locatorData: Array<{ offset: number; data: Uint8Array; loc: GenLocator }> = [];
  for (const loc of opts.parent?.locators ?? []) {
    const data = utf16le(loc.path);
    locatorData.push({ offset: end, data, loc });
    end += roundUp(Math.max(data.length, 1), SECTOR_SIZE);
  }
  const bmBytes = bitmapBytes(blockSize);
  const blockOffsets = new Map<number, number>();
  for (const b of opts.blocks) {
    blockOffsets.set(b.index, end);
    end += bmBytes + blockSize;
  }
  const fileSize = end + FOOTER_SIZE;
  const bytes = new Uint8Array(fileSize);
  const diskType = opts.parent === undefined ? 'dynamic' : 'differencing';
  const footer = encodeFooter({ diskType, virtualSize, headerOffset, uniqueId, creatorApplication: 'test' });
  bytes.set(footer, 0);
  bytes.set(footer, end);

  const header = bytes.subarray(headerOffset, headerOffset + DYNAMIC_HEADER_SIZE);
  setAscii(header, HEADER.cookie, HEADER_COOKIE);
  setU64(header, HEADER.dataOffset, 0xffff_ffff_ffff_ffffn);
  setU64(header, HEADER.tableOffset, BigInt(tableOffset));
  setU32(header, HEADER.headerVersion, HEADER_VERSION);
  setU32(header, HEADER.maxTableEntries, entries);
  setU32(header, HEADER.blockSize, blockSize);
  if (opts.parent !== undefined) {
    header.set(opts.parent.uniqueId, HEADER.parentUniqueId.offset);
    const name = Buffer.from(opts.parent.name, 'utf16le').swap16();
    header.set(name.subarray(0, HEADER.parentUnicodeName.size), HEADER.parentUnicodeName.offset);
    locatorData.forEach(({ offset, data, loc }, i) => {
      const base = HEADER.parentLocators.offset + i * PARENT_LOCATOR_SIZE;
      const code = loc.code === 'W2ru' ? PLATFORM_W2RU : loc.code === 'W2ku' ? PLATFORM_W2KU : loc.code;
      const space = roundUp(Math.max(data.length, 1), SECTOR_SIZE);
      setU32(header, LOCATOR.platformCode, code, base);
      setU32(header, LOCATOR.platformDataSpace, loc.spaceInSectors === true ? space / SECTOR_SIZE : space, base);
      setU32(header, LOCATOR.platformDataLength, data.length, base);
      setU64(header, LOCATOR.platformDataOffset, BigInt(offset), base);
      bytes.set(data, offset);
    });
  }
  setU32(header, HEADER.checksum, vhdChecksum(header, HEADER.checksum));

  const bat = new DataView(bytes.buffer, tableOffset, tableBytes);
  for (let i = 0; i < tableBytes / 4; i++) bat.setUint32(i * 4, BAT_UNUSED, false);
  for (const b of opts.blocks) {
    const off = blockOffsets.get(b.index) ?? 0;
    bat.setUint32(b.index * 4, off / SECTOR_SIZE, false);
    const bitmap = b.bitmap ?? new Uint8Array(blockSize / SECTOR_SIZE / 8).fill(0xff);
    bytes.set(bitmap, off);
    bytes.set(b.data.subarray(0, blockSize), off + bmBytes);
  }
  return { bytes, headerOffset, tableOffset, locatorOffsets: locatorData.map((l) => l.offset), blockOffsets, uniqueId };
}

/** After editing: recompute the header checksum, the end footer's checksum, and copy the footer to offset 0. */
export function fixChecksums(bytes: Uint8Array, headerOffset = FOOTER_SIZE, copyFooter = true): void {
  const footer = bytes.subarray(bytes.length - FOOTER_SIZE);
  setU32(footer, FOOTER.checksum, vhdChecksum(footer, FOOTER.checksum));
  if (headerOffset + DYNAMIC_HEADER_SIZE <= bytes.length - FOOTER_SIZE) {
    const header = bytes.subarray(headerOffset, headerOffset + DYNAMIC_HEADER_SIZE);
    if (String.fromCharCode(...header.subarray(0, 8)) === HEADER_COOKIE) {
      setU32(header, HEADER.checksum, vhdChecksum(header, HEADER.checksum));
    }
  }
  if (copyFooter) bytes.set(footer, 0);
}

/** A layer of the reference model: which sectors it holds and their bytes. */
export interface ModelLayer {
  kind: 'dynamic' | 'differencing' | 'fixed';
  /** Per virtual sector: held here? */
  present: (sector: number) => boolean;
  content: Uint8Array; // virtualSize bytes (only present sectors matter)
}

/** Read the whole chain (child first) as the model says: first layer holding a sector wins, else zeros. */
export function modelRead(layers: ModelLayer[], virtualSize: number): Uint8Array {
  const out = new Uint8Array(virtualSize);
  for (let s = 0; s < virtualSize / SECTOR_SIZE; s++) {
    const layer = layers.find((l) => l.present(s));
    if (layer !== undefined) out.set(layer.content.subarray(s * SECTOR_SIZE, (s + 1) * SECTOR_SIZE), s * SECTOR_SIZE);
  }
  return out;
}

/** A random layer: random allocated blocks, random bitmaps (partial bytes included), random data. */
export function randomLayer(virtualSize: number, blockSize: number, rnd: () => number): { blocks: GenBlock[]; model: ModelLayer } {
  const content = new Uint8Array(virtualSize);
  const blocks: GenBlock[] = [];
  const present = new Uint8Array(virtualSize / SECTOR_SIZE);
  const spb = blockSize / SECTOR_SIZE;
  for (let i = 0; i < Math.ceil(virtualSize / blockSize); i++) {
    if (rnd() < 0.4) continue;
    const bitmap = new Uint8Array(Math.ceil(spb / 8));
    const mode = rnd();
    for (let k = 0; k < bitmap.length; k++) {
      bitmap[k] = mode < 0.25 ? 0xff : mode < 0.35 ? 0 : Math.floor(rnd() * 256);
    }
    const data = new Uint8Array(randomBytes(blockSize));
    blocks.push({ index: i, bitmap, data });
    for (let s = 0; s < spb; s++) {
      const sector = i * spb + s;
      if (sector * SECTOR_SIZE >= virtualSize) break;
      if (((bitmap[Math.floor(s / 8)] ?? 0) & (0x80 >> (s % 8))) !== 0) {
        present[sector] = 1;
        content.set(data.subarray(s * SECTOR_SIZE, (s + 1) * SECTOR_SIZE), sector * SECTOR_SIZE);
      }
    }
  }
  return { blocks, model: { kind: 'differencing', present: (s) => present[s] === 1, content } };
}

/** A small seeded PRNG (mulberry32) so failures replay. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
