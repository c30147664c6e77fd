/**
 * Extents through the SSE decision of the page-blob layer, for {@link AzurePageStore.uploadExtents}: each
 * extent is encrypted under the account's current AEK generation when encryption is enabled and the mode is
 * not `base-image` (lib/blob/page-blob-service.ts, putPages), else passed through as plaintext (tag 0).
 */
import type { PageBlobService, WriteMode } from '../blob/index.js';
import { PAGE_SIZE } from '../store/index.js';
import type { ExtentSource, UploadExtent } from './upload.js';

const PLAINTEXT_TAG = 0;

export async function* sealExtents(
  blobs: PageBlobService, account: string, source: AsyncIterable<{ offset: number; data: Uint8Array }> | Iterable<{ offset: number; data: Uint8Array }>,
  mode: WriteMode = 'account',
): AsyncGenerator<UploadExtent> {
  if (mode !== 'account' && mode !== 'base-image') throw new RangeError(`unknown write mode '${String(mode)}'`);
  for await (const { offset, data } of source) {
    const encrypt = mode === 'account' && (await blobs.accounts.isEncryptionEnabled(account));
    const current = await blobs.gate(account);
    // The cipher is used synchronously right after it is handed out (AccountService may wipe it at any await).
    if (!encrypt) yield { offset, data, tag: PLAINTEXT_TAG };
    else yield { offset, data: current.cipher.encrypt(data, offset / PAGE_SIZE), tag: current.generation };
  }
}

export type { ExtentSource };
