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
 *   writePages(R, tag g)        state blob (If-Match)             page blob (Put Page, Content-MD5)
 *   1 intent                    pending += {R, g, md5(data)}  ──▶
 *   2 data                                                        Put Page R  (atomic per request)
 *   3 commit                    pending -= R; runs[R] = (g, v+1)
 *
 *   crash after 1: R pending, bytes old        crash after 2: R pending, bytes new
 *   recovery (first access after a crash, under the blob's lock, before anything else):
 *     pending write  → download R, compare MD5: equal → commit g (and mark an upload chunk done); else drop
 *     pending clear  → pages Azure reports unallocated (Get Page Ranges) leave the runs; the rest keep their tag
 *     pending shrink → runs are cut at the size Azure reports
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
 */
import {
  BlobServiceClient, type BlockBlobClient, type ContainerClient, type PageBlobClient, type StorageRetryOptions,
  StorageRetryPolicyType, StorageSharedKeyCredential,
} from '@azure/storage-blob';

import { checkConditions, checkInside, describeRef } from '../store/common.js';
import {
  type BlobInfo, type BlobOrSnapshotRef, type BlobRef, type ContainerInfo, type CreateBlobOptions, type DiffResult,
  isSnapshotRef, type Metadata, PAGE_SIZE, type PageRange, type PageStore, type ReadResult,
  type SequenceNumberAction, type SnapshotRef, StoreError, type TaggedRange, type WriteConditions,
} from '../store/index.js';
import { blobKey } from '../store/common.js';
import { clip, diffRuns, pagesOfRange, pageWindow, toTaggedRanges } from '../store/ranges.js';
import * as v from '../store/validate.js';
import { azureErrorCode, azureStatus, isDefiniteRefusal, RemoteError, toStoreError } from './errors.js';
import { KeyedMutex } from './mutex.js';
import { checkAzureMetadata, checkBlobName, checkContainerName, RESERVED_META_PREFIX, STATE_SUFFIX, userMetadata } from './names.js';
import {
  clipSpans, intersectSpans, mergeSpans, spansOfAzure, spansOfRuns, subtractSpans, toPageRanges,
} from './spans.js';
import {
  applyClear, applyShrink, type BlobState, cloneState, commitWrite, dropPending, emptyState, markDone, md5Base64,
  needsRecovery, parseState, pendingKey, type PendingWrite, serializeState,
} from './state.js';
import { type ExtentSource, runUpload, type UploadContext, type UploadOptions, type UploadResult } from './upload.js';

/** How to reach one storage account. */
export type AzureAccountConfig =
  | { connectionString: string }
  | { url: string; accountName: string; accountKey: string }
  | { sasUrl: string }
  | { client: BlobServiceClient };

export interface AzurePageStoreOptions {
  /** vdcrypt account name → the Azure storage account that holds its containers. */
  accounts: Record<string, AzureAccountConfig>;
  /** The SDK's retry policy (exponential backoff on 5xx, timeouts and connection errors). */
  retry?: StorageRetryOptions;
}

/** Retries tuned for page uploads: 5 tries, 0.5 s doubling to 16 s, 2 min per try (a 4 MiB Put Page). */
export const DEFAULT_RETRY: StorageRetryOptions = {
  retryPolicyType: StorageRetryPolicyType.EXPONENTIAL, maxTries: 5, retryDelayInMs: 500, maxRetryDelayInMs: 16_000,
  tryTimeoutInMs: 120_000,
};

/** Metadata name on a data snapshot naming the state blob's snapshot that holds its tags. */
export const SNAPSHOT_STATE_KEY = `${RESERVED_META_PREFIX}state`;

/** Downloads are merged across holes shorter than this (fewer requests, a little more data). */
const MERGE_GAP_PAGES = (256 * 1024) / PAGE_SIZE;
const STATE_WRITE_TRIES = 8;

/** The state blob of a page blob as last seen: its parsed state and ETag (undefined: no state blob yet). */
export interface LoadedState {
  state: BlobState;
  etag: string | undefined;
}

export class AzurePageStore implements PageStore {
  readonly #configs: Record<string, AzureAccountConfig>;
  readonly #retry: StorageRetryOptions;
  readonly #services = new Map<string, BlobServiceClient>();
  readonly #mutex = new KeyedMutex();
  readonly #states = new Map<string, LoadedState>();
  readonly #snapshotStates = new Map<string, BlobState>();
  /** Per account: false once the server answered Get Page Ranges `prevsnapshot` with 501. */
  readonly #diffSupported = new Map<string, boolean>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(options: AzurePageStoreOptions) {
    if (typeof options !== 'object' || options === null || typeof options.accounts !== 'object' || options.accounts === null) {
      throw new TypeError('options.accounts must map account names to Azure connection settings');
    }
    this.#configs = { ...options.accounts };
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  /** The Azure client of an account (for tools that need the raw SDK, e.g. diagnostics). */
  service(account: string): BlobServiceClient {
    v.checkName('account', account);
    let svc = this.#services.get(account);
    if (svc !== undefined) return svc;
    const cfg = this.#configs[account];
    if (cfg === undefined) {
      throw new RemoteError('AccountNotConfigured', `account '${account}' has no Azure connection configured`, { status: 404 });
    }
    const opts = { retryOptions: this.#retry, keepAliveOptions: { enable: true } };
    if ('client' in cfg) svc = cfg.client;
    else if ('connectionString' in cfg) svc = BlobServiceClient.fromConnectionString(cfg.connectionString, opts);
    else if ('sasUrl' in cfg) svc = new BlobServiceClient(cfg.sasUrl, undefined, opts);
    else svc = new BlobServiceClient(cfg.url, new StorageSharedKeyCredential(cfg.accountName, cfg.accountKey), opts);
    this.#services.set(account, svc);
    return svc;
  }

  // ---- containers ----------------------------------------------------------------------------------------

  createContainer(account: string, container: string, metadata?: Metadata): Promise<void> {
    return this.#call(null, `create container ${account}/${container}`, async () => {
      const md = checkAzureMetadata(metadata);
      await this.#container(account, container).create({ metadata: md });
    });
  }

  deleteContainer(account: string, container: string): Promise<void> {
    return this.#call(null, `delete container ${account}/${container}`, async () => {
      await this.#container(account, container).delete();
      const prefix = JSON.stringify([account, container]).slice(0, -1);
      for (const k of this.#states.keys()) if (k.startsWith(prefix)) this.#states.delete(k);
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
      for await (const b of this.#container(account, container).listBlobsFlat()) {
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
        await this.#pageBlob(ref).create(size, {
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
      const body = serializeState(emptyState());
      const res = await this.#stateBlob(ref).upload(body, body.length);
      this.#states.set(blobKey(ref), { state: emptyState(), etag: res.etag });
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
      await this.#pageBlob(ref).setMetadata(md);
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
      const loaded = await this.#settled(ref);
      const props = await this.#pageBlob(ref).getProperties();
      const shrink = size < (props.contentLength ?? 0);
      if (shrink) await this.#save(ref, loaded, (s) => { s.resize = size; });
      try {
        await this.#pageBlob(ref).resize(size);
      } catch (err) {
        if (shrink && isDefiniteRefusal(err)) await this.#save(ref, loaded, (s) => { delete s.resize; });
        throw err;
      }
      if (shrink) {
        await this.#save(ref, loaded, (s) => {
          applyShrink(s, size / PAGE_SIZE);
          s.version++;
          delete s.resize;
        });
      }
      return this.#info(ref);
    });
  }

  setSequenceNumber(ref: BlobRef, action: SequenceNumberAction, value?: number): Promise<BlobInfo> {
    return this.#call(ref, () => `set sequence number of ${describeRef(ref)}`, async () => {
      const a = v.checkSequenceAction(action, value);
      this.#requireBase(ref);
      await this.#pageBlob(ref).updateSequenceNumber(a.action, a.value);
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
      const body = copy as Buffer;
      const { start, end } = pageWindow(offset, body.length);
      const loaded = await this.#settled(ref);
      checkInside(ref, offset, body.length, (await this.#pageBlob(ref).getProperties()).contentLength ?? 0);
      checkConditions({ ifPagesUnchangedSince: cond.ifPagesUnchangedSince }, 0, loaded.state.runs, start, end);
      const md5 = md5Base64(body);
      const pending: PendingWrite = { start, end, tag, md5 };
      await this.#save(ref, loaded, (s) => { s.pending.push({ ...pending }); });
      try {
        await this.#pageBlob(ref).uploadPages(body, offset, body.length, {
          transactionalContentMD5: Buffer.from(md5, 'base64'), conditions: sequenceConditions(cond),
        });
      } catch (err) {
        // A refusal changed nothing: withdraw the intent. Otherwise recovery settles it by its MD5.
        if (isDefiniteRefusal(err)) await this.#save(ref, loaded, (s) => { dropPending(s, [pending]); });
        throw err;
      }
      await this.#save(ref, loaded, (s) => {
        dropPending(s, [pending]);
        s.version++;
        commitWrite(s, start, end, tag, s.version);
      });
    });
  }

  clearPages(ref: BlobRef, offset: number, length: number, conditions?: WriteConditions): Promise<void> {
    return this.#call(ref, () => `clear pages of ${describeRef(ref)}`, async () => {
      v.checkAligned('offset', offset, Number.MAX_SAFE_INTEGER);
      v.checkClearLength(length);
      const cond = v.checkConditions(conditions);
      this.#requireBase(ref);
      const { start, end } = pageWindow(offset, length);
      const loaded = await this.#settled(ref);
      checkInside(ref, offset, length, (await this.#pageBlob(ref).getProperties()).contentLength ?? 0);
      checkConditions({ ifPagesUnchangedSince: cond.ifPagesUnchangedSince }, 0, loaded.state.runs, start, end);
      await this.#save(ref, loaded, (s) => { s.clears.push({ start, end }); });
      try {
        await this.#pageBlob(ref).clearPages(offset, length, { conditions: sequenceConditions(cond) });
      } catch (err) {
        if (isDefiniteRefusal(err)) await this.#save(ref, loaded, (s) => { dropClear(s, start, end); });
        throw err;
      }
      await this.#save(ref, loaded, (s) => {
        dropClear(s, start, end);
        s.version++;
        applyClear(s, start, end);
      });
    });
  }

  readPages(ref: BlobOrSnapshotRef, offset: number, length: number): Promise<ReadResult> {
    return this.#call(ref, () => `read ${describeRef(ref)}`, async () => {
      v.checkReadWindow(offset, length);
      const client = this.#pageBlob(ref);
      const props = await client.getProperties();
      const size = props.contentLength ?? 0;
      if (offset + length > size) {
        throw new StoreError('InvalidPageRange', `bytes ${offset}..${offset + length - 1} pass the end of ${describeRef(ref)} (${size} bytes)`);
      }
      const state = isSnapshotRef(ref) ? await this.#snapshotState(ref, props.metadata) : (await this.#settled(ref)).state;
      const data = new Uint8Array(length);
      if (length === 0) return { data, ranges: [], version: state.version };
      const { start, end } = pageWindow(offset, length);
      const runs = clip(state.runs, start, end);
      const azure = spansOfAzure((await client.getPageRanges(start * PAGE_SIZE, (end - start) * PAGE_SIZE)).pageRange ?? []);
      const wanted = spansOfRuns(runs);
      const missing = subtractSpans(wanted, azure);
      if (missing.length > 0) {
        throw new StoreError('StoreCorrupt', `${describeRef(ref)}: page ${(missing[0] as { start: number }).start} has a tag `
          + 'but Azure reports it unallocated');
      }
      await this.#download(client, wanted, offset, data);
      return { data, ranges: toTaggedRanges(runs, (s) => s.tag), version: state.version };
    });
  }

  listRanges(ref: BlobOrSnapshotRef, window?: PageRange): Promise<TaggedRange[]> {
    return this.#call(ref, () => `list ranges of ${describeRef(ref)}`, async () => {
      const w = v.checkWindow(window);
      const state = await this.#stateOf(ref);
      const { start, end } = w === undefined ? { start: 0, end: Number.MAX_SAFE_INTEGER } : pagesOfRange(w);
      return toTaggedRanges(clip(state.runs, start, end), (s) => s.tag);
    });
  }

  async *iterateRanges(ref: BlobOrSnapshotRef, window?: PageRange): AsyncIterable<TaggedRange> {
    yield* await this.listRanges(ref, window);
  }

  // ---- snapshots -----------------------------------------------------------------------------------------

  createSnapshot(ref: BlobRef): Promise<string> {
    return this.#call(ref, () => `snapshot ${describeRef(ref)}`, async () => {
      this.#requireBase(ref);
      const loaded = await this.#settled(ref);
      if (loaded.etag === undefined) await this.#save(ref, loaded, () => undefined);
      const props = await this.#pageBlob(ref).getProperties();
      const stateSnap = await this.#stateBlob(ref).createSnapshot();
      const snap = await this.#pageBlob(ref).createSnapshot({
        metadata: { ...userMetadata(props.metadata), [SNAPSHOT_STATE_KEY]: stateSnap.snapshot ?? '' },
      });
      if (snap.snapshot === undefined) throw new StoreError('StoreIoFailed', 'Snapshot Blob returned no snapshot id');
      return snap.snapshot;
    });
  }

  deleteSnapshot(ref: SnapshotRef): Promise<void> {
    return this.#call(ref, () => `delete snapshot ${describeRef(ref)}`, async () => {
      const client = this.#pageBlob(ref);
      const props = await client.getProperties();
      await client.delete();
      const stateSnap = props.metadata?.[SNAPSHOT_STATE_KEY];
      if (stateSnap !== undefined) await ignoreNotFound(this.#stateBlob(ref).withSnapshot(stateSnap).delete());
    });
  }

  diffRanges(ref: BlobOrSnapshotRef, previousSnapshot: string, window?: PageRange): Promise<DiffResult> {
    return this.#call(ref, () => `diff ${describeRef(ref)}`, async () => {
      v.checkName('previousSnapshot', previousSnapshot);
      const w = v.checkWindow(window);
      const snapshots = await this.#snapshotIds(ref);
      if (!snapshots.includes(previousSnapshot) || (isSnapshotRef(ref) && previousSnapshot >= ref.snapshot)) {
        throw new StoreError('PreviousSnapshotNotFound', `${previousSnapshot} is not an earlier snapshot of ${describeRef(ref)}`);
      }
      const client = this.#pageBlob(ref);
      const props = await client.getProperties();
      const target = isSnapshotRef(ref) ? await this.#snapshotState(ref, props.metadata) : (await this.#settled(ref)).state;
      const previous = await this.#snapshotState({ ...ref, snapshot: previousSnapshot });
      const pages = (props.contentLength ?? 0) / PAGE_SIZE;
      const { start, end } = w === undefined ? { start: 0, end: pages } : pagesOfRange(w);
      const stop = Math.min(end, pages);
      if (stop <= start) return { updated: [], cleared: [] };
      const fromState = diffRuns(target.runs, previous.runs, start, stop, (s) => s.version);
      if (this.#diffSupported.get(ref.account) !== false) {
        const fromServer = await this.#serverDiff(client, previousSnapshot, start, stop, target, previous);
        // The server's answer is used when it is a real diff: it must agree with the write versions in the two
        // state snapshots. A server that ignores `prevsnapshot` (Azurite answers with the plain page list) or
        // answers 501 is remembered and the state's diff is used from then on.
        if (fromServer !== undefined && sameDiff(fromServer, fromState)) {
          this.#diffSupported.set(ref.account, true);
          return fromServer;
        }
        this.#diffSupported.set(ref.account, false);
      }
      return fromState;
    });
  }

  // ---- bulk upload ---------------------------------------------------------------------------------------

  /**
   * Upload a stream of extents `{ offset, data, tag }` (page aligned, increasing, non-overlapping) to an
   * existing page blob: 4 MiB Put Pages with Content-MD5, `concurrency` in flight, all-zero pages skipped
   * (they stay unallocated), tags committed per batch with the write-ahead protocol above. With `resume`, the
   * chunks an interrupted upload of the same source finished are not sent again. See upload.ts.
   */
  uploadExtents(ref: BlobRef, source: ExtentSource, options: UploadOptions = {}): Promise<UploadResult> {
    return this.#call(ref, () => `upload to ${describeRef(ref)}`, async () => {
      this.#requireBase(ref);
      const loaded = await this.#settled(ref);
      const ctx: UploadContext = {
        client: this.#pageBlob(ref),
        loaded,
        save: (mutate) => this.#save(ref, loaded, mutate),
      };
      return runUpload(ctx, source, options);
    });
  }

  /** Get Page Ranges `prevsnapshot`, limited to the pages the states know; undefined where the server lacks it. */
  async #serverDiff(client: PageBlobClient, previousSnapshot: string, start: number, stop: number, target: BlobState,
    previous: BlobState): Promise<DiffResult | undefined> {
    try {
      const res = await client.getPageRangesDiff(start * PAGE_SIZE, (stop - start) * PAGE_SIZE, previousSnapshot);
      const targetPages = clipSpans(spansOfRuns(target.runs), start, stop);
      const prevPages = clipSpans(spansOfRuns(previous.runs), start, stop);
      return {
        updated: toPageRanges(intersectSpans(spansOfAzure(res.pageRange ?? []), targetPages)),
        cleared: toPageRanges(subtractSpans(intersectSpans(spansOfAzure(res.clearRange ?? []), prevPages), targetPages)),
      };
    } catch (err) {
      if (azureStatus(err) === 501 || azureErrorCode(err) === 'NotImplemented') return undefined;
      throw err;
    }
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------

  async close(): Promise<void> {
    this.#closed = true;
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    this.#states.clear();
    this.#snapshotStates.clear();
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
      const base = await this.#pageBlob({ account: ref.account, container: ref.container, blob: ref.blob }).exists()
        .catch(() => false);
      if (base) return new StoreError('SnapshotNotFound', `snapshot ${describeRef(ref)} does not exist`, { cause: err });
    }
    return mapped;
  }

  #requireBase(ref: BlobOrSnapshotRef): void {
    if (isSnapshotRef(ref)) throw new StoreError('OperationNotAllowedOnSnapshot', `${describeRef(ref)} is a read-only snapshot`);
  }

  #container(account: string, container: string): ContainerClient {
    v.checkName('account', account);
    return this.service(account).getContainerClient(checkContainerName(container));
  }

  #pageBlob(ref: BlobOrSnapshotRef): PageBlobClient {
    const client = this.#container(ref.account, ref.container).getPageBlobClient(checkBlobName(ref.blob));
    return isSnapshotRef(ref) ? client.withSnapshot(ref.snapshot) : client;
  }

  #stateBlob(ref: BlobRef): BlockBlobClient {
    return this.#container(ref.account, ref.container).getBlockBlobClient(checkBlobName(ref.blob) + STATE_SUFFIX);
  }

  async #info(ref: BlobOrSnapshotRef): Promise<BlobInfo> {
    const props = await this.#pageBlob(ref).getProperties();
    const snapshot = isSnapshotRef(ref);
    const state = snapshot ? await this.#snapshotState(ref, props.metadata) : (await this.#settled(ref)).state;
    return {
      account: ref.account, container: ref.container, blob: ref.blob,
      ...(snapshot ? { snapshot: ref.snapshot } : {}),
      size: props.contentLength ?? 0, sequenceNumber: props.blobSequenceNumber ?? 0,
      metadata: userMetadata(props.metadata), createdAt: props.createdOn ?? new Date(0),
      modifiedAt: props.lastModified ?? new Date(0), version: state.version,
      snapshots: snapshot ? [] : await this.#snapshotIds(ref),
    };
  }

  async #snapshotIds(ref: BlobRef): Promise<string[]> {
    const ids: string[] = [];
    const container = this.#container(ref.account, ref.container);
    for await (const b of container.listBlobsFlat({ prefix: ref.blob, includeSnapshots: true })) {
      if (b.name === ref.blob && b.snapshot !== undefined && b.snapshot !== '') ids.push(b.snapshot);
    }
    return ids.sort();
  }

  async #deleteBoth(ref: BlobRef, mustExist: boolean): Promise<void> {
    const data = this.#pageBlob(ref).delete({ deleteSnapshots: 'include' });
    await (mustExist ? data : ignoreNotFound(data));
    await ignoreNotFound(this.#stateBlob(ref).delete({ deleteSnapshots: 'include' }));
    this.#states.delete(blobKey(ref));
  }

  /** The state of a blob or snapshot (settled for a blob). */
  async #stateOf(ref: BlobOrSnapshotRef): Promise<BlobState> {
    return isSnapshotRef(ref) ? this.#snapshotState(ref) : (await this.#settled(ref)).state;
  }

  /** A snapshot's state: the state blob snapshot its metadata names. Immutable, so cached. */
  async #snapshotState(ref: SnapshotRef, metadata?: Record<string, string>): Promise<BlobState> {
    const key = `${blobKey(ref)}@${ref.snapshot}`;
    const cached = this.#snapshotStates.get(key);
    if (cached !== undefined) return cached;
    const md = metadata ?? (await this.#pageBlob(ref).getProperties()).metadata;
    const stateSnap = md?.[SNAPSHOT_STATE_KEY];
    if (stateSnap === undefined) {
      throw new StoreError('StoreCorrupt', `snapshot ${describeRef(ref)} names no state snapshot (${SNAPSHOT_STATE_KEY})`);
    }
    const bytes = await this.#stateBlob(ref).withSnapshot(stateSnap).downloadToBuffer();
    const state = parseState(bytes, `${describeRef(ref)} (state ${stateSnap})`);
    this.#snapshotStates.set(key, state);
    return state;
  }

  /** The blob's state, fresh (conditional GET), with any write-ahead records of an interrupted call settled. */
  async #settled(ref: BlobRef): Promise<LoadedState> {
    const loaded = await this.#load(ref);
    if (needsRecovery(loaded.state)) await this.#recover(ref, loaded);
    return loaded;
  }

  async #load(ref: BlobRef): Promise<LoadedState> {
    const key = blobKey(ref);
    const cached = this.#states.get(key);
    const client = this.#stateBlob(ref);
    try {
      const res = await client.download(0, undefined, cached?.etag !== undefined ? { conditions: { ifNoneMatch: cached.etag } } : {});
      const bytes = await readBody(res.readableStreamBody);
      const loaded = cached ?? { state: emptyState(), etag: undefined };
      loaded.state = parseState(bytes, describeRef(ref));
      loaded.etag = res.etag;
      this.#states.set(key, loaded);
      return loaded;
    } catch (err) {
      if (azureStatus(err) === 304 && cached !== undefined) return cached;
      if (azureStatus(err) !== 404 || azureErrorCode(err) === 'ContainerNotFound') throw err;
      // No state blob: a blob created by a call interrupted before its state, or one never written. It must
      // exist and hold no pages, else its bytes have no tags.
      const ranges = await this.#pageBlob(ref).getPageRanges(0, PAGE_SIZE * 1024 * 1024);
      if ((ranges.pageRange ?? []).length > 0) {
        throw new StoreError('StoreCorrupt', `${describeRef(ref)} holds pages but has no ${STATE_SUFFIX} blob`);
      }
      const loaded: LoadedState = { state: emptyState(), etag: undefined };
      this.#states.set(key, loaded);
      return loaded;
    }
  }

  /**
   * Write the state blob: apply `mutate` to a copy of the state and upload it with `If-Match` (or
   * `If-None-Match: *` for the first one). If someone else changed it meanwhile, reload and re-apply.
   */
  async #save(ref: BlobRef, loaded: LoadedState, mutate: (s: BlobState) => void): Promise<void> {
    const client = this.#stateBlob(ref);
    for (let attempt = 0; ; attempt++) {
      const next = cloneState(loaded.state);
      mutate(next);
      const body = serializeState(next);
      try {
        const res = await client.upload(body, body.length, {
          conditions: loaded.etag !== undefined ? { ifMatch: loaded.etag } : { ifNoneMatch: '*' },
          blobHTTPHeaders: { blobContentType: 'application/json' },
        });
        loaded.state = next;
        loaded.etag = res.etag;
        return;
      } catch (err) {
        const lost = azureStatus(err) === 412 || azureErrorCode(err) === 'BlobAlreadyExists';
        if (!lost || attempt + 1 >= STATE_WRITE_TRIES) throw err;
        const fresh = await this.#load(ref);
        loaded.state = fresh.state;
        loaded.etag = fresh.etag;
      }
    }
  }

  /** Settle the write-ahead records left by an interrupted call (see the module header). */
  async #recover(ref: BlobRef, loaded: LoadedState): Promise<void> {
    const client = this.#pageBlob(ref);
    const s = loaded.state;
    const size = (await client.getProperties()).contentLength ?? 0;
    const unallocated: { start: number; end: number }[] = [];
    for (const c of s.clears) {
      const end = Math.min(c.end, size / PAGE_SIZE);
      if (end <= c.start) continue;
      const azure = spansOfAzure((await client.getPageRanges(c.start * PAGE_SIZE, (end - c.start) * PAGE_SIZE)).pageRange ?? []);
      unallocated.push(...subtractSpans([{ start: c.start, end }], azure));
    }
    const landed = new Set<string>();
    for (const p of s.pending) {
      if (p.end * PAGE_SIZE > size) continue;
      const bytes = await client.downloadToBuffer(p.start * PAGE_SIZE, (p.end - p.start) * PAGE_SIZE);
      if (md5Base64(bytes) === p.md5) landed.add(pendingKey(p));
    }
    const settled = [...s.pending];
    await this.#save(ref, loaded, (st) => {
      if (st.resize !== undefined) applyShrink(st, size / PAGE_SIZE);
      delete st.resize;
      for (const u of mergeSpans(unallocated.sort((a, b) => a.start - b.start))) applyClear(st, u.start, u.end);
      st.clears = [];
      st.version++;
      for (const p of st.pending) {
        if (!landed.has(pendingKey(p))) continue;
        commitWrite(st, p.start, p.end, p.tag, st.version);
        if (p.upload === true) markDone(st, p.start, p.end);
      }
      dropPending(st, settled);
    });
  }

  async #download(client: PageBlobClient, wanted: { start: number; end: number }[], offset: number, data: Uint8Array): Promise<void> {
    // Merge wanted spans across short holes into download windows; copy back only the wanted pages.
    const windows: { start: number; end: number; parts: { start: number; end: number }[] }[] = [];
    for (const w of wanted) {
      const last = windows[windows.length - 1];
      if (last !== undefined && w.start - last.end <= MERGE_GAP_PAGES) {
        last.end = w.end;
        last.parts.push(w);
      } else {
        windows.push({ start: w.start, end: w.end, parts: [w] });
      }
    }
    const limit = offset + data.length;
    await Promise.all(windows.map(async (win) => {
      const from = Math.max(win.start * PAGE_SIZE, offset);
      const to = Math.min(win.end * PAGE_SIZE, limit);
      const bytes = await client.downloadToBuffer(from, to - from, { concurrency: 4 });
      for (const part of win.parts) {
        const a = Math.max(part.start * PAGE_SIZE, from);
        const b = Math.min(part.end * PAGE_SIZE, to);
        if (b > a) data.set(bytes.subarray(a - from, b - from), a - offset);
      }
    }));
  }
}

function sequenceConditions(c: WriteConditions): Record<string, number> {
  const out: Record<string, number> = {};
  if (c.ifSequenceNumberLessThanOrEqual !== undefined) out.ifSequenceNumberLessThanOrEqualTo = c.ifSequenceNumberLessThanOrEqual;
  if (c.ifSequenceNumberLessThan !== undefined) out.ifSequenceNumberLessThan = c.ifSequenceNumberLessThan;
  if (c.ifSequenceNumberEqual !== undefined) out.ifSequenceNumberEqualTo = c.ifSequenceNumberEqual;
  return out;
}

function dropClear(s: BlobState, start: number, end: number): void {
  const i = s.clears.findIndex((c) => c.start === start && c.end === end);
  if (i >= 0) s.clears.splice(i, 1);
}

function sameDiff(a: DiffResult, b: DiffResult): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function ignoreNotFound(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (azureStatus(err) !== 404) throw err;
  }
}

async function readBody(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  if (stream === undefined) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks);
}
