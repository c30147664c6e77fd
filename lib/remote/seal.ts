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
 * (`encryptAsync`, which copies the key schedule when called), into a fresh ciphertext buffer, leaving the
 * main thread to the Put Page requests.
 */
import type { PageBlobService, WriteMode } from '../blob/index.js';
import { PAGE_SIZE } from '../store/index.js';
import type { UploadExtent } from './upload.js';
import { nonZeroRuns } from './zero.js';

const PLAINTEXT_TAG = 0;

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
      const sealed = await current.cipher.encryptAsync(plain, at / PAGE_SIZE, Buffer.allocUnsafeSlow(plain.length));
      return { offset: at, data: sealed, tag: current.generation };
    });
    for (const extent of await Promise.all(out)) yield extent;
  }
}
