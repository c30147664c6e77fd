/**
 * The upload's one pass over an extent, in native code on a libuv pool thread (native/addon.cc, sealAsync):
 * find the runs of 512-byte pages that are not all zero, encrypt them when a key is given
 * (XtsCipher.encryptRunsAsync), and take the CRC64 (checksum.ts) of each run's output while it is in cache. The
 * main thread reads none of the bytes.
 */
import { native } from './native.js';

/** 512-byte pages: the unit of {@link nonZeroRunsAsync} and XtsCipher.encryptRunsAsync. */
export const RUN_PAGE_BYTES = 512;

/** A run of pages that are not all zero, `[start, end)` in pages from the start of the input. */
export interface PageRun {
  start: number;
  end: number;
  /** Azure's CRC64 of the run's output bytes (ciphertext when encrypted), 8 bytes little-endian. */
  crc64: Buffer;
}

/** RangeError unless `maxRunPages` is a positive integer that fits the native uint32. */
export function checkMaxRunPages(maxRunPages: number): void {
  if (!Number.isInteger(maxRunPages) || maxRunPages < 1 || maxRunPages > 0xffffffff) {
    throw new RangeError(`maxRunPages must be a positive integer, got ${String(maxRunPages)}`);
  }
}

/** Decode the native answer: little-endian uint64 triples (start, end, CRC64). */
export function decodeRuns(raw: Buffer): PageRun[] {
  const runs: PageRun[] = [];
  for (let at = 0; at < raw.length; at += 24) {
    runs.push({ start: Number(raw.readBigUInt64LE(at)), end: Number(raw.readBigUInt64LE(at + 8)), crc64: raw.subarray(at + 16, at + 24) });
  }
  return runs;
}

/** The pages the runs hold together. */
export function pagesInRuns(runs: readonly PageRun[]): number {
  return runs.reduce((n, r) => n + (r.end - r.start), 0);
}

/**
 * The runs of 512-byte pages of `src` that are not all zero, each at most `maxRunPages` long, with the CRC64 of
 * each. Do not change `src` until it settles.
 */
export async function nonZeroRunsAsync(src: Uint8Array, maxRunPages: number): Promise<PageRun[]> {
  if (!(src instanceof Uint8Array)) throw new TypeError('src must be a Uint8Array');
  if (src.length % RUN_PAGE_BYTES !== 0) throw new RangeError(`src length must be a multiple of ${RUN_PAGE_BYTES}, got ${src.length}`);
  checkMaxRunPages(maxRunPages);
  return decodeRuns(await native.sealAsync(null, src, null, 0, maxRunPages));
}
