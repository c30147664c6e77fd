/**
 * Parsing of command-line values: blob addresses `account/container/blob[@snapshot]`, key addresses
 * `vault/key`, byte sizes with suffixes (`64M`, `1G`, `4096`) and on/off switches.
 */
import type { BlobOrSnapshotRef, BlobRef } from '../store/index.js';
import { UsageError } from './errors.js';

const BLOB_ADDRESS = /^([^/@\s]+)\/([^/@\s]+)\/([^@\s]+)(?:@([^@\s/]+))?$/;
const CONTAINER_ADDRESS = /^([^/@\s]+)\/([^/@\s]+)$/;
const KEY_ADDRESS = /^([^/\s]+)\/([^/\s]+)$/;
const SIZE = /^(\d+)\s*([KMGT]i?B?|B)?$/i;
const UNIT_BYTES: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** `account/container/blob` or `account/container/blob@snapshot`. */
export function parseBlobAddress(text: string): BlobOrSnapshotRef {
  const m = BLOB_ADDRESS.exec(text);
  if (m === null) throw new UsageError(`a blob is addressed as account/container/blob[@snapshot], got '${text}'`);
  const [, account = '', container = '', blob = '', snapshot] = m;
  return snapshot === undefined ? { account, container, blob } : { account, container, blob, snapshot };
}

/** A blob address that must not name a snapshot (writes, snapshots of it). */
export function parseWritableBlob(text: string): BlobRef {
  const ref = parseBlobAddress(text);
  if ('snapshot' in ref) throw new UsageError(`'${text}' names a snapshot, which is read-only; name the blob itself`);
  return ref;
}

export function parseContainerAddress(text: string): { account: string; container: string } {
  const m = CONTAINER_ADDRESS.exec(text);
  if (m === null) throw new UsageError(`a container is addressed as account/container, got '${text}'`);
  return { account: m[1] ?? '', container: m[2] ?? '' };
}

export function parseKeyAddress(text: string): { vault: string; key: string } {
  const m = KEY_ADDRESS.exec(text);
  if (m === null) throw new UsageError(`a key is addressed as vault/key, got '${text}'`);
  return { vault: m[1] ?? '', key: m[2] ?? '' };
}

/** Bytes: plain digits, or digits with K, M, G or T (powers of 1024; `KiB`, `MB` and the like read the same). */
export function parseSize(text: string, what = 'size'): number {
  const m = SIZE.exec(text.trim());
  if (m === null) throw new UsageError(`${what} must be bytes, optionally with K, M, G or T (e.g. 64M), got '${text}'`);
  const unit = (m[2] ?? '').charAt(0).toUpperCase();
  const value = Number(m[1]) * (UNIT_BYTES[unit] ?? Number.NaN);
  if (!Number.isSafeInteger(value)) throw new UsageError(`${what} '${text}' is too large`);
  return value;
}

export function parseOnOff(text: string, what: string): boolean {
  if (text === 'on' || text === 'true') return true;
  if (text === 'off' || text === 'false') return false;
  throw new UsageError(`${what} must be on or off, got '${text}'`);
}

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;
const UNIT_STEP = 1024;

/** `1.5 MiB`-style text for a byte count. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= UNIT_STEP && unit < BINARY_UNITS.length - 1) {
    value /= UNIT_STEP;
    unit++;
  }
  const text = unit === 0 ? String(value) : value.toFixed(value >= 100 ? 0 : 1).replace(/\.0$/, '');
  return `${text} ${BINARY_UNITS[unit]}`;
}
