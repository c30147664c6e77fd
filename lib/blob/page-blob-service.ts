/**
 * Page blobs with Azure Storage Service Encryption (shared/reference/azure-sse.md, "Data"), on any PageStore.
 *
 *   caller ──putPages──▶ [key gate] ──encryption on?──▶ XTS(AEK gen g, tweak = page index) ──▶ store (tag g)
 *                                    └─off / base image──────────────────────────────────────▶ store (tag 0)
 *   caller ◀──readRange── decrypt each tagged run with its own generation ◀── store (bytes + tags)
 *
 * - Encryption is decided per write by the account's setting at that moment; each page keeps its own state
 *   (the store tag), so toggling the setting never touches stored data, and reads decrypt page by page.
 * - Base-image writes (marketplace images) stay plaintext even in an encryption-enabled account; every other
 *   write follows the setting.
 * - Every operation on an account first asks for its current key (the "key gate"): when the AEK cannot be
 *   unwrapped (customer key disabled, deleted, access revoked), every read and write of every blob in the
 *   account fails with the key layer's typed 403 error, plaintext pages included, as in Azure.
 * - Ciphers are used synchronously right after they are handed out (AccountService may wipe them at any await).
 * - Mutations of one blob reach the store in call order, whatever each one awaits first (the encryption
 *   setting, the key): a per-blob queue orders the hand-offs, and the store applies them in that order.
 *
 * Long operations (encrypt, copy) live in rewrite.ts; the status report in encryption-status.ts.
 */
import type {
  BlobInfo, BlobOrSnapshotRef, BlobRef, CreateBlobOptions, DiffResult, FillExtent, FillOptions, FillProgress,
  FillResult, PageRange, PageStore, SequenceNumberAction, SnapshotRef, TaggedRange, WriteConditions,
} from '../store/index.js';
import { MAX_READ_BYTES, MAX_WRITE_BYTES, PAGE_SIZE } from '../store/index.js';
import { AlignedBufferPool, type XtsCipher } from '../xts/index.js';
import { describeValue } from '../errors.js';
import { blobName, encryptionStatus } from './encryption-status.js';
import { fillByWrites } from './fill-fallback.js';
import { StoreError } from '../store/index.js';
import { type AccountKeys, type EncryptionStatus, PLAINTEXT_TAG } from './types.js';

/** How a write decides its encryption. */
export type WriteMode =
  /** Follow the account's setting now (Put Page). */
  | 'account'
  /** A base image: stored plaintext whatever the setting. */
  | 'base-image';

/** Writes in flight when a fill falls back to writePages (a store without fillPages). */
export const DEFAULT_FILL_CONCURRENCY = 4;

/** Ciphertext buffers a service keeps for reuse between fills (each 4 MiB; more are made when needed). */
const KEPT_FILL_BUFFERS = 8;

/**
 * One extent of {@link PageBlobService.fillPages}. `release`, when given, is called once `data` is no longer
 * needed: right after encryption (the ciphertext goes to its own buffer), or when the store has written a
 * plaintext extent; the producer may then reuse the buffer. It may also never be called.
 */
export interface FillPagesExtent {
  offset: number;
  data: Uint8Array;
  release?: () => void;
}

export interface FillPagesOptions {
  mode?: WriteMode;
  /** Bytes per durable batch (the store's default, 64 MiB, when left out). */
  batchBytes?: number;
  /** Called when everything up to `lastOffset` is durable (see PageStore.fillPages). */
  onBatch?: (progress: FillProgress) => void | Promise<void>;
  /** Stops the fill between extents: what was written is committed and reported, then it rejects. */
  signal?: AbortSignal;
  /** Writes in flight on a store without fillPages (default 4). */
  concurrency?: number;
}

export interface PutPagesOptions {
  mode?: WriteMode;
  conditions?: WriteConditions;
}

function requirePageAligned(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value % PAGE_SIZE !== 0) {
    throw new RangeError(`${what} must be a non-negative multiple of ${PAGE_SIZE}, got ${value}`);
  }
}

/** Refuse writes addressed to a snapshot: snapshots are read-only. */
function requireBlob(ref: BlobOrSnapshotRef): BlobRef {
  if ('snapshot' in ref && ref.snapshot !== undefined) {
    throw new StoreError('OperationNotAllowedOnSnapshot', `snapshot ${blobName(ref)} is read-only`);
  }
  return ref;
}

export class PageBlobService {
  /** Ciphertext buffers of fills, reused (see {@link fillPages}). */
  readonly #fillBuffers = new AlignedBufferPool(MAX_WRITE_BYTES, KEPT_FILL_BUFFERS);
  readonly store: PageStore;
  readonly accounts: AccountKeys;
  /** Per blob, the hand-off of the last queued mutation. */
  readonly #tails = new Map<string, Promise<unknown>>();

  constructor(store: PageStore, accounts: AccountKeys) {
    this.store = store;
    this.accounts = accounts;
  }

  // ---- containers and blobs ----------------------------------------------------------------------------

  async createContainer(account: string, container: string): Promise<void> {
    await this.accounts.getAccount(account);
    await this.gate(account);
    await this.store.createContainer(account, container);
  }

  async deleteContainer(account: string, container: string): Promise<void> {
    await this.gate(account);
    await this.store.deleteContainer(account, container);
  }

  async createBlob(ref: BlobRef, size: number, options?: CreateBlobOptions): Promise<BlobInfo> {
    await this.gate(ref.account);
    return this.store.createBlob(ref, size, options);
  }

  async getBlob(ref: BlobOrSnapshotRef): Promise<BlobInfo> {
    await this.gate(ref.account);
    return this.store.getBlob(ref);
  }

  async deleteBlob(ref: BlobRef): Promise<void> {
    await this.gate(ref.account);
    await this.store.deleteBlob(ref);
  }

  async resizeBlob(ref: BlobRef, size: number): Promise<BlobInfo> {
    requireBlob(ref);
    return this.#inOrder(ref, async () => {
      await this.gate(ref.account);
      return { call: this.store.resizeBlob(ref, size) };
    });
  }

  async setSequenceNumber(ref: BlobRef, action: SequenceNumberAction, value?: number): Promise<BlobInfo> {
    await this.gate(ref.account);
    return this.store.setSequenceNumber(ref, action, value);
  }

  async createSnapshot(ref: BlobRef): Promise<string> {
    await this.gate(ref.account);
    return this.store.createSnapshot(ref);
  }

  async deleteSnapshot(ref: SnapshotRef): Promise<void> {
    await this.gate(ref.account);
    await this.store.deleteSnapshot(ref);
  }

  // ---- pages ---------------------------------------------------------------------------------------------

  /**
   * Put Page (update): `data` (a multiple of 512 bytes, at most 4 MiB) at a 512-aligned `offset`. Encrypted
   * under the account's current AEK generation when encryption is enabled and `mode` is not `base-image`.
   * Durable when the promise resolves. Returns whether the pages were stored encrypted.
   */
  async putPages(ref: BlobRef, offset: number, data: Uint8Array, options: PutPagesOptions = {}): Promise<boolean> {
    requireBlob(ref);
    if (!(data instanceof Uint8Array)) throw new TypeError(`data must be a Uint8Array, got ${describeValue(data)}`);
    requirePageAligned('offset', offset);
    requirePageAligned('data length', data.length);
    const mode = options.mode ?? 'account';
    if (mode !== 'account' && mode !== 'base-image') throw new RangeError(`unknown write mode '${String(mode)}'`);
    return this.#inOrder(ref, async () => {
      const encrypt = mode === 'account' && (await this.accounts.isEncryptionEnabled(ref.account));
      const current = await this.gate(ref.account);
      if (!encrypt) return { call: this.store.writePages(ref, offset, data, PLAINTEXT_TAG, options.conditions).then(() => false) };
      const ciphertext = current.cipher.encrypt(data, offset / PAGE_SIZE);
      return { call: this.store.writePages(ref, offset, ciphertext, current.generation, options.conditions).then(() => true) };
    });
  }

  /**
   * Bulk fill (imports): write a stream of `{ offset, data }` extents (ascending, non-overlapping, 512-aligned,
   * at most 4 MiB each) with durability per batch instead of per call. Encryption is decided per extent
   * exactly as {@link putPages} decides it (setting and key gate at that moment, `mode`), and the extent is
   * encrypted right after its cipher is handed out. On a store with `fillPages` this is one bulk fill; on
   * another, a loop of writePages with up to `concurrency` in flight, reporting the durable prefix.
   *
   * Ordering: the fill is one mutation in the blob's queue: mutations of the blob called after it (putPages,
   * clearPages, resizeBlob) wait until it settles, so `onBatch` and the stream must not wait for them (they may
   * call the store, as import does to save its checkpoint). `data` buffers are handed over: do not modify one
   * after yielding it until the fill settles or its `release` is called (see {@link FillPagesExtent}).
   * Ciphertext is written from a few reused, page-aligned buffers, which the local store writes with
   * direct I/O.
   */
  async fillPages(ref: BlobRef, extents: AsyncIterable<FillPagesExtent>, options: FillPagesOptions = {}):
    Promise<FillResult> {
    requireBlob(ref);
    if (typeof extents !== 'object' || extents === null || typeof extents[Symbol.asyncIterator] !== 'function') {
      throw new TypeError(`extents must be an async iterable, got ${describeValue(extents)}`);
    }
    const mode = options.mode ?? 'account';
    if (mode !== 'account' && mode !== 'base-image') throw new RangeError(`unknown write mode '${String(mode)}'`);
    const concurrency = options.concurrency ?? DEFAULT_FILL_CONCURRENCY;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${String(concurrency)}`);
    }
    const storeOptions: FillOptions = {
      ...(options.batchBytes === undefined ? {} : { batchBytes: options.batchBytes }),
      ...(options.onBatch === undefined ? {} : { onBatch: options.onBatch }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
    return this.#inOrder(ref, async () => {
      await this.gate(ref.account);
      const sealed = this.#sealed(ref, extents, mode);
      const result = this.store.fillPages !== undefined
        ? await this.store.fillPages(ref, sealed, storeOptions)
        : await fillByWrites(this.store, ref, sealed, storeOptions, concurrency);
      return { call: Promise.resolve(result) };
    });
  }

  /** The extents as the store should keep them: each encrypted, or not, as putPages would decide now. */
  async *#sealed(ref: BlobRef, extents: AsyncIterable<FillPagesExtent>, mode: WriteMode): AsyncGenerator<FillExtent> {
    for await (const extent of extents) {
      if (typeof extent !== 'object' || extent === null) throw new TypeError(`an extent must be an object, got ${describeValue(extent)}`);
      const { offset, data, release } = extent;
      if (!(data instanceof Uint8Array)) throw new TypeError(`data must be a Uint8Array, got ${describeValue(data)}`);
      if (release !== undefined && typeof release !== 'function') {
        throw new TypeError(`release must be a function, got ${describeValue(release)}`);
      }
      requirePageAligned('offset', offset);
      requirePageAligned('data length', data.length);
      const encrypt = mode === 'account' && (await this.accounts.isEncryptionEnabled(ref.account));
      const current = await this.gate(ref.account);
      if (!encrypt) {
        yield release === undefined ? { offset, data, tag: PLAINTEXT_TAG } : { offset, data, tag: PLAINTEXT_TAG, release };
        continue;
      }
      const pool = this.#fillBuffers;
      const out = data.length <= pool.bufferBytes ? pool.take(data.length) : Buffer.alloc(data.length);
      current.cipher.encrypt(data, offset / PAGE_SIZE, out);
      release?.();
      yield { offset, data: out, tag: current.generation, release: () => pool.give(out) };
    }
  }

  /** Put Page (clear): the pages become unallocated and read as zeros. */
  async clearPages(ref: BlobRef, offset: number, length: number, conditions?: WriteConditions): Promise<void> {
    requireBlob(ref);
    return this.#inOrder(ref, async () => {
      await this.gate(ref.account);
      return { call: this.store.clearPages(ref, offset, length, conditions) };
    });
  }

  /**
   * Read any byte range of a blob or snapshot (at most 64 MiB per call), decrypting every encrypted page with
   * the AEK generation that wrote it. Unallocated bytes read as zeros.
   */
  async readRange(ref: BlobOrSnapshotRef, offset: number, length: number): Promise<Uint8Array> {
    return (await this.readPagesDecrypted(ref, offset, length)).data;
  }

  /** Like {@link readRange}, also returning the tagged runs and the blob version seen by the read. */
  async readPagesDecrypted(ref: BlobOrSnapshotRef, offset: number, length: number):
    Promise<{ data: Uint8Array; ranges: TaggedRange[]; version: number }> {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`offset must be a non-negative integer, got ${offset}`);
    if (!Number.isSafeInteger(length) || length < 0 || length > MAX_READ_BYTES) {
      throw new RangeError(`length must be an integer in [0, ${MAX_READ_BYTES}], got ${length}`);
    }
    await this.gate(ref.account);
    // Whole pages: a page is the XTS data unit.
    const start = Math.floor(offset / PAGE_SIZE) * PAGE_SIZE;
    const end = Math.ceil((offset + length) / PAGE_SIZE) * PAGE_SIZE;
    const pages = end - start <= MAX_READ_BYTES
      ? await this.store.readPages(ref, start, end - start)
      : await this.#readWide(ref, start, end);
    const data = pages.data; // a fresh buffer the store hands over (ReadResult.data): decrypted in place
    const ciphers = await this.ciphersFor(ref.account, pages.ranges);
    for (const range of pages.ranges) {
      if (range.tag === PLAINTEXT_TAG) continue;
      const cipher = ciphers.get(range.tag) as XtsCipher;
      const lo = Math.max(range.start, start);
      const hi = Math.min(range.end + 1, end);
      const view = data.subarray(lo - start, hi - start);
      cipher.decrypt(view, lo / PAGE_SIZE, view);
    }
    return { data: data.subarray(offset - start, offset - start + length), ranges: pages.ranges, version: pages.version };
  }

  /** Get Page Ranges: allocated pages, merged regardless of encryption state (inclusive ends). */
  async getPageRanges(ref: BlobOrSnapshotRef, window?: PageRange): Promise<PageRange[]> {
    await this.gate(ref.account);
    const merged: PageRange[] = [];
    for await (const r of this.store.iterateRanges(ref, window)) {
      const last = merged[merged.length - 1];
      if (last !== undefined && last.end + 1 === r.start) last.end = r.end;
      else merged.push({ start: r.start, end: r.end });
    }
    return merged;
  }

  /** Get Page Ranges with `prevsnapshot`: what changed since a snapshot. */
  async diffRanges(ref: BlobOrSnapshotRef, previousSnapshot: string, window?: PageRange): Promise<DiffResult> {
    await this.gate(ref.account);
    return this.store.diffRanges(ref, previousSnapshot, window);
  }

  /** Per-range encryption state, byte counts and `serverEncrypted`, for a blob or a snapshot. */
  async getEncryptionStatus(ref: BlobOrSnapshotRef): Promise<EncryptionStatus> {
    await this.gate(ref.account);
    const info = await this.store.getBlob(ref);
    return encryptionStatus(ref, info.size, this.store.iterateRanges(ref));
  }

  // ---- shared with rewrite.ts ----------------------------------------------------------------------------

  /**
   * The key gate: the account's current cipher, or the typed key refusal. Every operation passes it first, so
   * a revoked key blocks plaintext pages too.
   */
  gate(account: string): Promise<{ generation: number; cipher: XtsCipher }> {
    return this.accounts.getCipher(account);
  }

  /** The ciphers of every AEK generation among `ranges`, fetched before any of them is used. */
  async ciphersFor(account: string, ranges: readonly TaggedRange[]): Promise<Map<number, XtsCipher>> {
    const generations = [...new Set(ranges.map((r) => r.tag).filter((t) => t !== PLAINTEXT_TAG))];
    const found = await Promise.all(generations.map((g) => this.accounts.getCipher(account, g)));
    return new Map(found.map((f) => [f.generation, f.cipher]));
  }

  /**
   * Run `issue` after the previously queued mutations of the same blob have been handed to the store, and
   * return the store's answer. `issue` resolves once it has called the store (its own awaits happen in
   * order) with that call wrapped, so the store call itself is not waited for before the next one is issued.
   */
  #inOrder<T>(ref: BlobRef, issue: () => Promise<{ call: Promise<T> }>): Promise<T> {
    const key = blobName(ref);
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const handedOff = previous.then(issue, issue);
    const settled = handedOff.then(() => undefined, () => undefined);
    this.#tails.set(key, settled);
    void settled.then(() => {
      if (this.#tails.get(key) === settled) this.#tails.delete(key);
    });
    return handedOff.then((issued) => issued.call);
  }

  /** A read wider than one store call: stitched from several. */
  async #readWide(ref: BlobOrSnapshotRef, start: number, end: number):
    Promise<{ data: Uint8Array; ranges: TaggedRange[]; version: number }> {
    const data = new Uint8Array(end - start);
    const ranges: TaggedRange[] = [];
    let version = 0;
    for (let off = start; off < end; off += MAX_READ_BYTES) {
      const part = await this.store.readPages(ref, off, Math.min(MAX_READ_BYTES, end - off));
      data.set(part.data, off - start);
      ranges.push(...part.ranges);
      version = part.version;
    }
    return { data, ranges, version };
  }
}
