/**
 * The VHD on-disk structures, declared once: the hard disk footer, the dynamic disk header and the parent
 * locator entry (Microsoft "Virtual Hard Disk Image Format Specification" v1.0, sections "Hard Disk Footer
 * Format", "Dynamic Disk Header Format", "Block Allocation Table and Data Blocks"). All integers are
 * big-endian. Each layout is checked at load: its fields must tile it exactly.
 */

export const SECTOR_SIZE = 512;
export const FOOTER_SIZE = 512;
export const DYNAMIC_HEADER_SIZE = 1024;
export const PARENT_LOCATOR_SIZE = 24;
export const PARENT_LOCATOR_COUNT = 8;
export const BAT_ENTRY_SIZE = 4;
/** A BAT entry with all bits set: the block is not allocated. */
export const BAT_UNUSED = 0xffff_ffff;
/** The footer's data offset of a fixed disk (all bits set). */
export const NO_DATA_OFFSET = 0xffff_ffff_ffff_ffffn;

export const FOOTER_COOKIE = 'conectix';
export const HEADER_COOKIE = 'cxsparse';
export const FORMAT_VERSION = 0x0001_0000;
export const HEADER_VERSION = 0x0001_0000;
/** Features: bit 1 "reserved" must always be set; bit 0 marks a temporary disk. */
export const FEATURES_RESERVED = 0x2;
export const DISK_TYPE = { fixed: 2, dynamic: 3, differencing: 4 } as const;
export type VhdDiskType = keyof typeof DISK_TYPE;
export const HOST_OS_WINDOWS = 0x5769_326b; // 'Wi2k'
/** The VHD timestamp epoch, 2000-01-01T00:00:00Z, in Unix milliseconds. */
export const VHD_EPOCH_MS = Date.UTC(2000, 0, 1);
export const DEFAULT_BLOCK_SIZE = 0x20_0000; // 2 MiB

export interface FieldSpec {
  readonly offset: number;
  readonly size: number;
}
type Layout<K extends string> = { readonly [P in K]: FieldSpec };

function checkLayout<K extends string>(name: string, total: number, fields: Layout<K>): Layout<K> {
  let expected = 0;
  for (const [field, spec] of Object.entries<FieldSpec>(fields)) {
    if (spec.offset !== expected) throw new Error(`${name}.${field} is at ${spec.offset}, expected ${expected}`);
    expected += spec.size;
  }
  if (expected !== total) throw new Error(`${name} fields cover ${expected} bytes, expected ${total}`);
  return fields;
}

/** Hard disk footer: 512 bytes at the end of every VHD; dynamic and differencing disks copy it to offset 0. */
export const FOOTER = checkLayout('footer', FOOTER_SIZE, {
  cookie: { offset: 0, size: 8 }, //              'conectix'
  features: { offset: 8, size: 4 }, //             0x2 reserved (set), 0x1 temporary
  fileFormatVersion: { offset: 12, size: 4 }, //   0x00010000
  dataOffset: { offset: 16, size: 8 }, //          absolute offset of the dynamic header; fixed: all ones
  timestamp: { offset: 24, size: 4 }, //           seconds since 2000-01-01T00:00:00Z
  creatorApplication: { offset: 28, size: 4 }, //  e.g. 'vpc ', 'win ', 'qem2'
  creatorVersion: { offset: 32, size: 4 }, //      major << 16 | minor
  creatorHostOs: { offset: 36, size: 4 }, //       'Wi2k', 'Mac '
  originalSize: { offset: 40, size: 8 }, //        bytes at creation
  currentSize: { offset: 48, size: 8 }, //         the virtual size, bytes
  diskGeometry: { offset: 56, size: 4 }, //        cylinders (2), heads (1), sectors per track (1)
  diskType: { offset: 60, size: 4 }, //            2 fixed, 3 dynamic, 4 differencing
  checksum: { offset: 64, size: 4 }, //            one's complement of the byte sum, this field zeroed
  uniqueId: { offset: 68, size: 16 }, //
  savedState: { offset: 84, size: 1 }, //
  reserved: { offset: 85, size: 427 }, //          zero
});

/** Dynamic disk header: 1024 bytes at the footer's data offset (dynamic and differencing disks). */
export const HEADER = checkLayout('header', DYNAMIC_HEADER_SIZE, {
  cookie: { offset: 0, size: 8 }, //              'cxsparse'
  dataOffset: { offset: 8, size: 8 }, //          unused, all ones
  tableOffset: { offset: 16, size: 8 }, //        absolute offset of the BAT
  headerVersion: { offset: 24, size: 4 }, //      0x00010000
  maxTableEntries: { offset: 28, size: 4 }, //    BAT entries
  blockSize: { offset: 32, size: 4 }, //          data bytes per block (bitmap excluded); a power of two
  checksum: { offset: 36, size: 4 }, //           as the footer's, over these 1024 bytes
  parentUniqueId: { offset: 40, size: 16 }, //    the parent footer's unique id
  parentTimestamp: { offset: 56, size: 4 }, //    
  reserved1: { offset: 60, size: 4 }, //          
  parentUnicodeName: { offset: 64, size: 512 }, // UTF-16BE, NUL padded
  parentLocators: { offset: 576, size: PARENT_LOCATOR_SIZE * PARENT_LOCATOR_COUNT }, // 8 x 24 bytes
  reserved2: { offset: 768, size: 256 }, //       zero
});

/** One parent locator entry (24 bytes) inside the dynamic header's `parentLocators`. */
export const LOCATOR = checkLayout('parentLocator', PARENT_LOCATOR_SIZE, {
  platformCode: { offset: 0, size: 4 }, //        'W2ru', 'W2ku', 'Wi2r', 'Wi2k', 'Mac ', 'MacX', or 0
  platformDataSpace: { offset: 4, size: 4 }, //   sectors per the spec; bytes as Virtual PC/Hyper-V write it
  platformDataLength: { offset: 8, size: 4 }, //  bytes
  reserved: { offset: 12, size: 4 }, //
  platformDataOffset: { offset: 16, size: 8 }, // absolute file offset of the locator data
});

export const PLATFORM_W2RU = 0x5732_7275; // 'W2ru', relative Windows path, UTF-16LE
export const PLATFORM_W2KU = 0x5732_6b75; // 'W2ku', absolute Windows path, UTF-16LE

// ---- field access ---------------------------------------------------------------------------------------

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

export function getU32(buf: Uint8Array, field: FieldSpec, base = 0): number {
  return view(buf).getUint32(base + field.offset, false);
}
export function setU32(buf: Uint8Array, field: FieldSpec, value: number, base = 0): void {
  view(buf).setUint32(base + field.offset, value, false);
}
export function getU64(buf: Uint8Array, field: FieldSpec, base = 0): bigint {
  return view(buf).getBigUint64(base + field.offset, false);
}
export function setU64(buf: Uint8Array, field: FieldSpec, value: bigint, base = 0): void {
  view(buf).setBigUint64(base + field.offset, value, false);
}
export function getBytes(buf: Uint8Array, field: FieldSpec, base = 0): Uint8Array {
  return buf.subarray(base + field.offset, base + field.offset + field.size);
}
export function getAscii(buf: Uint8Array, field: FieldSpec, base = 0): string {
  return String.fromCharCode(...getBytes(buf, field, base));
}
export function setAscii(buf: Uint8Array, field: FieldSpec, text: string): void {
  for (let i = 0; i < field.size; i++) buf[field.offset + i] = i < text.length ? text.charCodeAt(i) & 0xff : 0;
}

/** The VHD checksum: one's complement of the sum of all bytes, with the checksum field itself taken as zero. */
export function vhdChecksum(buf: Uint8Array, checksumField: FieldSpec): number {
  let sum = 0;
  const skipFrom = checksumField.offset;
  const skipTo = checksumField.offset + checksumField.size;
  for (let i = 0; i < buf.length; i++) {
    if (i >= skipFrom && i < skipTo) continue;
    sum = (sum + (buf[i] ?? 0)) >>> 0;
  }
  return ~sum >>> 0;
}

/** Round `value` up to a multiple of `unit` (both non-negative safe integers). */
export function roundUp(value: number, unit: number): number {
  return Math.ceil(value / unit) * unit;
}

/** Bytes of a block's sector bitmap: one bit per sector, padded to a whole sector. */
export function bitmapBytes(blockSize: number): number {
  return roundUp(Math.ceil(blockSize / SECTOR_SIZE / 8), SECTOR_SIZE);
}
