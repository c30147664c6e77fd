/**
 * Long operations that re-write stored pages: `encrypt` (rewrite plaintext pages, and optionally pages of older
 * AEK generations, under the account's current key) and copy blob (Azure Copy Blob: the destination follows
 * its own account's encryption setting). Per azure-sse.md, existing plaintext becomes encrypted only when it is
 * rewritten or copied while encryption is enabled.
 *
 * Both keep sparseness (only allocated pages are read and written) and work in chunks of at most 4 MiB, so
 * memory stays bounded. `encrypt` is resumable by construction: it rewrites only pages that are still
 * candidates, so a second run after an interruption continues where the first stopped. Each rewrite is
 * conditional on the pages being unchanged since they were read (`ifPagesUnchangedSince`): a concurrent write
 * is never overwritten with stale data; the chunk is read again instead.
 */
import { MAX_WRITE_BYTES, PAGE_SIZE, StoreError } from '../store/index.js';
import type { BlobOrSnapshotRef, BlobRef, TaggedRange } from '../store/index.js';
import { BlobError, throwIfAborted } from './errors.js';
import type { PageBlobService } from './page-blob-service.js';
import { type LongOperationOptions, PLAINTEXT_TAG, type Progress } from './types.js';

/** Attempts per chunk when concurrent writers keep changing it. */
const MAX_CHUNK_ATTEMPTS = 8;

export interface EncryptOptions extends LongOperationOptions {
  /** Also re-encrypt pages of older AEK generations under the current one. */
  allGenerations?: boolean;
}

export interface EncryptResult extends Progress {
  generation: number;
}

/** The first run at or after `cursor` whose tag `wanted` accepts, or undefined. */
async function nextRun(service: PageBlobService, ref: BlobOrSnapshotRef, cursor: number, size: number,
  wanted: (tag: number) => boolean): Promise<TaggedRange | undefined> {
  if (cursor >= size) return undefined;
  for await (const r of service.store.iterateRanges(ref, { start: cursor, end: size - 1 })) {
    if (r.end < cursor || !wanted(r.tag)) continue;
    return { start: Math.max(r.start, cursor), end: r.end, tag: r.tag };
  }
  return undefined;
}

async function countBytes(service: PageBlobService, ref: BlobOrSnapshotRef, wanted: (tag: number) => boolean):
  Promise<number> {
  let bytes = 0;
  for await (const r of service.store.iterateRanges(ref)) if (wanted(r.tag)) bytes += r.end - r.start + 1;
  return bytes;
}

function isConditionFailure(e: unknown): boolean {
  return e instanceof StoreError && e.code === 'ConditionNotMet';
}

/**
 * Rewrite one chunk [start, end) under the current key: read and decrypt it, re-encrypt the pages that are
 * still candidates, write them back if nothing changed meanwhile. Returns the bytes rewritten.
 */
async function rewriteChunk(service: PageBlobService, ref: BlobRef, start: number, end: number,
  wanted: (tag: number) => boolean): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const read = await service.readPagesDecrypted(ref, start, end - start);
    const current = await service.gate(ref.account);
    // Encrypt everything before the next await: the cipher is only valid until then.
    const writes: { offset: number; data: Uint8Array }[] = [];
    for (const r of read.ranges) {
      if (!wanted(r.tag) || r.tag === current.generation) continue;
      const lo = Math.max(r.start, start);
      const hi = Math.min(r.end + 1, end);
      if (hi <= lo) continue;
      const plain = read.data.subarray(lo - start, hi - start);
      writes.push({ offset: lo, data: current.cipher.encrypt(plain, lo / PAGE_SIZE) });
    }
    try {
      let bytes = 0;
      for (const w of writes) {
        await service.store.writePages(ref, w.offset, w.data, current.generation, { ifPagesUnchangedSince: read.version });
        bytes += w.data.length;
      }
      return bytes;
    } catch (e) {
      if (!isConditionFailure(e) || attempt >= MAX_CHUNK_ATTEMPTS) throw e;
    }
  }
}

/**
 * Encrypt a blob's plaintext pages (and, with `allGenerations`, pages of older AEK generations) in place under
 * the account's current AEK generation. Unallocated ranges stay unallocated.
 */
export async function encryptBlob(service: PageBlobService, ref: BlobRef, options: EncryptOptions = {}):
  Promise<EncryptResult> {
  const { generation } = await service.gate(ref.account);
  if (!(await service.accounts.isEncryptionEnabled(ref.account))) {
    throw new BlobError('AccountEncryptionDisabled',
      `account '${ref.account}' has encryption disabled; enable it before encrypting its blobs`);
  }
  const wanted = (tag: number): boolean =>
    tag === PLAINTEXT_TAG || (options.allGenerations === true && tag !== generation);
  const { size } = await service.store.getBlob(ref);
  const bytesTotal = await countBytes(service, ref, wanted);
  const progress: Progress = { bytesDone: 0, bytesTotal, bytesSkipped: size - bytesTotal };
  options.onProgress?.({ ...progress });
  for (let cursor = 0; ;) {
    throwIfAborted(options.signal);
    const run = await nextRun(service, ref, cursor, size, wanted);
    if (run === undefined) break;
    const chunkEnd = Math.min(run.end + 1, run.start + MAX_WRITE_BYTES);
    progress.bytesDone += await rewriteChunk(service, ref, run.start, chunkEnd, wanted);
    options.onProgress?.({ ...progress });
    cursor = chunkEnd;
  }
  return { ...progress, generation };
}

export interface CopyOptions extends LongOperationOptions {
  /** Replace an existing destination blob (Azure Copy Blob does). Default true. */
  overwrite?: boolean;
}

/**
 * Copy Blob: a new page blob with the source's size, metadata and allocated pages, read decrypted from the
 * source (a blob or a snapshot) and written through the destination's account rules, so a copy into an
 * encryption-enabled account is encrypted. Unallocated ranges stay unallocated.
 */
export async function copyBlob(service: PageBlobService, src: BlobOrSnapshotRef, dst: BlobRef,
  options: CopyOptions = {}): Promise<Progress> {
  await service.gate(src.account);
  await service.gate(dst.account);
  const info = await service.store.getBlob(src);
  const bytesTotal = await countBytes(service, src, () => true);
  await service.createBlob(dst, info.size, { metadata: info.metadata, overwrite: options.overwrite ?? true });
  const progress: Progress = { bytesDone: 0, bytesTotal, bytesSkipped: info.size - bytesTotal };
  options.onProgress?.({ ...progress });
  for (let cursor = 0; ;) {
    throwIfAborted(options.signal);
    const run = await nextRun(service, src, cursor, info.size, () => true);
    if (run === undefined) break;
    const chunkEnd = Math.min(run.end + 1, run.start + MAX_WRITE_BYTES);
    const plain = await service.readRange(src, run.start, chunkEnd - run.start);
    await service.putPages(dst, run.start, plain);
    progress.bytesDone += plain.length;
    options.onProgress?.({ ...progress });
    cursor = chunkEnd;
  }
  return progress;
}
