/**
 * Dynamic and differencing disk structures: the dynamic disk header, its parent locator entries and the
 * block allocation table (VHD spec, "Dynamic Disk Header Format", "Block Allocation Table and Data Blocks").
 *
 * Everything is validated against the real file size before anything sized by a header field is allocated:
 * the BAT must fit in the file, every allocated block (bitmap + data) must lie inside the data area, outside
 * all metadata (footer copy, header, BAT, locator data, end footer) and apart from every other block. So the
 * memory and work of opening an image are bounded by its file size.
 */
import { VhdFormatError } from './errors.js';
import type { VhdFooter } from './footer.js';
import {
  BAT_ENTRY_SIZE, BAT_UNUSED, bitmapBytes, DYNAMIC_HEADER_SIZE, FOOTER_SIZE, getAscii, getBytes, getU32, getU64,
  HEADER, HEADER_COOKIE, HEADER_VERSION, LOCATOR, PARENT_LOCATOR_COUNT, PARENT_LOCATOR_SIZE, roundUp, SECTOR_SIZE,
  vhdChecksum,
} from './layout.js';

/** Largest block size accepted: 256 MiB (Hyper-V and Virtual PC use 2 MiB, some tools 512 KiB). */
export const MAX_BLOCK_SIZE = 256 * 1024 * 1024;
/** Largest parent locator payload read: a Windows path of 32767 UTF-16 units. */
export const MAX_LOCATOR_DATA = 65536;
/** A platform data space below this is in sectors (the spec); from it on, bytes (Virtual PC, Hyper-V). */
const LOCATOR_SPACE_BYTES_FROM = 512;

export interface ParentLocator {
  index: number;
  /** The four-character platform code, e.g. `W2ru`. */
  platformCode: string;
  platformCodeValue: number;
  /** The data space field as stored, and its value in bytes after the sectors-or-bytes decision. */
  platformDataSpace: number;
  spaceBytes: number;
  platformDataLength: number;
  platformDataOffset: number;
}

export interface DynamicHeader {
  headerOffset: number;
  tableOffset: number;
  headerVersion: number;
  maxTableEntries: number;
  blockSize: number;
  checksum: number;
  parentUniqueId: Uint8Array;
  parentTimestamp: number;
  /** The parent's file name, UTF-16BE in the header (empty for dynamic disks). */
  parentUnicodeName: string;
  /** Locator entries with a non-zero platform code (differencing disks only). */
  parentLocators: ParentLocator[];
  raw: Uint8Array;
}

/** A byte range [start, end) of the file that holds metadata. */
export interface FileRegion {
  name: string;
  start: number;
  end: number;
}

/** Where the dynamic header must lie: after the footer copy, before the end footer. */
export function checkHeaderOffset(footer: VhdFooter, fileSize: number): number {
  const offset = footer.dataOffset;
  const dataEnd = fileSize - FOOTER_SIZE;
  if (offset < BigInt(FOOTER_SIZE) || offset + BigInt(DYNAMIC_HEADER_SIZE) > BigInt(dataEnd)) {
    throw new VhdFormatError('VhdBadHeaderOffset', 'footer.dataOffset',
      `the dynamic header offset must lie in [${FOOTER_SIZE}, ${dataEnd - DYNAMIC_HEADER_SIZE}], got ${offset}`);
  }
  return Number(offset);
}

export function parseDynamicHeader(bytes: Uint8Array, headerOffset: number, footer: VhdFooter, fileSize: number): DynamicHeader {
  const cookie = getAscii(bytes, HEADER.cookie);
  if (cookie !== HEADER_COOKIE) {
    throw new VhdFormatError('VhdBadCookie', 'header.cookie', `header cookie must be '${HEADER_COOKIE}', got ${JSON.stringify(cookie)}`);
  }
  const checksum = getU32(bytes, HEADER.checksum);
  const computed = vhdChecksum(bytes, HEADER.checksum);
  if (checksum !== computed) {
    throw new VhdFormatError('VhdBadHeaderChecksum', 'header.checksum',
      `header checksum is 0x${checksum.toString(16)}, the bytes sum to 0x${computed.toString(16)}`);
  }
  const version = getU32(bytes, HEADER.headerVersion);
  if (version >>> 16 !== HEADER_VERSION >>> 16) {
    throw new VhdFormatError('VhdBadVersion', 'header.headerVersion', `header version must be 1.x, got 0x${version.toString(16)}`);
  }
  const blockSize = getU32(bytes, HEADER.blockSize);
  if (blockSize < SECTOR_SIZE || blockSize > MAX_BLOCK_SIZE || (blockSize & (blockSize - 1)) !== 0) {
    throw new VhdFormatError('VhdBadBlockSize', 'header.blockSize',
      `block size must be a power of two in [${SECTOR_SIZE}, ${MAX_BLOCK_SIZE}], got ${blockSize}`);
  }
  const dataEnd = fileSize - FOOTER_SIZE;
  const maxTableEntries = getU32(bytes, HEADER.maxTableEntries);
  const needed = Math.ceil(footer.currentSize / blockSize);
  if (maxTableEntries < needed) {
    throw new VhdFormatError('VhdBadTableEntries', 'header.maxTableEntries',
      `${footer.currentSize} bytes in ${blockSize}-byte blocks need ${needed} table entries, the header has ${maxTableEntries}`);
  }
  const tableBytes = roundUp(maxTableEntries * BAT_ENTRY_SIZE, SECTOR_SIZE);
  if (tableBytes > dataEnd) {
    throw new VhdFormatError('VhdBadTableEntries', 'header.maxTableEntries',
      `${maxTableEntries} table entries need ${tableBytes} bytes; the file is only ${fileSize} bytes`);
  }
  const tableOffsetRaw = getU64(bytes, HEADER.tableOffset);
  const headerEnd = headerOffset + DYNAMIC_HEADER_SIZE;
  if (tableOffsetRaw < BigInt(FOOTER_SIZE) || tableOffsetRaw + BigInt(tableBytes) > BigInt(dataEnd)) {
    throw new VhdFormatError('VhdBadTableOffset', 'header.tableOffset',
      `the ${tableBytes}-byte BAT must lie in [${FOOTER_SIZE}, ${dataEnd}), its offset is ${tableOffsetRaw}`);
  }
  const tableOffset = Number(tableOffsetRaw);
  if (tableOffset < headerEnd && headerOffset < tableOffset + tableBytes) {
    throw new VhdFormatError('VhdBadTableOffset', 'header.tableOffset',
      `the BAT at ${tableOffset} (+${tableBytes}) overlaps the dynamic header at ${headerOffset}`);
  }
  const parentLocators = footer.diskType === 'differencing'
    ? parseLocators(bytes, dataEnd, [
      { name: 'header', start: headerOffset, end: headerEnd },
      { name: 'BAT', start: tableOffset, end: tableOffset + tableBytes },
    ])
    : [];
  return {
    headerOffset,
    tableOffset,
    headerVersion: version,
    maxTableEntries,
    blockSize,
    checksum,
    parentUniqueId: getBytes(bytes, HEADER.parentUniqueId).slice(),
    parentTimestamp: getU32(bytes, HEADER.parentTimestamp),
    parentUnicodeName: footer.diskType === 'differencing' ? decodeParentName(getBytes(bytes, HEADER.parentUnicodeName)) : '',
    parentLocators,
    raw: bytes.slice(),
  };
}

function parseLocators(bytes: Uint8Array, dataEnd: number, metadata: FileRegion[]): ParentLocator[] {
  const out: ParentLocator[] = [];
  const taken: FileRegion[] = [...metadata];
  for (let index = 0; index < PARENT_LOCATOR_COUNT; index++) {
    const base = HEADER.parentLocators.offset + index * PARENT_LOCATOR_SIZE;
    const code = getU32(bytes, LOCATOR.platformCode, base);
    if (code === 0) continue;
    const field = `header.parentLocator[${index}]`;
    const space = getU32(bytes, LOCATOR.platformDataSpace, base);
    const length = getU32(bytes, LOCATOR.platformDataLength, base);
    const offsetRaw = getU64(bytes, LOCATOR.platformDataOffset, base);
    const spaceBytes = space < LOCATOR_SPACE_BYTES_FROM ? space * SECTOR_SIZE : space;
    if (offsetRaw < BigInt(FOOTER_SIZE) || offsetRaw >= BigInt(dataEnd)) {
      throw new VhdFormatError('VhdBadLocator', `${field}.platformDataOffset`,
        `locator ${index} data offset must lie in [${FOOTER_SIZE}, ${dataEnd}), got ${offsetRaw}`);
    }
    const offset = Number(offsetRaw);
    if (offset + spaceBytes > dataEnd) {
      throw new VhdFormatError('VhdBadLocator', `${field}.platformDataSpace`,
        `locator ${index} data space of ${spaceBytes} bytes at ${offset} passes the data area's end ${dataEnd}`);
    }
    if (length === 0 || length > spaceBytes || length > MAX_LOCATOR_DATA) {
      throw new VhdFormatError('VhdBadLocator', `${field}.platformDataLength`,
        `locator ${index} data length must be 1..min(data space ${spaceBytes}, ${MAX_LOCATOR_DATA}), got ${length}`);
    }
    const region = { name: `locator ${index}`, start: offset, end: offset + Math.max(spaceBytes, length) };
    const clash = taken.find((r) => r.start < region.end && region.start < r.end);
    if (clash !== undefined) {
      throw new VhdFormatError('VhdBadLocator', `${field}.platformDataOffset`,
        `locator ${index} data at ${offset} (+${spaceBytes}) overlaps the ${clash.name} at ${clash.start}`);
    }
    taken.push(region);
    out.push({
      index,
      platformCode: getAscii(bytes, LOCATOR.platformCode, base),
      platformCodeValue: code,
      platformDataSpace: space,
      spaceBytes,
      platformDataLength: length,
      platformDataOffset: offset,
    });
  }
  return out;
}

const utf16le = new TextDecoder('utf-16le', { fatal: true });

/** Decode UTF-16LE strictly: even length, no unpaired surrogates, no NUL before the NUL padding. */
export function decodeUtf16le(bytes: Uint8Array, field: string): string {
  if (bytes.length % 2 !== 0) {
    throw new VhdFormatError('VhdBadUtf16', field, `${field} holds ${bytes.length} bytes, not whole UTF-16 units`);
  }
  let text: string;
  try {
    text = utf16le.decode(bytes);
  } catch (cause) {
    throw new VhdFormatError('VhdBadUtf16', field, `${field} is not valid UTF-16 (an unpaired surrogate)`, { cause });
  }
  const trimmed = text.replace(/\0+$/, '');
  if (trimmed.includes('\0')) throw new VhdFormatError('VhdBadUtf16', field, `${field} holds a NUL character inside the text`);
  return trimmed;
}

function decodeParentName(bigEndian: Uint8Array): string {
  const swapped = new Uint8Array(bigEndian.length);
  for (let i = 0; i + 1 < bigEndian.length; i += 2) {
    swapped[i] = bigEndian[i + 1] ?? 0;
    swapped[i + 1] = bigEndian[i] ?? 0;
  }
  return decodeUtf16le(swapped, 'header.parentUnicodeName');
}

/** The metadata regions of a dynamic file, for block placement checks. */
export function metadataRegions(header: DynamicHeader, fileSize: number): FileRegion[] {
  const regions: FileRegion[] = [
    { name: 'footer copy', start: 0, end: FOOTER_SIZE },
    { name: 'dynamic header', start: header.headerOffset, end: header.headerOffset + DYNAMIC_HEADER_SIZE },
    { name: 'BAT', start: header.tableOffset, end: header.tableOffset + roundUp(header.maxTableEntries * BAT_ENTRY_SIZE, SECTOR_SIZE) },
  ];
  for (const l of header.parentLocators) {
    regions.push({ name: `locator ${l.index} data`, start: l.platformDataOffset, end: l.platformDataOffset + l.spaceBytes });
  }
  regions.push({ name: 'footer', start: fileSize - FOOTER_SIZE, end: fileSize });
  return regions;
}

/**
 * Validate the first `blockCount` BAT entries: each allocated block (bitmap + data) inside the data area,
 * outside every metadata region, and apart from every other block. Returns the entries (a copy).
 */
export function validateBat(raw: Uint8Array, header: DynamicHeader, blockCount: number, fileSize: number): Uint32Array {
  const entries = new Uint32Array(blockCount);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const blockExtent = bitmapBytes(header.blockSize) + header.blockSize;
  const dataEnd = fileSize - FOOTER_SIZE;
  const regions = metadataRegions(header, fileSize);
  let allocated = 0;
  for (let i = 0; i < blockCount; i++) {
    const entry = view.getUint32(i * BAT_ENTRY_SIZE, false);
    entries[i] = entry;
    if (entry === BAT_UNUSED) continue;
    allocated++;
    const start = entry * SECTOR_SIZE; // <= 2^41: exact in a double
    const end = start + blockExtent;
    if (end > dataEnd) {
      throw new VhdFormatError('VhdBatEntryOutOfRange', `bat[${i}]`,
        `block ${i} at sector ${entry} (bytes ${start}..${end}) passes the data area's end ${dataEnd}`);
    }
    for (const r of regions) {
      if (start < r.end && r.start < end) {
        throw new VhdFormatError('VhdBatEntryOutOfRange', `bat[${i}]`,
          `block ${i} at sector ${entry} (bytes ${start}..${end}) lies inside the ${r.name} (${r.start}..${r.end})`);
      }
    }
  }
  const starts = new Float64Array(allocated);
  let n = 0;
  for (const entry of entries) if (entry !== BAT_UNUSED) starts[n++] = entry;
  starts.sort();
  for (let k = 1; k < starts.length; k++) {
    const prev = starts[k - 1] ?? 0;
    const cur = starts[k] ?? 0;
    if ((cur - prev) * SECTOR_SIZE < blockExtent) {
      const a = entries.indexOf(prev);
      const b = cur === prev ? entries.indexOf(cur, a + 1) : entries.indexOf(cur);
      const what = cur === prev ? 'is the same block as' : 'overlaps';
      throw new VhdFormatError('VhdBatEntryOverlap', `bat[${b}]`,
        `block ${b} at sector ${cur} ${what} block ${a} at sector ${prev} (blocks span ${blockExtent} bytes)`);
    }
  }
  return entries;
}
