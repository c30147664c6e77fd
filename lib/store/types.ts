/**
 * The page store interface: containers of page blobs addressed `account/container/blob`, stored as 512-byte
 * pages that each carry an opaque integer tag chosen by the caller.
 *
 * Names and limits mirror the Azure Storage REST API for page blobs: Put Blob (`x-ms-blob-type: PageBlob`,
 * `x-ms-blob-content-length` a multiple of 512 up to 8 TiB), Put Page (`x-ms-page-write: update|clear`, at most
 * 4 MiB, `416 InvalidPageRange` past the end, `x-ms-if-sequence-number-le|lt|eq` → `412
 * SequenceNumberConditionNotMet`), Get Page Ranges (`?comp=pagelist`, inclusive ends, `prevsnapshot` diff),
 * Set Blob Properties (`x-ms-blob-content-length`, `x-ms-sequence-number-action: max|update|increment`) and
 * Snapshot Blob.
 *
 * The store knows nothing of encryption. A tag is stored beside each page and returned with it; the store
 * guarantees that a page's bytes and its tag are written (and survive a crash) together, never one without the
 * other. The blob layer uses tag 0 for plaintext and g >= 1 for AEK generation g; the store does not care.
 *
 * Byte offsets are numbers (8 TiB < 2^53). Page ranges use Azure's inclusive `end`: a range of one page at
 * offset 0 is `{ start: 0, end: 511 }`.
 */

/** Bytes per page (Azure page blobs; also the XTS data unit). */
export const PAGE_SIZE = 512;
/** Largest page blob: 8 TiB. */
export const MAX_BLOB_SIZE = 8 * 1024 ** 4;
/** Most bytes one Put Page (update) may carry: 4 MiB. */
export const MAX_WRITE_BYTES = 4 * 1024 ** 2;
/** Most bytes one {@link PageStore.readPages} call returns; callers loop over bigger windows. */
export const MAX_READ_BYTES = 64 * 1024 ** 2;
/** Largest tag: tags are non-negative 32-bit integers. */
export const MAX_TAG = 0xffff_ffff;
/** Largest sequence number (Azure: 2^63 - 1; we are limited to safe integers). */
export const MAX_SEQUENCE_NUMBER = Number.MAX_SAFE_INTEGER;

/** A byte range, page aligned, with an inclusive end (Azure `PageRange{Start,End}`). */
export interface PageRange {
  start: number;
  end: number;
}

/** An allocated page range whose pages all carry `tag`; lists hold maximal runs (adjacent equal tags merge). */
export interface TaggedRange extends PageRange {
  tag: number;
}

/** Addresses a page blob. */
export interface BlobRef {
  account: string;
  container: string;
  blob: string;
}

/** Addresses a read-only snapshot of a page blob (Azure `?snapshot=<id>`). */
export interface SnapshotRef extends BlobRef {
  snapshot: string;
}

/** A blob or one of its snapshots: what reads accept. */
export type BlobOrSnapshotRef = BlobRef | SnapshotRef;

export type Metadata = Record<string, string>;

export interface ContainerInfo {
  account: string;
  container: string;
  metadata: Metadata;
  createdAt: Date;
}

export interface BlobInfo {
  account: string;
  container: string;
  blob: string;
  /** Present when this describes a snapshot. */
  snapshot?: string;
  /** Bytes, a multiple of {@link PAGE_SIZE}. */
  size: number;
  sequenceNumber: number;
  metadata: Metadata;
  createdAt: Date;
  modifiedAt: Date;
  /**
   * Change counter of the page data: it grows with every write, clear and shrink. Pass it back as
   * {@link WriteConditions.ifPagesUnchangedSince} to rewrite pages only if nobody touched them meanwhile.
   */
  version: number;
  /** Snapshot ids of this blob, oldest first (empty for a snapshot). */
  snapshots: string[];
}

export interface CreateBlobOptions {
  metadata?: Metadata;
  sequenceNumber?: number;
  /** Replace an existing blob of that name (and its snapshots). Default false: `BlobAlreadyExists`. */
  overwrite?: boolean;
}

/** `x-ms-sequence-number-action`. */
export type SequenceNumberAction = 'max' | 'update' | 'increment';

/** Conditions checked atomically with a write or clear; a failed one rejects with a 412 `StoreError`. */
export interface WriteConditions {
  /** `x-ms-if-sequence-number-le`. */
  ifSequenceNumberLessThanOrEqual?: number;
  /** `x-ms-if-sequence-number-lt`. */
  ifSequenceNumberLessThan?: number;
  /** `x-ms-if-sequence-number-eq`. */
  ifSequenceNumberEqual?: number;
  /**
   * A `version` from {@link ReadResult} or {@link BlobInfo}: every page in the window must be allocated and
   * must not have been written since (else `ConditionNotMet`). For rewriting pages in place (re-encryption)
   * without losing a concurrent write.
   */
  ifPagesUnchangedSince?: number;
}

export interface ReadResult {
  /** The requested bytes; unallocated pages read as zeros. A fresh buffer that belongs to the caller. */
  data: Uint8Array;
  /** Allocated pages overlapping the window, whole pages, merged by tag. */
  ranges: TaggedRange[];
  /** The blob's {@link BlobInfo.version} when these bytes were read. */
  version: number;
}

/** One extent of a {@link PageStore.fillPages} stream: `data` (512-aligned, at most 4 MiB) at `offset`, all pages `tag`. */
export interface FillExtent {
  offset: number;
  data: Uint8Array;
  tag: number;
  /**
   * Called at most once, when the store no longer reads `data` (written, copied, or dropped by a failed
   * fill): from then on the producer may reuse the buffer. A store may also never call it (the producer then
   * lets the buffer go), so a producer must not wait for it.
   */
  release?: () => void;
}

/** What {@link FillOptions.onBatch} is told: how far the fill is durable. */
export interface FillProgress {
  /** Bytes of the fill made durable so far (every batch up to and including this one). */
  durableBytes: number;
  /** The end offset (exclusive) of the last durable extent: every extent ending at or before it is durable. */
  lastOffset: number;
}

export interface FillOptions {
  /** Bytes per durable batch (default {@link DEFAULT_FILL_BATCH_BYTES}); a batch closes once it holds this much. */
  batchBytes?: number;
  /**
   * Called after each batch is durable (and before the next is committed), outside every store lock: calls
   * into the store (such as saving a checkpoint in the blob's metadata) are allowed; the fill waits for it.
   */
  onBatch?: (progress: FillProgress) => void | Promise<void>;
  /** Checked before each extent is pulled: the batch written so far is committed, then the fill rejects. */
  signal?: AbortSignal;
}

export interface FillResult {
  bytesWritten: number;
  /** Times durability was reached (the number of onBatch calls). */
  batches: number;
}

/** Default {@link FillOptions.batchBytes}: 64 MiB. */
export const DEFAULT_FILL_BATCH_BYTES = 64 * 1024 ** 2;

export interface DiffResult {
  /** Pages allocated in the target whose content was written after the previous snapshot was taken. */
  updated: PageRange[];
  /** Pages allocated in the previous snapshot that are unallocated in the target. */
  cleared: PageRange[];
}

/**
 * Where page blobs live. Implemented by `MemoryPageStore` (tests) and `LocalPageStore` (a directory), later by
 * an Azure backend; `test/store/conformance.ts` is the executable specification every implementation passes.
 *
 * Concurrency: any number of calls may be in flight. Writes, clears and resizes of one blob are applied one at
 * a time in call order per overlapping window; reads never observe a half-applied write.
 *
 * Errors: `TypeError` / `RangeError` for malformed arguments (unaligned offsets, sizes over the limits, bad
 * tags), thrown synchronously inside the returned promise; `StoreError` with an Azure-like `code`/`status` for
 * everything else (`ContainerNotFound`, `BlobNotFound`, `InvalidPageRange`, `StoreIoFailed`, ...).
 */
export interface PageStore {
  createContainer(account: string, container: string, metadata?: Metadata): Promise<void>;
  /** Deletes the container with all its blobs and snapshots. */
  deleteContainer(account: string, container: string): Promise<void>;
  listContainers(account: string): Promise<ContainerInfo[]>;
  listBlobs(account: string, container: string): Promise<BlobInfo[]>;

  /** Put Blob (PageBlob): a blob of `size` bytes (multiple of 512, <= 8 TiB), all pages unallocated. */
  createBlob(ref: BlobRef, size: number, options?: CreateBlobOptions): Promise<BlobInfo>;
  getBlob(ref: BlobOrSnapshotRef): Promise<BlobInfo>;
  setMetadata(ref: BlobRef, metadata: Metadata): Promise<BlobInfo>;
  /** Deletes the blob and its snapshots. */
  deleteBlob(ref: BlobRef): Promise<void>;
  /** Set Blob Properties `x-ms-blob-content-length`: shrinking drops (and reclaims) pages past the end. */
  resizeBlob(ref: BlobRef, size: number): Promise<BlobInfo>;
  /** `x-ms-sequence-number-action`: `max` and `update` need `value`; `increment` refuses one. */
  setSequenceNumber(ref: BlobRef, action: SequenceNumberAction, value?: number): Promise<BlobInfo>;

  /**
   * Put Page (update): `data.length` a positive multiple of 512 up to 4 MiB at a 512-aligned `offset` inside
   * the blob. Every page gets `tag`. Atomic (all pages or none, bytes and tags together) and durable when the
   * promise resolves. `data` is copied before the promise settles; do not modify it until then.
   */
  writePages(ref: BlobRef, offset: number, data: Uint8Array, tag: number, conditions?: WriteConditions): Promise<void>;
  /**
   * Bulk fill (imports, first writes): write a stream of extents, ascending and non-overlapping, each like a
   * {@link writePages} call, with durability per batch of about `batchBytes` instead of per call. When
   * `onBatch` is called, and when the promise resolves, every extent so far is durable (survives kill -9 and
   * power loss) and visible; a crash before then leaves the unfinished batch's pages exactly as they were
   * (all or nothing per batch; bytes and tags never disagree; no torn page). Batches are applied in order, so
   * what survives a crash is always a prefix of the stream.
   *
   * Other mutations of the blob do not interleave with a batch; reads do, and see the batch's pages as they
   * were until it commits. When the stream throws, or `signal` fires, the batch written so far is committed
   * and reported, then the fill rejects with that error (`signal.reason` for an abort).
   *
   * Buffers: the store may still be writing an extent's `data` after pulling the next one; a producer hands
   * each buffer over and must not modify it until the fill settles, or until the store calls the extent's
   * `release` (the stores here call it as soon as the bytes are on their way to disk). The stream is pulled while a batch holds
   * the blob: it must not wait for calls on the same blob (a read queued behind a waiting writer would wait
   * for the batch it is part of).
   *
   * Optional: a store without it is filled by a loop of {@link writePages} (the blob layer does this).
   */
  fillPages?(ref: BlobRef, extents: AsyncIterable<FillExtent>, options?: FillOptions): Promise<FillResult>;
  /** Put Page (clear): the pages become unallocated (read as zeros) and their space is reclaimed. */
  clearPages(ref: BlobRef, offset: number, length: number, conditions?: WriteConditions): Promise<void>;
  /** Any byte range inside the blob, at most {@link MAX_READ_BYTES}; unallocated bytes read as zeros. */
  readPages(ref: BlobOrSnapshotRef, offset: number, length: number): Promise<ReadResult>;
  /** Get Page Ranges: allocated pages merged by tag, optionally limited to the pages overlapping `window`. */
  listRanges(ref: BlobOrSnapshotRef, window?: PageRange): Promise<TaggedRange[]>;
  /** Like {@link listRanges}, in bounded memory for very fragmented blobs. */
  iterateRanges(ref: BlobOrSnapshotRef, window?: PageRange): AsyncIterable<TaggedRange>;

  /** Snapshot Blob: a read-only point-in-time copy (pages, tags, size, metadata, sequence number). */
  createSnapshot(ref: BlobRef): Promise<string>;
  deleteSnapshot(ref: SnapshotRef): Promise<void>;
  /**
   * Get Page Ranges with `prevsnapshot`: what changed in `ref` (the blob or a newer snapshot) since the
   * snapshot `previousSnapshot` of the same blob.
   */
  diffRanges(ref: BlobOrSnapshotRef, previousSnapshot: string, window?: PageRange): Promise<DiffResult>;

  /** Waits for calls in flight, then releases files. Later calls reject with `StoreClosed`. */
  close(): Promise<void>;
}

export function isSnapshotRef(ref: BlobOrSnapshotRef): ref is SnapshotRef {
  return (ref as SnapshotRef).snapshot !== undefined;
}
