/**
 * MemoryPageStore: the PageStore in process memory, for unit tests of the layers above and as the reference
 * the conformance and property tests hold LocalPageStore to. Nothing survives `close()`.
 *
 * Every method body runs synchronously after its argument checks, so each call is atomic with respect to the
 * others without locks. Pages are immutable 512-byte buffers shared between a blob and its snapshots.
 */
import { checkConditions, checkInside, describeRef, newSnapshotId, nextSequenceNumber } from './common.js';
import { StoreError } from './errors.js';
import { FillSource, runFill } from './fill.js';
import {
  clip, diffRuns, overlay, type PageStamp, pagesOfRange, pageWindow, type Run, sameStamp, toTaggedRanges,
  truncateRuns,
} from './ranges.js';
import {
  type BlobInfo, type BlobOrSnapshotRef, type BlobRef, type ContainerInfo, type CreateBlobOptions,
  type DiffResult, type FillExtent, type FillOptions, type FillResult, isSnapshotRef, type Metadata, PAGE_SIZE, type PageRange, type PageStore, type ReadResult,
  type SequenceNumberAction, type SnapshotRef, type TaggedRange, type WriteConditions,
} from './types.js';
import * as v from './validate.js';

interface MemVersion {
  size: number;
  sequenceNumber: number;
  metadata: Metadata;
  createdAt: Date;
  modifiedAt: Date;
  version: number;
  runs: Run<PageStamp>[];
  pages: Map<number, Uint8Array>;
}

interface MemBlob extends MemVersion {
  snapshots: Map<string, MemVersion>;
}

interface MemContainer {
  metadata: Metadata;
  createdAt: Date;
  blobs: Map<string, MemBlob>;
}

export class MemoryPageStore implements PageStore {
  readonly #containers = new Map<string, MemContainer>();
  #closed = false;

  async createContainer(account: string, container: string, metadata?: Metadata): Promise<void> {
    const key = this.#containerKey(account, container);
    const md = v.checkMetadata(metadata);
    if (this.#containers.has(key)) {
      throw new StoreError('ContainerAlreadyExists', `container ${account}/${container} already exists`);
    }
    this.#containers.set(key, { metadata: md, createdAt: new Date(), blobs: new Map() });
  }

  async deleteContainer(account: string, container: string): Promise<void> {
    this.#container(account, container);
    this.#containers.delete(this.#containerKey(account, container));
  }

  async listContainers(account: string): Promise<ContainerInfo[]> {
    this.#open();
    v.checkName('account', account);
    const out: ContainerInfo[] = [];
    for (const [key, c] of this.#containers) {
      const [a, name] = JSON.parse(key) as [string, string];
      if (a === account) out.push({ account, container: name, metadata: { ...c.metadata }, createdAt: c.createdAt });
    }
    return out.sort((x, y) => (x.container < y.container ? -1 : 1));
  }

  async listBlobs(account: string, container: string): Promise<BlobInfo[]> {
    const c = this.#container(account, container);
    return [...c.blobs.keys()].sort().map((blob) => this.#info({ account, container, blob }, c.blobs.get(blob) as MemBlob));
  }

  async createBlob(ref: BlobRef, size: number, options: CreateBlobOptions = {}): Promise<BlobInfo> {
    v.checkBlobRef(ref);
    v.checkBlobSize(size);
    const metadata = v.checkMetadata(options.metadata);
    const sequenceNumber = v.checkInteger('sequenceNumber', options.sequenceNumber ?? 0);
    const c = this.#container(ref.account, ref.container);
    if (c.blobs.has(ref.blob) && options.overwrite !== true) {
      throw new StoreError('BlobAlreadyExists', `blob ${describeRef(ref)} already exists`);
    }
    const now = new Date();
    const blob: MemBlob = {
      size, sequenceNumber, metadata, createdAt: now, modifiedAt: now, version: 0, runs: [], pages: new Map(),
      snapshots: new Map(),
    };
    c.blobs.set(ref.blob, blob);
    return this.#info(ref, blob);
  }

  async getBlob(ref: BlobOrSnapshotRef): Promise<BlobInfo> {
    return this.#info(ref, this.#version(ref));
  }

  async setMetadata(ref: BlobRef, metadata: Metadata): Promise<BlobInfo> {
    const md = v.checkMetadata(metadata);
    const blob = this.#blob(ref);
    blob.metadata = md;
    blob.modifiedAt = new Date();
    return this.#info(ref, blob);
  }

  async deleteBlob(ref: BlobRef): Promise<void> {
    this.#blob(ref);
    this.#container(ref.account, ref.container).blobs.delete(ref.blob);
  }

  async resizeBlob(ref: BlobRef, size: number): Promise<BlobInfo> {
    v.checkBlobSize(size);
    const blob = this.#blob(ref);
    if (size < blob.size) {
      const end = size / PAGE_SIZE;
      blob.runs = truncateRuns(blob.runs, end);
      for (const page of blob.pages.keys()) if (page >= end) blob.pages.delete(page);
      blob.version++;
    }
    blob.size = size;
    blob.modifiedAt = new Date();
    return this.#info(ref, blob);
  }

  async setSequenceNumber(ref: BlobRef, action: SequenceNumberAction, value?: number): Promise<BlobInfo> {
    const a = v.checkSequenceAction(action, value);
    const blob = this.#blob(ref);
    blob.sequenceNumber = nextSequenceNumber(blob.sequenceNumber, a.action, a.value);
    blob.modifiedAt = new Date();
    return this.#info(ref, blob);
  }

  async writePages(ref: BlobRef, offset: number, data: Uint8Array, tag: number, conditions?: WriteConditions): Promise<void> {
    v.checkAligned('offset', offset, Number.MAX_SAFE_INTEGER);
    v.checkWriteData(data);
    v.checkTag(tag);
    const cond = v.checkConditions(conditions);
    const blob = this.#blob(ref);
    checkInside(ref, offset, data.length, blob.size);
    const { start, end } = pageWindow(offset, data.length);
    checkConditions(cond, blob.sequenceNumber, blob.runs, start, end);
    blob.version++;
    blob.runs = overlay(blob.runs, start, end, { tag, version: blob.version }, sameStamp);
    for (let p = start; p < end; p++) {
      const at = (p - start) * PAGE_SIZE;
      blob.pages.set(p, Uint8Array.prototype.slice.call(data, at, at + PAGE_SIZE));
    }
    blob.modifiedAt = new Date();
  }

  /**
   * Bulk fill, simply: each extent is a {@link writePages} (atomic and "durable" on its own in memory), and
   * `onBatch` is told every `batchBytes` or so. Same checks, order and ending as LocalPageStore's.
   */
  async fillPages(ref: BlobRef, extents: AsyncIterable<FillExtent>, options?: FillOptions): Promise<FillResult> {
    v.checkBlobRef(ref);
    const opts = v.checkFillOptions(options);
    const source = new FillSource(v.checkExtentStream(extents), opts.signal);
    this.#blob(ref);
    return runFill(source, opts, {
      batch: async () => ({ bytes: 0, end: 0, single: true }),
      single: (e) => this.writePages(ref, e.offset, e.data, e.tag),
    });
  }

  async clearPages(ref: BlobRef, offset: number, length: number, conditions?: WriteConditions): Promise<void> {
    v.checkAligned('offset', offset, Number.MAX_SAFE_INTEGER);
    v.checkClearLength(length);
    const cond = v.checkConditions(conditions);
    const blob = this.#blob(ref);
    checkInside(ref, offset, length, blob.size);
    const { start, end } = pageWindow(offset, length);
    checkConditions(cond, blob.sequenceNumber, blob.runs, start, end);
    blob.version++;
    for (const r of clip(blob.runs, start, end)) for (let p = r.start; p < r.end; p++) blob.pages.delete(p);
    blob.runs = overlay(blob.runs, start, end, null, sameStamp);
    blob.modifiedAt = new Date();
  }

  async readPages(ref: BlobOrSnapshotRef, offset: number, length: number): Promise<ReadResult> {
    v.checkReadWindow(offset, length);
    const ver = this.#version(ref);
    checkInside(ref, offset, length, ver.size);
    const data = new Uint8Array(length);
    const { start, end } = pageWindow(offset, length);
    const runs = clip(ver.runs, start, end);
    for (const r of runs) {
      for (let p = r.start; p < r.end; p++) {
        const page = ver.pages.get(p) as Uint8Array;
        const from = Math.max(offset, p * PAGE_SIZE);
        const to = Math.min(offset + length, (p + 1) * PAGE_SIZE);
        data.set(page.subarray(from - p * PAGE_SIZE, to - p * PAGE_SIZE), from - offset);
      }
    }
    return { data, ranges: toTaggedRanges(runs, (s) => s.tag), version: ver.version };
  }

  async listRanges(ref: BlobOrSnapshotRef, window?: PageRange): Promise<TaggedRange[]> {
    const w = v.checkWindow(window);
    const ver = this.#version(ref);
    const { start, end } = w === undefined ? { start: 0, end: ver.size / PAGE_SIZE } : pagesOfRange(w);
    return toTaggedRanges(clip(ver.runs, start, end), (s) => s.tag);
  }

  async *iterateRanges(ref: BlobOrSnapshotRef, window?: PageRange): AsyncIterable<TaggedRange> {
    yield* await this.listRanges(ref, window);
  }

  async createSnapshot(ref: BlobRef): Promise<string> {
    const blob = this.#blob(ref);
    const id = newSnapshotId([...blob.snapshots.keys()].pop());
    blob.snapshots.set(id, {
      size: blob.size, sequenceNumber: blob.sequenceNumber, metadata: { ...blob.metadata }, createdAt: new Date(),
      modifiedAt: blob.modifiedAt, version: blob.version, runs: blob.runs.map((r) => ({ ...r })),
      pages: new Map(blob.pages),
    });
    return id;
  }

  async deleteSnapshot(ref: SnapshotRef): Promise<void> {
    this.#version(ref);
    this.#blob(ref).snapshots.delete(ref.snapshot);
  }

  async diffRanges(ref: BlobOrSnapshotRef, previousSnapshot: string, window?: PageRange): Promise<DiffResult> {
    v.checkName('previousSnapshot', previousSnapshot);
    const w = v.checkWindow(window);
    const target = this.#version(ref);
    const prev = this.#blob(ref).snapshots.get(previousSnapshot);
    if (prev === undefined || (isSnapshotRef(ref) && previousSnapshot >= ref.snapshot)) {
      throw new StoreError('PreviousSnapshotNotFound',
        `${previousSnapshot} is not an earlier snapshot of ${describeRef(ref)}`);
    }
    const { start, end } = w === undefined ? { start: 0, end: target.size / PAGE_SIZE } : pagesOfRange(w);
    return diffRuns(target.runs, prev.runs, start, Math.min(end, target.size / PAGE_SIZE), (s) => s.version);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#containers.clear();
  }

  #open(): void {
    if (this.#closed) throw new StoreError('StoreClosed', 'this MemoryPageStore has been closed');
  }

  #containerKey(account: string, container: string): string {
    this.#open();
    return JSON.stringify([v.checkName('account', account), v.checkName('container', container)]);
  }

  #container(account: string, container: string): MemContainer {
    const c = this.#containers.get(this.#containerKey(account, container));
    if (c === undefined) throw new StoreError('ContainerNotFound', `container ${account}/${container} does not exist`);
    return c;
  }

  #blob(ref: BlobRef): MemBlob {
    v.checkBlobRef(ref);
    const blob = this.#container(ref.account, ref.container).blobs.get(ref.blob);
    if (blob === undefined) throw new StoreError('BlobNotFound', `blob ${describeRef(ref)} does not exist`);
    return blob;
  }

  #version(ref: BlobOrSnapshotRef): MemVersion {
    v.checkAnyRef(ref);
    const blob = this.#blob(ref);
    if (!isSnapshotRef(ref)) return blob;
    const snap = blob.snapshots.get(ref.snapshot);
    if (snap === undefined) throw new StoreError('SnapshotNotFound', `snapshot ${describeRef(ref)} does not exist`);
    return snap;
  }

  #info(ref: BlobOrSnapshotRef, ver: MemVersion): BlobInfo {
    const snapshot = isSnapshotRef(ref);
    return {
      account: ref.account, container: ref.container, blob: ref.blob,
      ...(snapshot ? { snapshot: ref.snapshot } : {}),
      size: ver.size, sequenceNumber: ver.sequenceNumber, metadata: { ...ver.metadata }, createdAt: ver.createdAt,
      modifiedAt: ver.modifiedAt, version: ver.version,
      snapshots: snapshot ? [] : [...(ver as MemBlob).snapshots.keys()],
    };
  }
}
