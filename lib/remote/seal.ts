/**
 * Extents through the SSE decision of the page-blob layer, for {@link AzurePageStore.uploadExtents}: each
 * extent is encrypted under the account's current AEK generation when encryption is enabled and the mode is
 * not `base-image` (lib/blob/page-blob-service.ts, putPages), else passed through as plaintext (tag 0).
 *
 * All-zero pages of an extent to encrypt are dropped here, before encryption (their ciphertext would not be
 * zero): they stay unallocated on Azure and read back as zeros, as a sparse upload should. Each such extent
 * takes one pass on the libuv pool (native `sealAsync` through XtsCipher.encryptRunsAsync): it finds the runs of
 * pages that are not all zero (at most 4 MiB each), encrypts them, and takes each run's CRC64 while the
 * ciphertext is in cache. The runs go to upload.ts with their CRC64, so the main thread never reads a byte of
 * them before the Put Page: on this 2-core machine, where Azurite shares the cores, the zero scan and CRC64 on
 * the main thread cost more wall time than the XTS. Up to SEAL_DEPTH extents are in their pass at once.
 * Plaintext extents are passed on whole: upload.ts runs the same native pass (without a key) on them.
 *
 * The account's encryption setting is read once per call, at the first extent, and applies to the whole
 * upload: as with Azure SSE, the setting governs each write as it is made, and one upload is one write of its
 * extents. (Reading the account file per 4 MiB extent cost more than the XTS itself.) The key gate still runs
 * per extent, so a key revoked mid-upload stops it; the native pass copies the key schedule when called.
 * Ciphertext goes into 4 MiB buffers of the process's shared pool (cipher-pool.ts), handed back through
 * {@link UploadExtent.release} once the upload has sent every run cut from them: a fresh buffer per extent, or
 * a fresh set per upload, cost more in garbage collection (external memory pressure forcing mark-compacts) and
 * page faults than the XTS. The buffers start on a 64-byte boundary: there the native pass encrypts, takes the
 * CRC64 from the registers and writes the ciphertext with non-temporal stores, one pass over memory that leaves
 * the caches to Azurite and the sockets (1 GiB: 0.09 s against 0.14 s for encrypting into an unaligned buffer
 * and checksumming it after). Nothing initialises them: their first-touch page faults fall on the pool thread
 * that writes them, not on the main thread, and a reused one still holds old ciphertext (not secret); only the
 * bytes of the runs, all written by XTS, are handed out.
 */
import { availableParallelism } from 'node:os';

import type { PageBlobService, WriteMode } from '../blob/index.js';
import { describeValue } from '../errors.js';
import { MAX_WRITE_BYTES, PAGE_SIZE } from '../store/index.js';
import { type PageRun, pagesInRuns, type XtsCipher } from '../xts/index.js';
import { type CipherPool, sharedCipherPool } from './cipher-pool.js';
import type { UploadExtent } from './upload.js';

const PLAINTEXT_TAG = 0;

export interface SealOptions {
  mode?: WriteMode;
  /**
   * Receives the count of all-zero bytes dropped before encryption. (Plaintext extents are passed on whole;
   * uploadExtents counts their zero pages in its own result.)
   */
  stats?: { bytesSkipped: number };
}

export type PlainExtentSource = AsyncIterable<{ offset: number; data: Uint8Array }> | Iterable<{ offset: number; data: Uint8Array }>;

export async function* sealExtents(blobs: PageBlobService, account: string, source: PlainExtentSource,
  options: SealOptions = {}): AsyncGenerator<UploadExtent> {
  const mode = options.mode ?? 'account';
  if (mode !== 'account' && mode !== 'base-image') throw new RangeError(`unknown write mode '${String(mode)}'`);
  const stats = options.stats ?? { bytesSkipped: 0 };
  let encrypt: boolean | undefined;
  const pool = sharedCipherPool;
  // Extents whose pass is running on the pool, oldest first (SEAL_DEPTH at most before the oldest is yielded).
  const running: Promise<UploadExtent[]>[] = [];
  try {
    for await (const { offset, data } of source) {
      if (!(data instanceof Uint8Array)) throw new TypeError(`extent data must be a Uint8Array, got ${describeValue(data)}`);
      if (data.length % PAGE_SIZE !== 0 || offset % PAGE_SIZE !== 0) throw new RangeError(`extents must be page aligned, got ${offset}+${data.length}`);
      if (data.length === 0) continue;
      encrypt ??= mode === 'account' && (await blobs.accounts.isEncryptionEnabled(account));
      const current = await blobs.gate(account);
      // The cipher is handed to the native pass synchronously right after the gate (AccountService may wipe it
      // at any await); the native call copies the key schedule before it returns.
      running.push(encrypt ? sealed(pool, current.cipher, current.generation, offset, data, stats)
        : Promise.resolve([{ offset, data, tag: PLAINTEXT_TAG }]));
      if (running.length >= SEAL_DEPTH) yield* await (running.shift() as Promise<UploadExtent[]>);
    }
    while (running.length > 0) yield* await (running.shift() as Promise<UploadExtent[]>);
  } finally {
    // Stopped early (the upload failed, or the source threw): let the passes still running settle.
    await Promise.allSettled(running);
  }
}

/** Extents in flight on the pool at once: one per core, so the passes of consecutive extents overlap. */
const SEAL_DEPTH = Math.max(2, Math.min(4, availableParallelism()));
const MAX_RUN_PAGES = MAX_WRITE_BYTES / PAGE_SIZE;

async function sealed(pool: CipherPool, cipher: XtsCipher, generation: number, offset: number, data: Uint8Array,
  stats: { bytesSkipped: number }): Promise<UploadExtent[]> {
  // A buffer that may hold old ciphertext (not secret): only the bytes of the runs are written and sent.
  const { buffer, release } = pool.take(data.length);
  let runs: PageRun[];
  try {
    runs = await cipher.encryptRunsAsync(data, offset / PAGE_SIZE, buffer, MAX_RUN_PAGES);
  } catch (err) {
    release?.();
    throw err;
  }
  stats.bytesSkipped += data.length - pagesInRuns(runs) * PAGE_SIZE;
  // The buffer goes back to the pool once the upload has released every run cut from it (each run's release
  // counts once).
  let left = runs.length;
  if (left === 0) release?.();
  return runs.map((r) => {
    let released = release === undefined;
    const extent: UploadExtent = {
      offset: offset + r.start * PAGE_SIZE, data: buffer.subarray(r.start * PAGE_SIZE, r.end * PAGE_SIZE), tag: generation, crc64: r.crc64,
    };
    if (!released) {
      extent.release = () => {
        if (released) return;
        released = true;
        if (--left === 0) release?.();
      };
    }
    return extent;
  });
}
