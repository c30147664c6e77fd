/**
 * The VHD hard disk footer: decode with validation, encode for the writers, the specification's CHS
 * geometry (VHD spec, appendix "CHS Calculation") and the Azure rules for fixed VHDs (virtual size a
 * multiple of 1 MiB; page blob = virtual size + 512-byte footer; Azure "Upload a VHD" / "Prepare a VHD").
 */
import { randomBytes } from 'node:crypto';

import { describeValue } from '../errors.js';
import { VhdFormatError } from './errors.js';
import {
  DISK_TYPE, FEATURES_RESERVED, FOOTER, FOOTER_COOKIE, FOOTER_SIZE, FORMAT_VERSION, getAscii, getBytes, getU32,
  getU64, HOST_OS_WINDOWS, NO_DATA_OFFSET, SECTOR_SIZE, setAscii, setU32, setU64, VHD_EPOCH_MS, vhdChecksum,
  type VhdDiskType,
} from './layout.js';

/** Largest virtual size accepted or written: 8 TiB, Azure's largest page blob. */
export const MAX_VIRTUAL_SIZE = 8 * 1024 ** 4;
/** Azure wants fixed VHDs whose virtual size is a multiple of 1 MiB. */
export const AZURE_SIZE_ALIGNMENT = 1024 * 1024;
/**
 * The creator application we write. qemu (block/vpc.c) trusts `currentSize` only for the creators it knows
 * to write it exactly ('win ', 'qem2', 'd2v ', 'tap\0', 'CTXS') and derives the size from CHS for any other,
 * which truncates sizes that are not CHS-exact; so we write Hyper-V's 'win ', as Azure's own tools do.
 */
export const DEFAULT_CREATOR_APPLICATION = 'win ';
export const DEFAULT_CREATOR_VERSION = 0x0001_0000;
const UNIQUE_ID_BYTES = 16;
const MAX_CHS_SECTORS = 65535 * 16 * 255;
const CHS_SPT_MAX = 255;
const CHS_HEADS_MAX = 16;
const CHS_CYLINDERS_CAP = 1024;

export interface DiskGeometry {
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
}

export interface VhdFooter {
  features: number;
  fileFormatVersion: number;
  /** Absolute offset of the dynamic header; `NO_DATA_OFFSET` for fixed disks. */
  dataOffset: bigint;
  /** Seconds since 2000-01-01T00:00:00Z. */
  timestamp: number;
  creatorApplication: string;
  creatorVersion: number;
  creatorHostOs: number;
  originalSize: bigint;
  /** The virtual size in bytes (validated: > 0, sector-aligned, <= {@link MAX_VIRTUAL_SIZE}). */
  currentSize: number;
  geometry: DiskGeometry;
  diskType: VhdDiskType;
  checksum: number;
  uniqueId: Uint8Array;
  savedState: number;
  /** The 512 footer bytes as read. */
  raw: Uint8Array;
}

const DISK_TYPE_NAMES = new Map<number, VhdDiskType>(
  Object.entries(DISK_TYPE).map(([name, code]) => [code, name as VhdDiskType]));

/** Validate a virtual size read from a structure; `field` names it in the error. */
export function checkVirtualSize(size: bigint, field: string): number {
  if (size === 0n || size % BigInt(SECTOR_SIZE) !== 0n || size > BigInt(MAX_VIRTUAL_SIZE)) {
    throw new VhdFormatError('VhdBadSize', field,
      `${field} must be a non-zero multiple of ${SECTOR_SIZE} up to ${MAX_VIRTUAL_SIZE} bytes, got ${size}`);
  }
  return Number(size);
}

/**
 * Decode and validate a footer: cookie, checksum, version, disk type and current size.
 * `where` prefixes the field names in errors (`footer` or `footerCopy`).
 */
export function parseFooter(bytes: Uint8Array, where = 'footer'): VhdFooter {
  if (bytes.length !== FOOTER_SIZE) throw new RangeError(`a footer is ${FOOTER_SIZE} bytes, got ${bytes.length}`);
  const cookie = getAscii(bytes, FOOTER.cookie);
  if (cookie !== FOOTER_COOKIE) {
    throw new VhdFormatError('VhdBadCookie', `${where}.cookie`, `${where} cookie must be '${FOOTER_COOKIE}', got ${JSON.stringify(cookie)}`);
  }
  const checksum = getU32(bytes, FOOTER.checksum);
  const computed = vhdChecksum(bytes, FOOTER.checksum);
  if (checksum !== computed) {
    throw new VhdFormatError('VhdBadFooterChecksum', `${where}.checksum`,
      `${where} checksum is 0x${hex(checksum)}, the bytes sum to 0x${hex(computed)}`);
  }
  const version = getU32(bytes, FOOTER.fileFormatVersion);
  if (version >>> 16 !== FORMAT_VERSION >>> 16) {
    throw new VhdFormatError('VhdBadVersion', `${where}.fileFormatVersion`,
      `${where} file format version must be 1.x (0x0001xxxx), got 0x${hex(version)}`);
  }
  const typeCode = getU32(bytes, FOOTER.diskType);
  const diskType = DISK_TYPE_NAMES.get(typeCode);
  if (diskType === undefined) {
    throw new VhdFormatError('VhdUnknownDiskType', `${where}.diskType`,
      `${where} disk type must be 2 (fixed), 3 (dynamic) or 4 (differencing), got ${typeCode}`);
  }
  const currentSize = checkVirtualSize(getU64(bytes, FOOTER.currentSize), `${where}.currentSize`);
  const geometryWord = getU32(bytes, FOOTER.diskGeometry);
  return {
    features: getU32(bytes, FOOTER.features),
    fileFormatVersion: version,
    dataOffset: getU64(bytes, FOOTER.dataOffset),
    timestamp: getU32(bytes, FOOTER.timestamp),
    creatorApplication: getAscii(bytes, FOOTER.creatorApplication),
    creatorVersion: getU32(bytes, FOOTER.creatorVersion),
    creatorHostOs: getU32(bytes, FOOTER.creatorHostOs),
    originalSize: getU64(bytes, FOOTER.originalSize),
    currentSize,
    geometry: {
      cylinders: Math.floor(geometryWord / 0x1_0000),
      heads: Math.floor(geometryWord / 0x100) % 0x100,
      sectorsPerTrack: geometryWord % 0x100,
    },
    diskType,
    checksum,
    uniqueId: getBytes(bytes, FOOTER.uniqueId).slice(),
    savedState: bytes[FOOTER.savedState.offset] ?? 0,
    raw: bytes.slice(),
  };
}

/** CHS geometry for a disk of `size` bytes, as the VHD specification computes it. */
export function chsGeometry(size: number): DiskGeometry {
  requireSize('size', size);
  const totalSectors = Math.min(Math.floor(size / SECTOR_SIZE), MAX_CHS_SECTORS);
  let spt: number;
  let heads: number;
  let cth: number;
  if (totalSectors >= 65535 * 16 * 63) {
    spt = CHS_SPT_MAX;
    heads = CHS_HEADS_MAX;
    cth = Math.floor(totalSectors / spt);
  } else {
    spt = 17;
    cth = Math.floor(totalSectors / spt);
    heads = Math.max(Math.floor((cth + 1023) / 1024), 4);
    if (cth >= heads * CHS_CYLINDERS_CAP || heads > CHS_HEADS_MAX) {
      spt = 31;
      heads = CHS_HEADS_MAX;
      cth = Math.floor(totalSectors / spt);
    }
    if (cth >= heads * CHS_CYLINDERS_CAP) {
      spt = 63;
      heads = CHS_HEADS_MAX;
      cth = Math.floor(totalSectors / spt);
    }
  }
  return { cylinders: Math.floor(cth / heads), heads, sectorsPerTrack: spt };
}

export interface FooterOptions {
  diskType: VhdDiskType;
  /** Virtual size, bytes: a positive multiple of 512 up to {@link MAX_VIRTUAL_SIZE}. */
  virtualSize: number;
  /** Dynamic and differencing disks: absolute offset of the dynamic header. */
  headerOffset?: number;
  /** Default: now. */
  timestamp?: Date;
  /** Default: 16 random bytes. */
  uniqueId?: Uint8Array;
  /** Four ASCII characters; default {@link DEFAULT_CREATOR_APPLICATION}. */
  creatorApplication?: string;
  creatorVersion?: number;
}

function requireSize(name: string, size: unknown): number {
  if (typeof size !== 'number') throw new TypeError(`${name} must be a number, got ${describeValue(size)}`);
  if (!Number.isSafeInteger(size) || size <= 0 || size % SECTOR_SIZE !== 0 || size > MAX_VIRTUAL_SIZE) {
    throw new RangeError(`${name} must be a positive multiple of ${SECTOR_SIZE} up to ${MAX_VIRTUAL_SIZE}, got ${size}`);
  }
  return size;
}

/** VHD timestamp (seconds since 2000-01-01Z, u32) of a date. */
export function vhdTimestamp(date: Date): number {
  const seconds = Math.floor((date.getTime() - VHD_EPOCH_MS) / 1000);
  return Math.min(Math.max(seconds, 0), 0xffff_ffff);
}

/** Build a 512-byte footer with geometry, creator, timestamp, unique id and checksum filled in. */
export function encodeFooter(options: FooterOptions): Uint8Array {
  const size = requireSize('virtualSize', options.virtualSize);
  const type = DISK_TYPE[options.diskType];
  if (type === undefined) throw new RangeError(`diskType must be fixed, dynamic or differencing, got ${String(options.diskType)}`);
  const uniqueId = options.uniqueId ?? randomBytes(UNIQUE_ID_BYTES);
  if (!(uniqueId instanceof Uint8Array) || uniqueId.length !== UNIQUE_ID_BYTES) {
    throw new RangeError(`uniqueId must be ${UNIQUE_ID_BYTES} bytes, got ${describeValue(uniqueId)}`);
  }
  const creator = options.creatorApplication ?? DEFAULT_CREATOR_APPLICATION;
  if (!/^[\x20-\x7e\0]{4}$/.test(creator)) throw new RangeError(`creatorApplication must be 4 ASCII characters, got ${JSON.stringify(creator)}`);
  let dataOffset = NO_DATA_OFFSET;
  if (options.diskType !== 'fixed') {
    const headerOffset = options.headerOffset;
    if (headerOffset === undefined || !Number.isSafeInteger(headerOffset) || headerOffset < 0) {
      throw new RangeError(`a ${options.diskType} footer needs a non-negative integer headerOffset, got ${String(headerOffset)}`);
    }
    dataOffset = BigInt(headerOffset);
  }
  const bytes = new Uint8Array(FOOTER_SIZE);
  const geometry = chsGeometry(size);
  setAscii(bytes, FOOTER.cookie, FOOTER_COOKIE);
  setU32(bytes, FOOTER.features, FEATURES_RESERVED);
  setU32(bytes, FOOTER.fileFormatVersion, FORMAT_VERSION);
  setU64(bytes, FOOTER.dataOffset, dataOffset);
  setU32(bytes, FOOTER.timestamp, vhdTimestamp(options.timestamp ?? new Date()));
  setAscii(bytes, FOOTER.creatorApplication, creator);
  setU32(bytes, FOOTER.creatorVersion, options.creatorVersion ?? DEFAULT_CREATOR_VERSION);
  setU32(bytes, FOOTER.creatorHostOs, HOST_OS_WINDOWS);
  setU64(bytes, FOOTER.originalSize, BigInt(size));
  setU64(bytes, FOOTER.currentSize, BigInt(size));
  setU32(bytes, FOOTER.diskGeometry, geometry.cylinders * 0x1_0000 + geometry.heads * 0x100 + geometry.sectorsPerTrack);
  setU32(bytes, FOOTER.diskType, type);
  bytes.set(uniqueId, FOOTER.uniqueId.offset);
  setU32(bytes, FOOTER.checksum, vhdChecksum(bytes, FOOTER.checksum));
  return bytes;
}

export type AzureSizeMode = 'round-up' | 'refuse';

/**
 * The virtual size Azure accepts for a fixed VHD of `size` bytes: `size` itself when it is a multiple of
 * 1 MiB; otherwise the next multiple (`round-up`) or a {@link VhdFormatError} `VhdNotAzureAligned` (`refuse`).
 */
export function azureFixedSize(size: number, mode: AzureSizeMode): number {
  requireSize('size', size);
  if (mode !== 'round-up' && mode !== 'refuse') throw new RangeError(`mode must be 'round-up' or 'refuse', got ${String(mode)}`);
  if (size % AZURE_SIZE_ALIGNMENT === 0) return size;
  const rounded = Math.ceil(size / AZURE_SIZE_ALIGNMENT) * AZURE_SIZE_ALIGNMENT;
  if (mode === 'refuse' || rounded > MAX_VIRTUAL_SIZE) {
    throw new VhdFormatError('VhdNotAzureAligned', 'footer.currentSize',
      `Azure needs a virtual size that is a multiple of 1 MiB; ${size} bytes is not (the next is ${rounded})`);
  }
  return rounded;
}

/**
 * Rewrite a (dynamic or differencing) footer as the fixed-disk footer Azure keeps in a page blob's last page:
 * disk type 2, data offset all ones, checksum recomputed. Other fields are kept, unless `virtualSize` is
 * given (e.g. after {@link azureFixedSize} rounded it up): then both sizes and the geometry follow it.
 */
export function toAzureFixedFooter(footer: VhdFooter | Uint8Array, options: { virtualSize?: number } = {}): Uint8Array {
  const source = footer instanceof Uint8Array ? footer : footer.raw;
  const bytes = parseFooter(source).raw; // validates, and copies
  setU32(bytes, FOOTER.diskType, DISK_TYPE.fixed);
  setU64(bytes, FOOTER.dataOffset, NO_DATA_OFFSET);
  if (options.virtualSize !== undefined) {
    const size = requireSize('virtualSize', options.virtualSize);
    const g = chsGeometry(size);
    setU64(bytes, FOOTER.originalSize, BigInt(size));
    setU64(bytes, FOOTER.currentSize, BigInt(size));
    setU32(bytes, FOOTER.diskGeometry, g.cylinders * 0x1_0000 + g.heads * 0x100 + g.sectorsPerTrack);
  }
  setU32(bytes, FOOTER.checksum, vhdChecksum(bytes, FOOTER.checksum));
  return bytes;
}

function hex(value: number): string {
  return value.toString(16).padStart(8, '0');
}
