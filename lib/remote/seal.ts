/**
 * Extents through the SSE decision of the page-blob layer, for {@link AzurePageStore.uploadExtents}: each
 * extent is encrypted under the account's current AEK generation when encryption is enabled and the mode is
 * not `base-image` (lib/blob/page-blob-service.ts, putPages), else passed through as plaintext (tag 0).
 *
 * All-zero plaintext pages are dropped here, before encryption (their ciphertext would not be zero): they stay
 * unallocated on Azure and read back as zeros, as a sparse upload should.
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
  for await (const { offset, data } of source) {
    if (data.length % PAGE_SIZE !== 0 || offset % PAGE_SIZE !== 0) throw new RangeError(`extents must be page aligned, got ${offset}+${data.length}`);
    const runs = [...nonZeroRuns(data, whole, (n) => { stats.bytesSkipped += n * PAGE_SIZE; })];
    if (runs.length === 0) continue;
    const encrypt = mode === 'account' && (await blobs.accounts.isEncryptionEnabled(account));
    const current = await blobs.gate(account);
    // The cipher is used synchronously right after it is handed out (AccountService may wipe it at any await).
    const out: UploadExtent[] = runs.map((r) => {
      const at = offset + r.start * PAGE_SIZE;
      const plain = data.subarray(r.start * PAGE_SIZE, r.end * PAGE_SIZE);
      return encrypt
        ? { offset: at, data: current.cipher.encrypt(plain, at / PAGE_SIZE), tag: current.generation }
        : { offset: at, data: plain, tag: PLAINTEXT_TAG };
    });
    yield* out;
  }
}
