/**
 * AzurePageStore: the PageStore (lib/store/types.ts) on Azure Blob Storage, through `@azure/storage-blob`.
 * One vdcrypt account is one Azure storage account (one BlobServiceClient: connection string, account key,
 * SAS URL, or the Azurite development account); container and blob names map directly (names.ts).
 *
 * Page bytes in Azure are exactly what the local store keeps: the bytes handed to writePages (ciphertext for
 * encrypted pages, plaintext for base-image pages), so any Azure client downloads the same disk. The per-page
 * tag and write version live in a companion block blob `<blob>.vdcrypt-state` (state.ts), read and written
 * with ETags (`If-Match`, `If-None-Match: *`, conditional GET `If-None-Match: <etag>` → 304).
 *
 * Crash consistency (write-ahead intent, then data, then commit). A page's tag in the state and its bytes in
 * Azure never disagree, whatever request is lost:
 *
 *   writePages(R, tag g)        state blob (If-Match)             page blob (Put Page, CRC64)
 *   1 intent                    pending += {R, g, crc64(data)}──▶
 *   2 data                                                        Put Page R  (atomic per request)
 *   3 commit                    pending -= R; runs[R] = (g, v+1)
 *
 *   crash after 1: R pending, bytes old        crash after 2: R pending, bytes new
 *   recovery (first access after a crash, under the blob's lock, before anything else):
 *     pending write  → download R, compare CRC64: equal → commit g (and mark an upload chunk done); else drop
 *     pending clear  → pages Azure reports unallocated (Get Page Ranges) leave the runs; the rest keep their tag
 *     pending shrink → runs are cut at the size Azure reports
 *
 * Bulk uploads into pages that hold nothing (an import into a new blob) write one fill intent instead, before
 * their first Put Page: {tag, the empty spans}. Recovery commits the pages of those spans that Get Page Ranges
 * shows allocated (each Put Page landed whole or not at all, and nothing else wrote there), so a 1 GiB import
 * costs two state writes, not two per 32 MiB (upload.ts).
 *
 * Reads take the state's runs and Get Page Ranges together: only pages allocated in both are downloaded (holes
 * are never fetched) and a page the state holds but Azure lacks is `StoreCorrupt`. Snapshots are Azure
 * snapshots of the page blob; the state blob is snapshotted first and the data snapshot's metadata names that
 * state snapshot (`vdcrypt_store_state`), so each snapshot carries its own tags atomically. Diffs use Get Page
 * Ranges `prevsnapshot` where the server has it (Azurite answers 501, #812) and otherwise the version stamps of
 * the two state snapshots.
 *
 * Scope: one writer per blob (as a disk attached to one VM). Calls from this process on one blob run one at a
 * time in call order; a second process writing the same blob is detected by the state blob's ETag (its update
 * is re-applied to the fresh state) but its in-flight intents are not fenced. Metadata names come back
 * lowercase (HTTP headers).
 *
 * Files: clients.ts (accounts → SDK clients), state-store.ts (the state blob: ETags, cache), recovery.ts (first
 * access after a crash), pages.ts (write, clear, shrink and read under the protocol), snapshots.ts (snapshots
 * and diffs), upload.ts (bulk upload), seal.ts and cipher-pool.ts (the upload's encryption pass and its buffers),
 * errors.ts (Azure errors → StoreError codes).
 */
import type { BlobServiceClient, StorageRetryOptions } from '@azure/storage-blob';

import { blobKey, describeRef } from '../store/common.js';
import {
  type BlobInfo, type BlobOrSnapshotRef, type BlobRef, type ContainerInfo, type CreateBlobOptions, type DiffResult,
  isSnapshotRef, type Metadata, type PageRange, type PageStore, type ReadResult, type SequenceNumberAction,
  type SnapshotRef, StoreError, type TaggedRange, type WriteConditions,
} from '../store/index.js';
import { clip, pagesOfRange, toTaggedRanges } from '../store/ranges.js';
import * as v from '../store/validate.js';
import { type AzureAccountConfig, AzureClients, DEFAULT_RETRY } from './clients.js';
import { azureErrorCode, azureStatus, ignoreNotFound, RemoteError, toStoreError } from './errors.js';
import { KeyedMutex } from './mutex.js';
import { checkAzureMetadata, STATE_SUFFIX, userMetadata } from './names.js';
import { clearTagged, readTagged, resizeTagged, writeTagged } from './pages.js';
import { Snapshots } from './snapshots.js';
import { StateStore } from './state-store.js';
import { type ExtentSource, runUpload, type UploadOptions, type UploadResult } from './upload.js';

export { type AzureAccountConfig, DEFAULT_RETRY } from './clients.js';
export { SNAPSHOT_STATE_KEY } from './snapshots.js';

export interface AzurePageStoreOptions {
  /** vdcrypt account name → the Azure storage account that holds its containers. */
  accounts: Record<string, AzureAccountConfig>;
  /** The SDK's retry policy (exponential backoff on 5xx, timeouts and connection errors). */
  retry?: StorageRetryOptions;
}

export class AzurePageStore implements PageStore {
  readonly #clients: AzureClients;
  readonly #states: StateStore;
  readonly #snapshots: Snapshots;
  readonly #mutex = new KeyedMutex();
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(options: AzurePageStoreOptions) {
    if (typeof options !== 'object' || options === null || typeof options.accounts !== 'object' || options.accounts === null) {
      throw new TypeError('options.accounts must map account names to Azure connection settings');
    }
    this.#clients = new AzureClients({ ...options.accounts }, { ...DEFAULT_RETRY, ...options.retry });
    this.#states = new StateStore(this.#clients);
    this.#snapshots = new Snapshots(this.#clients, this.#states);
  }

  /** The Azure client of an account (for tools that need the raw SDK, e.g. diagnostics). */
  service(account: string): BlobServiceClient {
    return this.#clients.service(account);
  }

  // ---- containers ----------------------------------------------------------------------------------------

  createContainer(account: string, container: string, metadata?: Metadata): Promise<void> {
    return this.#call(null, `create container ${account}/${container}`, async () => {
      const md = checkAzureMetadata(metadata);
      await this.#clients.container(account, container).create({ metadata: md });
    });
  }

  deleteContainer(account: string, container: string): Promise<void> {
    return this.#call(null, `delete container ${account}/${container}`, async () => {
      await this.#clients.container(account, container).delete();
      this.#states.forgetContainer(account, container);
    });
  }

  listContainers(account: string): Promise<ContainerInfo[]> {
    return this.#call(null, `list containers of ${account}`, async () => {
      const out: ContainerInfo[] = [];
      for await (const c of this.service(account).listContainers({ includeMetadata: true })) {
        out.push({ account, container: c.name, metadata: { ...c.metadata }, createdAt: c.properties.lastModified });
      }
      return out.sort((x, y) => (x.container < y.container ? -1 : 1));
    });
  }

  listBlobs(account: string, container: string): Promise<BlobInfo[]> {
    return this.#call(null, `list blobs of ${account}/${container}`, async () => {
      const names: string[] = [];
      for await (const b of this.#clients.container(account, container).listBlobsFlat()) {
        if (!b.name.endsWith(STATE_SUFFIX)) names.push(b.name);
      }
      names.sort();
      return Promise.all(names.map((blob) => this.getBlob({ account, container, blob })));
    });
  }

  // ---- blobs ---------------------------------------------------------------------------------------------

  createBlob(ref: BlobRef, size: number, options: CreateBlobOptions = {}): Promise<BlobInfo> {
    return this.#call(ref, () => `create ${describeRef(ref)}`, async () => {
      v.checkBlobSize(size);
      const metadata = checkAzureMetadata(options.metadata);
      const sequenceNumber = v.checkInteger('sequenceNumber', options.sequenceNumber ?? 0);
      const overwrite = options.overwrite === true;
      if (overwrite) await this.#deleteBoth(ref, false);
      try {
        await this.#clients.pageBlob(ref).create(size, {
          metadata, blobSequenceNumber: sequenceNumber, conditions: overwrite ? {} : { ifNoneMatch: '*' },
        });
      } catch (err) {
        const code = azureErrorCode(err);
        if (code === 'BlobAlreadyExists' || azureStatus(err) === 412 || code === 'ConditionNotMet') {
          throw new StoreError('BlobAlreadyExists', `blob ${describeRef(ref)} already exists`, { cause: err });
        }
        throw err;
      }
      // A fresh state replaces any left by an interrupted delete.
      await this.#states.create(ref);
      return this.#info(ref);
    });
  }

  getBlob(ref: BlobOrSnapshotRef): Promise<BlobInfo> {
    return this.#call(ref, () => `get ${describeRef(ref)}`, () => this.#info(ref));
  }

  setMetadata(ref: BlobRef, metadata: Metadata): Promise<BlobInfo> {
    return this.#call(ref, () => `set metadata of ${describeRef(ref)}`, async () => {
      const md = checkAzureMetadata(metadata);
      this.#requireBase(ref);
      await this.#clients.pageBlob(ref).setMetadata(md);
      return this.#info(ref);
    });
  }

  deleteBlob(ref: BlobRef): Promise<void> {
    return this.#call(ref, () => `delete ${describeRef(ref)}`, async () => {
      this.#requireBase(ref);
      await this.#deleteBoth(ref, true);
    });
  }

  resizeBlob(ref: BlobRef, size: number): Promise<BlobInfo> {
    return this.#call(ref, () => `resize ${describeRef(ref)}`, async () => {
      v.checkBlobSize(size);
      this.#requireBase(ref);
      await resizeTagged(await this.#states.open(ref), size);
      return this.#info(ref);
    });
  }

  setSequenceNumber(ref: BlobRef, action: SequenceNumberAction, value?: number): Promise<BlobInfo> {
    return this.#call(ref, () => `set sequence number of ${describeRef(ref)}`, async () => {
      const a = v.checkSequenceAction(action, value);
      this.#requireBase(ref);
      await this.#clients.pageBlob(ref).updateSequenceNumber(a.action, a.value);
      return this.#info(ref);
    });
  }

  // ---- pages ---------------------------------------------------------------------------------------------

  writePages(ref: BlobRef, offset: number, data: Uint8Array, tag: number, conditions?: WriteConditions): Promise<void> {
    let copy: Buffer | undefined;
    try {
      v.checkWriteData(data);
      copy = Buffer.from(data); // the caller may reuse `data` as soon as we return
    } catch { /* reported by the checks below, inside the promise */ }
    return this.#call(ref, () => `write pages of ${describeRef(ref)}`, async () => {
      v.checkAligned('offset', offset, Number.MAX_SAFE_INTEGER);
      v.checkWriteData(data);
      v.checkTag(tag);
      const cond = v.checkConditions(conditions);
      this.#requireBase(ref);
      await writeTagged(ref, await this.#states.open(ref), offset, copy as Buffer, tag, cond);
    });
  }

  clearPages(ref: BlobRef, offset: number, length: number, conditions?: WriteConditions): Promise<void> {
    return this.#call(ref, () => `clear pages of ${describeRef(ref)}`, async () => {
      v.checkAligned('offset', offset, Number.MAX_SAFE_INTEGER);
      v.checkClearLength(length);
      const cond = v.checkConditions(conditions);
      this.#requireBase(ref);
      await clearTagged(ref, await this.#states.open(ref), offset, length, cond);
    });
  }

  readPages(ref: BlobOrSnapshotRef, offset: number, length: number): Promise<ReadResult> {
    return this.#call(ref, () => `read ${describeRef(ref)}`, async () => {
      v.checkReadWindow(offset, length);
      const client = this.#clients.pageBlob(ref);
      const props = await client.getProperties();
      const size = props.contentLength ?? 0;
      if (offset + length > size) {
        throw new StoreError('InvalidPageRange', `bytes ${offset}..${offset + length - 1} pass the end of ${describeRef(ref)} (${size} bytes)`);
      }
      return readTagged(ref, client, await this.#snapshots.stateOf(ref, props.metadata), offset, length);
    });
  }

  listRanges(ref: BlobOrSnapshotRef, window?: PageRange): Promise<TaggedRange[]> {
    return this.#call(ref, () => `list ranges of ${describeRef(ref)}`, async () => {
      const w = v.checkWindow(window);
      const state = await this.#snapshots.stateOf(ref);
      const { start, end } = w === undefined ? { start: 0, end: Number.MAX_SAFE_INTEGER } : pagesOfRange(w);
      return toTaggedRanges(clip(state.runs, start, end), (s) => s.tag);
    });
  }

  async *iterateRanges(ref: BlobOrSnapshotRef, window?: PageRange): AsyncIterable<TaggedRange> {
    yield* await this.listRanges(ref, window);
  }

  // ---- snapshots (snapshots.ts) --------------------------------------------------------------------------

  createSnapshot(ref: BlobRef): Promise<string> {
    return this.#call(ref, () => `snapshot ${describeRef(ref)}`, async () => {
      this.#requireBase(ref);
      return this.#snapshots.create(ref);
    });
  }

  deleteSnapshot(ref: SnapshotRef): Promise<void> {
    return this.#call(ref, () => `delete snapshot ${describeRef(ref)}`, () => this.#snapshots.delete(ref));
  }

  diffRanges(ref: BlobOrSnapshotRef, previousSnapshot: string, window?: PageRange): Promise<DiffResult> {
    return this.#call(ref, () => `diff ${describeRef(ref)}`, async () => {
      v.checkName('previousSnapshot', previousSnapshot);
      const w = v.checkWindow(window);
      return this.#snapshots.diff(ref, previousSnapshot, w);
    });
  }

  // ---- bulk upload ---------------------------------------------------------------------------------------

  /**
   * Upload a stream of extents `{ offset, data, tag }` (page aligned, increasing, non-overlapping) to an
   * existing page blob: 4 MiB Put Pages with x-ms-content-crc64, `concurrency` in flight, all-zero pages skipped
   * (they stay unallocated), tags committed under one fill intent for empty pages and per batch of checked
   * intents for pages that held data (the protocol above). With `resume`, the
   * chunks an interrupted upload of the same source finished are not sent again. See upload.ts.
   */
  uploadExtents(ref: BlobRef, source: ExtentSource, options: UploadOptions = {}): Promise<UploadResult> {
    return this.#call(ref, () => `upload to ${describeRef(ref)}`, async () => {
      this.#requireBase(ref);
      // Which pages Azure holds is asked beside the state's GET: recovery writes no pages, so the answer is the
      // same as after it (one round trip less before the first Put Page).
      const allocated = this.#clients.pageBlob(ref).getPageRanges();
      allocated.catch(() => undefined);
      return runUpload(await this.#states.open(ref), source, options, allocated);
    });
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------

  async close(): Promise<void> {
    this.#closed = true;
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    this.#states.clear();
    this.#snapshots.clear();
  }

  // ---- internals -----------------------------------------------------------------------------------------

  /**
   * Run one public call: closed check, then (for a blob) the blob's FIFO lock taken synchronously so calls
   * apply in call order, then Azure errors mapped to StoreErrors.
   */
  #call<T>(ref: BlobOrSnapshotRef | null, what: string | (() => string), fn: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new StoreError('StoreClosed', 'this AzurePageStore has been closed'));
    let key: string | undefined;
    try {
      if (ref !== null) key = blobKey(v.checkAnyRef(ref));
    } catch (err) {
      return Promise.reject(err);
    }
    const lock = key === undefined ? Promise.resolve(() => undefined) : this.#mutex.acquire(key);
    const run = lock.then(async (release) => {
      try {
        return await fn();
      } catch (err) {
        throw await this.#mapError(err, ref, typeof what === 'string' ? what : what());
      } finally {
        release();
      }
    });
    this.#inFlight.add(run);
    void run.then(() => this.#inFlight.delete(run), () => this.#inFlight.delete(run));
    return run;
  }

  async #mapError(err: unknown, ref: BlobOrSnapshotRef | null, what: string): Promise<unknown> {
    if (err instanceof RemoteError) return err;
    const mapped = toStoreError(err, what);
    if (mapped instanceof StoreError && mapped.code === 'BlobNotFound' && ref !== null && isSnapshotRef(ref)) {
      const base = await this.#clients.pageBlob({ account: ref.account, container: ref.container, blob: ref.blob }).exists()
        .catch(() => false);
      if (base) return new StoreError('SnapshotNotFound', `snapshot ${describeRef(ref)} does not exist`, { cause: err });
    }
    return mapped;
  }

  #requireBase(ref: BlobOrSnapshotRef): void {
    if (isSnapshotRef(ref)) throw new StoreError('OperationNotAllowedOnSnapshot', `${describeRef(ref)} is a read-only snapshot`);
  }

  async #info(ref: BlobOrSnapshotRef): Promise<BlobInfo> {
    const props = await this.#clients.pageBlob(ref).getProperties();
    const snapshot = isSnapshotRef(ref);
    const state = await this.#snapshots.stateOf(ref, props.metadata);
    return {
      account: ref.account, container: ref.container, blob: ref.blob,
      ...(snapshot ? { snapshot: ref.snapshot } : {}),
      size: props.contentLength ?? 0, sequenceNumber: props.blobSequenceNumber ?? 0,
      metadata: userMetadata(props.metadata), createdAt: props.createdOn ?? new Date(0),
      modifiedAt: props.lastModified ?? new Date(0), version: state.version,
      snapshots: snapshot ? [] : await this.#snapshots.ids(ref),
    };
  }

  async #deleteBoth(ref: BlobRef, mustExist: boolean): Promise<void> {
    const data = this.#clients.pageBlob(ref).delete({ deleteSnapshots: 'include' });
    await (mustExist ? data : ignoreNotFound(data));
    await ignoreNotFound(this.#clients.stateBlob(ref).delete({ deleteSnapshots: 'include' }));
    this.#states.forget(ref);
  }
}
