/**
 * A {@link PageStore} that sends each call to the store holding its account: the embedded store of the home
 * or an Azure storage account (backends.ts). Blob calls route by `ref.account`, container calls by their
 * `account` argument, so the page-blob layer (lib/blob) and the pipelines above it work unchanged whichever
 * backend an account uses, including `copy` between accounts on different backends.
 *
 *   PageBlobService ──▶ RoutedPageStore ──(selector: account → { key, open })──▶ store of that key
 *                                          acct1 ─▶ "local"        ─▶ LocalPageStore(<home>/store)
 *                                          acct2 ─▶ "azure:acct2"  ─▶ AzurePageStore({ acct2: ... })
 *
 * The selector is asked once per account; a store is opened once per key, on first use (an azure-only command
 * never opens the local store, and vice versa). `close()` waits for every opened store to close. A selector
 * failure (a missing or malformed backend setting) rejects the call that needed it, with the selector's error.
 */
import { DEFAULT_FILL_CONCURRENCY, fillByWrites } from '../blob/index.js';
import {
  type BlobInfo, type BlobOrSnapshotRef, type BlobRef, type ContainerInfo, type CreateBlobOptions, type DiffResult,
  type FillExtent, type FillOptions, type FillResult, type Metadata, type PageRange, type PageStore, type ReadResult, type SequenceNumberAction, type SnapshotRef,
  StoreError, type TaggedRange, type WriteConditions,
} from '../store/index.js';
import { describeValue } from '../errors.js';

/** Which store holds `account`: accounts that share a `key` share one store, opened by the first `open`. */
export type StoreSelector = (account: string) => Promise<{ key: string; open: () => Promise<PageStore> }>;

export class RoutedPageStore implements PageStore {
  readonly #select: StoreSelector;
  readonly #byAccount = new Map<string, Promise<PageStore>>();
  readonly #byKey = new Map<string, Promise<PageStore>>();
  #closed = false;

  constructor(select: StoreSelector) {
    if (typeof select !== 'function') throw new TypeError(`select must be a function, got ${describeValue(select)}`);
    this.#select = select;
  }

  /** The store that holds `account` (opening it if needed). */
  storeFor(account: string): Promise<PageStore> {
    if (this.#closed) return Promise.reject(new StoreError('StoreClosed', 'the store is closed'));
    if (typeof account !== 'string') return Promise.reject(new TypeError(`account must be a string, got ${describeValue(account)}`));
    let store = this.#byAccount.get(account);
    if (store === undefined) {
      store = this.#select(account).then(({ key, open }) => {
        let opened = this.#byKey.get(key);
        if (opened === undefined) {
          opened = open();
          this.#byKey.set(key, opened);
        }
        return opened;
      });
      // A failed selection is not cached: fixing the setting and calling again works.
      store.catch(() => this.#byAccount.delete(account));
      this.#byAccount.set(account, store);
    }
    return store;
  }

  #of(ref: BlobOrSnapshotRef): Promise<PageStore> {
    if (typeof ref !== 'object' || ref === null) return Promise.reject(new TypeError(`ref must be a blob reference, got ${describeValue(ref)}`));
    return this.storeFor(ref.account);
  }

  async createContainer(account: string, container: string, metadata?: Metadata): Promise<void> {
    return (await this.storeFor(account)).createContainer(account, container, metadata);
  }

  async deleteContainer(account: string, container: string): Promise<void> {
    return (await this.storeFor(account)).deleteContainer(account, container);
  }

  async listContainers(account: string): Promise<ContainerInfo[]> {
    return (await this.storeFor(account)).listContainers(account);
  }

  async listBlobs(account: string, container: string): Promise<BlobInfo[]> {
    return (await this.storeFor(account)).listBlobs(account, container);
  }

  async createBlob(ref: BlobRef, size: number, options?: CreateBlobOptions): Promise<BlobInfo> {
    return (await this.#of(ref)).createBlob(ref, size, options);
  }

  async getBlob(ref: BlobOrSnapshotRef): Promise<BlobInfo> {
    return (await this.#of(ref)).getBlob(ref);
  }

  async setMetadata(ref: BlobRef, metadata: Metadata): Promise<BlobInfo> {
    return (await this.#of(ref)).setMetadata(ref, metadata);
  }

  async deleteBlob(ref: BlobRef): Promise<void> {
    return (await this.#of(ref)).deleteBlob(ref);
  }

  async resizeBlob(ref: BlobRef, size: number): Promise<BlobInfo> {
    return (await this.#of(ref)).resizeBlob(ref, size);
  }

  async setSequenceNumber(ref: BlobRef, action: SequenceNumberAction, value?: number): Promise<BlobInfo> {
    return (await this.#of(ref)).setSequenceNumber(ref, action, value);
  }

  async writePages(ref: BlobRef, offset: number, data: Uint8Array, tag: number, conditions?: WriteConditions): Promise<void> {
    return (await this.#of(ref)).writePages(ref, offset, data, tag, conditions);
  }

  /**
   * The target's bulk fill when it has one (the local store); otherwise the blob layer's writePages fallback,
   * since a router must offer the method for every account once it offers it for one.
   */
  async fillPages(ref: BlobRef, extents: AsyncIterable<FillExtent>, options: FillOptions = {}): Promise<FillResult> {
    const store = await this.#of(ref);
    if (store.fillPages !== undefined) return store.fillPages(ref, extents, options);
    return fillByWrites(store, ref, extents, options, DEFAULT_FILL_CONCURRENCY);
  }

  async clearPages(ref: BlobRef, offset: number, length: number, conditions?: WriteConditions): Promise<void> {
    return (await this.#of(ref)).clearPages(ref, offset, length, conditions);
  }

  async readPages(ref: BlobOrSnapshotRef, offset: number, length: number): Promise<ReadResult> {
    return (await this.#of(ref)).readPages(ref, offset, length);
  }

  async listRanges(ref: BlobOrSnapshotRef, window?: PageRange): Promise<TaggedRange[]> {
    return (await this.#of(ref)).listRanges(ref, window);
  }

  async *iterateRanges(ref: BlobOrSnapshotRef, window?: PageRange): AsyncIterable<TaggedRange> {
    yield* (await this.#of(ref)).iterateRanges(ref, window);
  }

  async createSnapshot(ref: BlobRef): Promise<string> {
    return (await this.#of(ref)).createSnapshot(ref);
  }

  async deleteSnapshot(ref: SnapshotRef): Promise<void> {
    return (await this.#of(ref)).deleteSnapshot(ref);
  }

  async diffRanges(ref: BlobOrSnapshotRef, previousSnapshot: string, window?: PageRange): Promise<DiffResult> {
    return (await this.#of(ref)).diffRanges(ref, previousSnapshot, window);
  }

  /** Close every store opened through this router (all of them, even when one fails; the first error wins). */
  async close(): Promise<void> {
    this.#closed = true;
    const opened = [...this.#byKey.values()];
    this.#byKey.clear();
    this.#byAccount.clear();
    const results = await Promise.allSettled(opened.map(async (p) => {
      let store: PageStore;
      try {
        store = await p;
      } catch {
        return; // never opened: nothing to close
      }
      await store.close();
    }));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}
