/**
 * AES-256-XTS over runs of disk sectors (IEEE Std 1619-2007, NIST SP 800-38E).
 *
 * The data unit is one sector (512 or 4096 bytes); the tweak of sector `n` is `n` as a 128-bit little-endian
 * integer (dm-crypt `aes-xts-plain64`), so a call starting at `firstSector` encrypts sector i of the buffer
 * with tweak `firstSector + i`. Keys are 64 bytes, key1 || key2, and key1 == key2 is refused (FIPS 140-3 IG
 * C.I, formerly IG A.9) for both directions.
 *
 * Arguments are validated here and the public errors thrown; the native layer repeats every check. The key
 * schedule lives in native memory only and is wiped by {@link XtsCipher.dispose} (or when the cipher is
 * garbage-collected). Async calls copy the key schedule and hold the buffers until they settle: callers must
 * not read or write `src`/`dst` while a promise on them is pending.
 */
import { inspect } from 'node:util';

import { describeValue, XtsError } from '../errors.js';
import { native, type NativeKeyHandle } from './native.js';
import { checkMaxRunPages, decodeRuns, type PageRun, RUN_PAGE_BYTES } from './runs.js';

export const XTS_KEY_BYTES = 64;
export const AES_BLOCK_BYTES = 16;
export const SECTOR_SIZES = [512, 4096] as const;
export type SectorSize = (typeof SECTOR_SIZES)[number];
export const DEFAULT_SECTOR_SIZE: SectorSize = 512;
export const MAX_SECTOR = (1n << 64n) - 1n;

export const XTS_IMPLEMENTATIONS = ['vaes512', 'vaes', 'aesni', 'portable'] as const;
export type XtsImplementation = (typeof XTS_IMPLEMENTATIONS)[number];

export interface XtsCipherOptions {
  /** Bytes per data unit: 512 (default) or 4096. */
  sectorSize?: SectorSize;
  /** CPU path: `auto` (default) picks the fastest that runs here; naming one that does not run is an error. */
  impl?: 'auto' | XtsImplementation;
}

/** A sector number: a non-negative safe integer or a bigint up to 2^64 - 1. */
export type SectorNumber = number | bigint;

/** CPU features the dispatch looks at. */
export type CpuFeatures = ReturnType<typeof native.cpuFeatures>;

export function cpuFeatures(): CpuFeatures {
  return native.cpuFeatures();
}

/** The implementations that run on this CPU, fastest first. */
export function availableImplementations(): XtsImplementation[] {
  return native.implementations() as XtsImplementation[];
}

function requireBytes(name: string, value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${name} must be a Uint8Array or Buffer, got ${describeValue(value)}`);
  }
  return value;
}

function checkSectorNumber(first: unknown, sectors: number): void {
  if (typeof first === 'number') {
    // A safe integer plus a buffer's sector count stays far below 2^64: only the start needs checking.
    if (!Number.isSafeInteger(first)) {
      throw new RangeError(`firstSector must be an integer (a bigint above 2^53 - 1), got ${first}`);
    }
    if (first < 0) throw new RangeError(`firstSector must not be negative, got ${first}`);
    return;
  }
  if (typeof first !== 'bigint') {
    throw new TypeError(`firstSector must be a number or bigint, got ${describeValue(first)}`);
  }
  if (first < 0n) throw new RangeError(`firstSector must not be negative, got ${first}`);
  const last = first + BigInt(Math.max(sectors, 1)) - 1n;
  if (last > MAX_SECTOR) {
    throw new RangeError(`sectors ${first}..${last} pass the last tweak 2^64 - 1`);
  }
}

function overlapsPartially(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b || a.buffer !== b.buffer) return false;
  if (a.byteOffset === b.byteOffset) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

export class XtsCipher {
  readonly sectorSize: SectorSize;
  readonly implementation: XtsImplementation;
  #handle: NativeKeyHandle | null;

  constructor(key: Uint8Array, options: XtsCipherOptions = {}) {
    requireBytes('key', key);
    if (key.length !== XTS_KEY_BYTES) {
      throw new RangeError(`key must be ${XTS_KEY_BYTES} bytes (key1 || key2), got ${key.length}`);
    }
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`options must be an object, got ${describeValue(options)}`);
    }
    const sectorSize = options.sectorSize ?? DEFAULT_SECTOR_SIZE;
    if (typeof sectorSize !== 'number') {
      throw new TypeError(`sectorSize must be a number, got ${describeValue(sectorSize)}`);
    }
    if (!(SECTOR_SIZES as readonly number[]).includes(sectorSize)) {
      throw new RangeError(`sectorSize must be 512 or 4096, got ${sectorSize}`);
    }
    const impl = options.impl ?? 'auto';
    if (typeof impl !== 'string') throw new TypeError(`impl must be a string, got ${describeValue(impl)}`);
    if (impl !== 'auto' && !(XTS_IMPLEMENTATIONS as readonly string[]).includes(impl)) {
      throw new RangeError(`impl must be one of auto, ${XTS_IMPLEMENTATIONS.join(', ')}; got '${impl}'`);
    }
    if (impl !== 'auto' && !availableImplementations().includes(impl)) {
      throw new XtsError('ImplementationUnavailable',
        `the '${impl}' XTS implementation does not run on this CPU (available: ${availableImplementations().join(', ')})`,
        { status: 400 });
    }
    if (halvesEqual(key)) {
      throw new XtsError('XtsKeyHalvesEqual', 'XTS key1 and key2 must differ (IEEE 1619 / FIPS 140-3 IG C.I)',
        { status: 400 });
    }
    this.sectorSize = sectorSize as SectorSize;
    this.#handle = native.createKey(key, impl);
    this.implementation = native.keyImplementation(this.#handle) as XtsImplementation;
  }

  /** True once {@link dispose} has run. */
  get disposed(): boolean {
    return this.#handle === null;
  }

  /** Encrypt whole sectors; `src.length` must be a multiple of `sectorSize`. Returns `dst` (or a new buffer). */
  encrypt(src: Uint8Array, firstSector: SectorNumber, dst?: Uint8Array): Uint8Array {
    const handle = this.#liveHandle();
    const out = this.#checkSectors(src, firstSector, dst);
    native.crypt(handle, true, src, out, this.sectorSize, firstSector);
    return out;
  }

  /** Decrypt whole sectors; the inverse of {@link encrypt} for the same sector numbers. */
  decrypt(src: Uint8Array, firstSector: SectorNumber, dst?: Uint8Array): Uint8Array {
    const handle = this.#liveHandle();
    const out = this.#checkSectors(src, firstSector, dst);
    native.crypt(handle, false, src, out, this.sectorSize, firstSector);
    return out;
  }

  /**
   * Like {@link encrypt}, off the main thread: large inputs are split across the libuv pool (at most one
   * piece per core). Do not touch `src` or `dst` until the promise settles.
   */
  async encryptAsync(src: Uint8Array, firstSector: SectorNumber, dst?: Uint8Array): Promise<Uint8Array> {
    const handle = this.#liveHandle();
    const out = this.#checkSectors(src, firstSector, dst);
    await native.cryptAsync(handle, true, src, out, this.sectorSize, firstSector);
    return out;
  }

  /**
   * The upload's pass over an extent, off the main thread and in one read of `src`: find the runs of 512-byte
   * pages that are not all zero (each at most `maxRunPages`), encrypt those pages into `dst` at the same
   * offsets (all-zero pages are left out and their bytes in `dst` untouched) and take the CRC64 of each run's
   * ciphertext while it is in cache. Only for 512-byte sectors. Do not touch `src` or `dst` until it settles.
   */
  async encryptRunsAsync(src: Uint8Array, firstSector: SectorNumber, dst: Uint8Array, maxRunPages: number): Promise<PageRun[]> {
    const handle = this.#liveHandle();
    if (this.sectorSize !== RUN_PAGE_BYTES) throw new RangeError(`encryptRunsAsync needs ${RUN_PAGE_BYTES}-byte sectors, this cipher has ${this.sectorSize}`);
    const out = this.#checkSectors(src, firstSector, dst);
    checkMaxRunPages(maxRunPages);
    return decodeRuns(await native.sealAsync(handle, src, out, firstSector, maxRunPages));
  }

  /** Like {@link decrypt}, off the main thread. Do not touch `src` or `dst` until the promise settles. */
  async decryptAsync(src: Uint8Array, firstSector: SectorNumber, dst?: Uint8Array): Promise<Uint8Array> {
    const handle = this.#liveHandle();
    const out = this.#checkSectors(src, firstSector, dst);
    await native.cryptAsync(handle, false, src, out, this.sectorSize, firstSector);
    return out;
  }

  /**
   * Encrypt one data unit of any length >= 16 bytes with an explicit 16-byte tweak, using ciphertext stealing
   * for a final partial block (IEEE 1619 section 5.3.2). For test vectors and odd-sized units; disks use
   * {@link encrypt}.
   */
  encryptDataUnit(src: Uint8Array, tweak: Uint8Array, dst?: Uint8Array): Uint8Array {
    return this.#dataUnit(true, src, tweak, dst);
  }

  /** The inverse of {@link encryptDataUnit} (IEEE 1619 section 5.4.2). */
  decryptDataUnit(src: Uint8Array, tweak: Uint8Array, dst?: Uint8Array): Uint8Array {
    return this.#dataUnit(false, src, tweak, dst);
  }

  /** Wipe the key schedule now. Later calls throw `KeyDisposed`; disposing twice is harmless. */
  dispose(): void {
    if (this.#handle !== null) native.disposeKey(this.#handle);
    this.#handle = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toJSON(): { implementation: XtsImplementation; sectorSize: SectorSize; disposed: boolean } {
    return { implementation: this.implementation, sectorSize: this.sectorSize, disposed: this.disposed };
  }

  [inspect.custom](): string {
    return `XtsCipher { implementation: '${this.implementation}', sectorSize: ${this.sectorSize}, disposed: ${this.disposed} }`;
  }

  #liveHandle(): NativeKeyHandle {
    if (this.#handle === null) {
      throw new XtsError('KeyDisposed', 'this XtsCipher has been disposed; create a new one from the key', { status: 400 });
    }
    return this.#handle;
  }

  /** Validate a sector call and return the output buffer. */
  #checkSectors(src: Uint8Array, firstSector: SectorNumber, dst: Uint8Array | undefined): Uint8Array {
    requireBytes('src', src);
    if (src.length % this.sectorSize !== 0) {
      throw new RangeError(`src length must be a multiple of the ${this.sectorSize}-byte sector size, got ${src.length}`);
    }
    checkSectorNumber(firstSector, src.length / this.sectorSize);
    return this.#output(src, dst);
  }

  #output(src: Uint8Array, dst: Uint8Array | undefined): Uint8Array {
    if (dst === undefined) return new Uint8Array(src.length);
    requireBytes('dst', dst);
    if (dst.length !== src.length) {
      throw new RangeError(`dst must be as long as src (${src.length} bytes), got ${dst.length}`);
    }
    if (overlapsPartially(src, dst)) {
      throw new RangeError('src and dst overlap partially; pass the same view for in-place work or disjoint buffers');
    }
    return dst;
  }

  #dataUnit(encrypt: boolean, src: Uint8Array, tweak: Uint8Array, dst: Uint8Array | undefined): Uint8Array {
    const handle = this.#liveHandle();
    requireBytes('src', src);
    requireBytes('tweak', tweak);
    if (tweak.length !== AES_BLOCK_BYTES) throw new RangeError(`tweak must be 16 bytes, got ${tweak.length}`);
    if (src.length < AES_BLOCK_BYTES) {
      throw new RangeError(`an XTS data unit is at least 16 bytes, got ${src.length}`);
    }
    const out = this.#output(src, dst);
    native.dataUnit(handle, encrypt, src, out, tweak);
    return out;
  }
}

/** Constant-time comparison of key1 and key2. */
function halvesEqual(key: Uint8Array): boolean {
  let diff = 0;
  const half = XTS_KEY_BYTES / 2;
  for (let i = 0; i < half; i++) diff |= (key[i] ?? 0) ^ (key[half + i] ?? 0);
  return diff === 0;
}

/** The 16-byte XTS tweak of a sector: its number as a 128-bit little-endian integer. */
export function sectorTweak(sector: SectorNumber): Uint8Array {
  checkSectorNumber(sector, 1);
  const tweak = new Uint8Array(AES_BLOCK_BYTES);
  new DataView(tweak.buffer).setBigUint64(0, BigInt(sector), true);
  return tweak;
}
