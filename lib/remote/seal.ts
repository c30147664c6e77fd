/**
 * Extents through the SSE decision of the page-blob layer, for {@link AzurePageStore.uploadExtents}: each
 * extent is encrypted under the account's current AEK generation when encryption is enabled and the mode is
 * not `base-image` (lib/blob/page-blob-service.ts, putPages), else passed through as plaintext (tag 0).
 *
 * All-zero plaintext pages are dropped here, before encryption (their ciphertext would not be zero): they stay
 * unallocated on Azure and read back as zeros, as a sparse upload should. Extents with a tag >= 1 are therefore
 * never all-zero plaintext, and upload.ts sends their ciphertext without scanning it again.
 *
 * The account's encryption setting is read once per call, at the first extent that holds data, and applies to
 * the whole upload: as with Azure SSE, the setting governs each write as it is made, and one upload is one
 * write of its extents. (Reading the account file per 4 MiB extent cost more than the XTS itself.) The key
 * gate still runs per extent, so a key revoked mid-upload stops it. XTS runs on the libuv pool
 * (`encryptAsync`, which copies the key schedule when called), leaving the main thread to the Put Page
 * requests. Ciphertext goes into buffers of a per-call pool, handed back through {@link UploadExtent.release}
 * once the upload has sent them: a fresh 4 MiB buffer per extent cost more in garbage collection (external
 * memory pressure forcing mark-compacts) and page faults than the XTS. Ciphertext is not secret, so the pool's
 * buffers are uninitialised (`allocUnsafeSlow`) and every byte handed out is overwritten by XTS first.
 */
import type { PageBlobService, WriteMode } from '../blob/index.js';
import { MAX_WRITE_BYTES, PAGE_SIZE } from '../store/index.js';
import type { UploadExtent } from './upload.js';
import { nonZeroRuns } from './zero.js';

const PLAINTEXT_TAG = 0;
/** Free buffers a pool keeps (beyond this, returned buffers are left to the garbage collector). */
const POOL_KEEP = 32;

/** Reusable ciphertext buffers of {@link MAX_WRITE_BYTES}; longer extents get their own buffer. */
class CipherPool {
  readonly #free: Buffer[] = [];

  /** A buffer of `length` bytes (uninitialised) and the function that returns it to the pool. */
  take(length: number): { buffer: Buffer; release?: () => void } {
    if (length > MAX_WRITE_BYTES) return { buffer: Buffer.allocUnsafeSlow(length) };
    const whole = this.#free.pop() ?? Buffer.allocUnsafeSlow(MAX_WRITE_BYTES);
    let returned = false;
    return {
      buffer: whole.subarray(0, length),
      release: () => {
        if (returned) return;
        returned = true;
        if (this.#free.length < POOL_KEEP) this.#free.push(whole);
      },
    };
  }
}

export interface SealOptions {
  mode?: WriteMode;
  /** Receives the count of all-zero plaintext bytes dropped. */
  stats?: { bytesSkipped: number };
}

export type PlainExtentSource = AsyncIterable<{ offset: number; data: Uint8Array }> | Iterable<{ offset: number; data: Uint8Array }>;

export async function* sealExtents(blobs: PageBlobService, account: string, source: PlainExtentSource,
  options: SealOptions = {}): AsyncGenerator<UploadExtent> {
  const mode = options.mode ?? 'account';
  if (mode !== 'account' && mode !== 'base-image') throw new RangeError(`unknown write mode '${String(mode)}'`);
  const stats = options.stats ?? { bytesSkipped: 0 };
  const whole = Number.MAX_SAFE_INTEGER;
  let encrypt: boolean | undefined;
  const pool = new CipherPool();
  for await (const { offset, data } of source) {
    if (data.length % PAGE_SIZE !== 0 || offset % PAGE_SIZE !== 0) throw new RangeError(`extents must be page aligned, got ${offset}+${data.length}`);
    const runs = [...nonZeroRuns(data, whole, (n) => { stats.bytesSkipped += n * PAGE_SIZE; })];
    if (runs.length === 0) continue;
    encrypt ??= mode === 'account' && (await blobs.accounts.isEncryptionEnabled(account));
    const current = await blobs.gate(account);
    // The cipher is handed to encryptAsync synchronously right after the gate (AccountService may wipe it at
    // any await); the native call copies the key schedule before it returns.
    const out: Promise<UploadExtent>[] = runs.map(async (r) => {
      const at = offset + r.start * PAGE_SIZE;
      const plain = data.subarray(r.start * PAGE_SIZE, r.end * PAGE_SIZE);
      if (!encrypt) return { offset: at, data: plain, tag: PLAINTEXT_TAG };
      // Ciphertext is not secret: an uninitialised buffer, every byte of it overwritten by XTS.
      const { buffer, release } = pool.take(plain.length);
      const sealed = await current.cipher.encryptAsync(plain, at / PAGE_SIZE, buffer);
      return { offset: at, data: sealed, tag: current.generation, ...(release !== undefined ? { release } : {}) };
    });
    for (const extent of await Promise.all(out)) yield extent;
  }
}
