/**
 * LocalPageStore: page blobs in a directory. Bytes live in sparse files addressed by page (page p of a blob at
 * byte p * 512 of its data file); everything else lives in SQLite (local-meta.ts). The store knows nothing of
 * encryption: a page's tag is a number it keeps beside the bytes.
 *
 *   <dir>/meta.sqlite (+ -wal)     containers, blobs, snapshots, runs {tag, version, loc}, redo, gc queues
 *   <dir>/data/<id>.dat            a blob's pages (sparse; unallocated pages are holes)
 *   <dir>/data/<id>.redo           bytes of the overwrite in flight for that blob (empty when idle)
 *   <dir>/data/<sid>.dat           a snapshot's copy-before-write pages (sparse)
 *
 * Write paths (the durable point of every call is one SQLite commit with synchronous=FULL):
 *
 *   fresh pages (unallocated):  pwrite .dat ─ fdatasync ─ COMMIT runs            no double write
 *   allocated pages:            pwrite .redo ─ fdatasync ─ COMMIT runs + redo row ─ pwrite .dat ─ fdatasync
 *                               ─ truncate .redo ─ (redo row deleted by the next commit)
 *   bulk fill (fillPages):      pwrite .dat × extents ─ fdatasync ─ COMMIT runs, per batch of ~64 MiB
 *   clear / shrink:             COMMIT runs + gc row ─ punch (or ftruncate) .dat ─ fdatasync ─ (gc row deleted)
 *   snapshot pages shared with the blob are first copied to the snapshot file (pwrite, fdatasync) and their
 *   run switched to loc=1 in the same commit.
 *
 * A crash before the commit leaves bytes only in unallocated pages, which read as zeros and are punched by
 * recovery (a blob is marked dirty, durably, before its first data write of a session). A crash after it is
 * finished by recovery: redo rows are replayed (their bytes are checked by SHA-256, so a redo file already
 * truncated or reused means the row was applied), gc rows re-run. Both are idempotent, so recovery itself may
 * crash and run again (local-recovery.ts). Any I/O or commit failure is fatal: the call rejects with
 * `StoreIoFailed` and the store refuses every later call until it is reopened, which runs recovery.
 *
 * At rest: overwrites land in place, clears are punched, the redo file is truncated after each apply, SQLite
 * never holds page bytes and zeroes deleted rows: old bytes of a page do not linger in the directory.
 */
import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';

import { blobKey, checkConditions, checkInside, describeRef, newSnapshotId, nextSequenceNumber } from './common.js';
import { StoreError } from './errors.js';
import { type FileHandleIo, type FileIo, nodeFileIo } from './file-io.js';
import { FillSource, runFill } from './fill.js';
import {
  type BlobRow, type ContainerRow, type GcRow, LOC_BLOB_FILE, LOC_SNAPSHOT_FILE, MetaDb, RUN_BATCH, type SnapshotRow,
  type StoredStamp,
} from './local-meta.js';
import { DataFiles } from './local-files.js';
import { recover, runGcRow } from './local-recovery.js';
import { KeyedRwLock } from './lock.js';
import { appendTagged, clip, diffRuns, gaps, pagesOfRange, pageWindow, type Run, toTaggedRanges } from './ranges.js';
import {
  type BlobInfo, type BlobOrSnapshotRef, type BlobRef, type ContainerInfo, type CreateBlobOptions, type DiffResult,
  type FillExtent, type FillOptions, type FillResult, isSnapshotRef, type Metadata, PAGE_SIZE, type PageRange, type PageStore, type ReadResult,
  type SequenceNumberAction, type SnapshotRef, type TaggedRange, type WriteConditions,
} from './types.js';
import * as v from './validate.js';

export interface LocalPageStoreOptions {
  /** File operations; tests inject failures here. Default: node:fs plus `fallocate` for punching holes. */
  fileIo?: FileIo;
}

export const META_FILE = 'meta.sqlite';
/** Data-file writes of a fill batch in flight at once: reading and encrypting the source overlaps the disk. */
export const FILL_WRITES_IN_FLIGHT = 4;
/** A fill batch starts writing back its pages every this many bytes (an fdatasync not waited for). */
export const FILL_WRITEBACK_BYTES = 16 * 1024 * 1024;
export const DATA_DIR = 'data';

interface Target {
  blob: BlobRow;
  snap: SnapshotRow | undefined;
}

export class LocalPageStore implements PageStore {
  readonly directory: string;
  /** True when clears and shrinks return space to the filesystem (punch hole); false: they write zeros. */
  readonly punchesHoles: boolean;
  readonly #files: DataFiles;
  readonly #meta: MetaDb;
  readonly #locks = new KeyedRwLock();
  readonly #dirty = new Set<number>();
  readonly #pendingRedo = new Set<number>();
  readonly #pendingGc = new Set<number>();
  #failure: unknown;
  #closed = false;
  #inFlight = new Set<Promise<unknown>>();

  private constructor(directory: string, io: FileIo, meta: MetaDb, punchesHoles: boolean) {
    this.directory = directory;
    this.#files = DataFiles.in(directory, DATA_DIR, io);
    this.#meta = meta;
    this.punchesHoles = punchesHoles;
  }

  /** Open (creating if needed) the store in `directory`, recovering from any crash first. */
  static async open(directory: string, options: LocalPageStoreOptions = {}): Promise<LocalPageStore> {
    if (typeof directory !== 'string' || directory.length === 0) {
      throw new TypeError('directory must be a non-empty string');
    }
    const io = options.fileIo ?? nodeFileIo();
    await io.mkdir(join(directory, DATA_DIR));
    let meta: MetaDb;
    try {
      meta = new MetaDb(join(directory, META_FILE));
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_BUSY') {
        throw new StoreError('StoreLocked', `the store in ${directory} is open in another process`, { cause: e });
      }
      throw new StoreError('StoreIoFailed', `cannot open the store metadata in ${directory}`, { cause: e });
    }
    try {
      const punch = await io.canPunchHoles(join(directory, DATA_DIR));
      await recover(meta, io, join(directory, DATA_DIR));
      return new LocalPageStore(directory, io, meta, punch);
    } catch (e) {
      meta.db.close();
      throw new StoreError('StoreIoFailed', `recovery of the store in ${directory} failed`, { cause: e });
    }
  }

  // ── containers ────────────────────────────────────────────────────────────────────────────────────────

  async createContainer(account: string, container: string, metadata?: Metadata): Promise<void> {
    v.checkName('account', account);
    v.checkName('container', container);
    const md = v.checkMetadata(metadata);
    await this.#exclusive([JSON.stringify([account, container])], async () => {
      if (this.#meta.container(account, container) !== undefined) {
        throw new StoreError('ContainerAlreadyExists', `container ${account}/${container} already exists`);
      }
      this.#tx(() => this.#meta.sql('INSERT INTO containers(account, name, metadata, created) VALUES (?, ?, ?, ?)')
        .run(account, container, JSON.stringify(md), Date.now()));
    });
  }

  async deleteContainer(account: string, container: string): Promise<void> {
    v.checkName('account', account);
    v.checkName('container', container);
    this.#usable();
    const blobsOf = (): BlobRow[] => this.#meta.sql('SELECT * FROM blobs WHERE account = ? AND container = ? ORDER BY name')
      .all(account, container) as BlobRow[];
    const keyOf = (b: BlobRow): string => blobKey({ account, container, blob: b.name });
    for (;;) {
      // Hold every blob's lock; a blob created meanwhile (whose lock we lack) means: take the locks again.
      const keys = blobsOf().map(keyOf);
      const done = await this.#exclusive([JSON.stringify([account, container]), ...keys], async () => {
        if (this.#meta.container(account, container) === undefined) {
          throw new StoreError('ContainerNotFound', `container ${account}/${container} does not exist`);
        }
        const blobs = blobsOf();
        if (blobs.some((b) => !keys.includes(keyOf(b)))) return false;
        const gc = this.#tx(() => {
          this.#meta.sql('DELETE FROM containers WHERE account = ? AND name = ?').run(account, container);
          return blobs.flatMap((b) => this.#dropBlobRows(b));
        });
        await this.#runGc(gc);
        return true;
      });
      if (done) return;
    }
  }

  async listContainers(account: string): Promise<ContainerInfo[]> {
    v.checkName('account', account);
    this.#usable();
    return (this.#meta.sql('SELECT * FROM containers WHERE account = ? ORDER BY name').all(account) as ContainerRow[])
      .map((c) => ({ account, container: c.name, metadata: JSON.parse(c.metadata) as Metadata, createdAt: new Date(c.created) }));
  }

  async listBlobs(account: string, container: string): Promise<BlobInfo[]> {
    this.#containerRow(account, container);
    return (this.#meta.sql('SELECT * FROM blobs WHERE account = ? AND container = ? ORDER BY name')
      .all(account, container) as BlobRow[]).map((b) => this.#info(b, undefined));
  }

  // ── blobs ─────────────────────────────────────────────────────────────────────────────────────────────

  async createBlob(ref: BlobRef, size: number, options: CreateBlobOptions = {}): Promise<BlobInfo> {
    v.checkBlobRef(ref);
    v.checkBlobSize(size);
    const metadata = v.checkMetadata(options.metadata);
    const seq = v.checkInteger('sequenceNumber', options.sequenceNumber ?? 0);
    return this.#exclusive([blobKey(ref)], async () => {
      this.#containerRow(ref.account, ref.container);
      const old = this.#meta.blobByName(ref.account, ref.container, ref.blob);
      if (old !== undefined && options.overwrite !== true) {
        throw new StoreError('BlobAlreadyExists', `blob ${describeRef(ref)} already exists`);
      }
      const file = randomUUID();
      await this.#files.create(file, true);
      const now = Date.now();
      const { row, gc } = this.#tx(() => {
        this.#containerRow(ref.account, ref.container); // it may have been deleted while the file was created
        const gc = old === undefined ? [] : this.#dropBlobRows(old);
        const row = this.#meta.sql(`INSERT INTO blobs(account, container, name, file, size, seq, metadata, created,
          modified, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0) RETURNING *`)
          .get(ref.account, ref.container, ref.blob, file, size, seq, JSON.stringify(metadata), now, now) as BlobRow;
        return { row, gc };
      });
      await this.#runGc(gc);
      return this.#info(row, undefined);
    });
  }

  async getBlob(ref: BlobOrSnapshotRef): Promise<BlobInfo> {
    v.checkAnyRef(ref);
    this.#usable();
    const t = this.#target(ref);
    return this.#info(t.blob, t.snap);
  }

  async setMetadata(ref: BlobRef, metadata: Metadata): Promise<BlobInfo> {
    const md = v.checkMetadata(metadata);
    return this.#mutate(ref, async (blob) => {
      this.#tx(() => this.#meta.sql('UPDATE blobs SET metadata = ?, modified = ? WHERE id = ?')
        .run(JSON.stringify(md), Date.now(), blob.id));
      return this.#info(this.#meta.blobById(blob.id) as BlobRow, undefined);
    });
  }

  async deleteBlob(ref: BlobRef): Promise<void> {
    await this.#mutate(ref, async (blob) => {
      await this.#runGc(this.#tx(() => this.#dropBlobRows(blob)));
    });
  }

  async resizeBlob(ref: BlobRef, size: number): Promise<BlobInfo> {
    v.checkBlobSize(size);
    return this.#mutate(ref, async (blob) => {
      if (size >= blob.size) {
        this.#tx(() => this.#meta.sql('UPDATE blobs SET size = ?, modified = ? WHERE id = ?').run(size, Date.now(), blob.id));
      } else {
        const end = size / PAGE_SIZE;
        await this.#markDirty(blob);
        const copies = await this.#copyBeforeWrite(blob, end, blob.size / PAGE_SIZE);
        const gc = this.#tx(() => {
          this.#meta.truncateRuns(blob.id, end);
          this.#applyCopies(copies);
          this.#bump(blob, { size });
          return [this.#addGc(blob.file, 'truncate', end, end)];
        });
        await this.#runGc(gc);
      }
      return this.#info(this.#meta.blobById(blob.id) as BlobRow, undefined);
    });
  }

  async setSequenceNumber(ref: BlobRef, action: SequenceNumberAction, value?: number): Promise<BlobInfo> {
    const a = v.checkSequenceAction(action, value);
    return this.#mutate(ref, async (blob) => {
      const seq = nextSequenceNumber(blob.seq, a.action, a.value);
      this.#tx(() => this.#meta.sql('UPDATE blobs SET seq = ?, modified = ? WHERE id = ?').run(seq, Date.now(), blob.id));
      return this.#info(this.#meta.blobById(blob.id) as BlobRow, undefined);
    });
  }

  // ── pages ─────────────────────────────────────────────────────────────────────────────────────────────

  async writePages(ref: BlobRef, offset: number, data: Uint8Array, tag: number, conditions?: WriteConditions): Promise<void> {
    v.checkAligned('offset', offset, Number.MAX_SAFE_INTEGER);
    v.checkWriteData(data);
    v.checkTag(tag);
    const cond = v.checkConditions(conditions);
    const bytes = Buffer.from(data); // our own copy: the caller may reuse `data` once we return
    await this.#mutate(ref, (blob) => this.#writeIn(ref, blob, offset, bytes, tag, cond));
  }

  /**
   * Bulk fill (see PageStore.fillPages). Extents whose pages are all unallocated, in a blob without snapshots,
   * take the batch path; anything else is an ordinary {@link writePages}:
   *
   *   batch:  mark dirty (once) ─ pwrite .dat × extents (no sync, a few in flight) ─ fdatasync ─ COMMIT runs
   *
   * A batch holds the blob's lock shared: every mutation (they take it exclusively) waits for the commit, reads
   * go on and see the batch's pages unallocated until then, so they never read its bytes early. A second fill
   * of the same blob waits for the first (the fill key). A crash before the commit leaves bytes only in
   * unallocated pages of a dirty blob, which recovery punches: the batch vanishes whole.
   */
  async fillPages(ref: BlobRef, extents: AsyncIterable<FillExtent>, options?: FillOptions): Promise<FillResult> {
    v.checkBlobRef(ref);
    const opts = v.checkFillOptions(options);
    const source = new FillSource(v.checkExtentStream(extents), opts.signal);
    this.#usable();
    let blobId: number | undefined;
    const sameBlob = (blob: BlobRow): BlobRow => {
      blobId ??= blob.id;
      if (blob.id !== blobId) throw new StoreError('BlobNotFound', `blob ${describeRef(ref)} was replaced during the fill`);
      return blob;
    };
    return this.#track(this.#locks.with(`fill:${blobKey(ref)}`, true, () => runFill(source, opts, {
      batch: (src, batchBytes) => this.#fillBatch(ref, src, batchBytes, sameBlob),
      single: (e) => this.#mutate(ref, (blob) => this.#writeIn(ref, sameBlob(blob), e.offset, e.data, e.tag, {})),
    })));
  }

  async #fillBatch(ref: BlobRef, source: FillSource, batchBytes: number, sameBlob: (blob: BlobRow) => BlobRow):
    Promise<{ bytes: number; end: number; single: boolean }> {
    this.#usable();
    return this.#track(this.#locks.with(blobKey(ref), false, async () => {
      this.#usable();
      const blob = sameBlob(this.#blobRow(ref));
      if (this.#meta.snapshotsOf(blob.id).length > 0) return { bytes: 0, end: 0, single: true };
      const runs: Run<number>[] = [];
      const writes = new Set<Promise<void>>();
      let failed: { error: unknown } | undefined;
      let dat: FileHandleIo | undefined;
      let bytes = 0;
      let single = false;
      let kicked = 0;
      let writeback: Promise<void> | undefined;
      while (bytes < batchBytes && failed === undefined) {
        const extent = await source.next();
        if (extent === undefined) break;
        const { offset, data, tag } = extent;
        if (offset + data.length > blob.size) {
          source.fail(new StoreError('InvalidPageRange',
            `bytes ${offset}..${offset + data.length - 1} pass the end of ${describeRef(ref)} (${blob.size} bytes)`));
          break;
        }
        const { start, end } = pageWindow(offset, data.length);
        if (this.#meta.runsIn(blob.id, start, end, 1).length > 0) {
          source.unread(extent);
          single = true;
          break;
        }
        if (dat === undefined) {
          await this.#fatal(() => this.#markDirty(blob));
          dat = await this.#fatal(() => this.#files.handle(this.#files.dataPath(blob.file)));
        }
        const last = runs[runs.length - 1];
        if (last !== undefined && last.end === start && last.value === tag) last.end = end;
        else runs.push({ start, end, value: tag });
        const write: Promise<void> = dat.write(data, 0, data.length, offset).then(
          () => { writes.delete(write); },
          (error: unknown) => { writes.delete(write); failed ??= { error }; });
        writes.add(write);
        bytes += data.length;
        while (writes.size >= FILL_WRITES_IN_FLIGHT) await Promise.race(writes);
        // Start writing back what the batch holds so far, so that its closing fdatasync finds little left
        // and the disk works while we keep writing. Extra syncs change nothing: the pages stay unallocated.
        if (bytes - kicked >= FILL_WRITEBACK_BYTES && writeback === undefined) {
          kicked = bytes;
          const file = dat;
          writeback = file.datasync().then(() => { writeback = undefined; },
            (error: unknown) => { writeback = undefined; failed ??= { error }; });
        }
      }
      await Promise.all(writes);
      await writeback;
      if (failed !== undefined) throw this.#ioFailure((failed as { error: unknown }).error);
      const lastRun = runs[runs.length - 1];
      if (dat === undefined || lastRun === undefined) return { bytes: 0, end: 0, single };
      const file = dat;
      await this.#fatal(() => file.datasync());
      await this.#fatal(async () => this.#tx(() => {
        const version = this.#bump(blob, {});
        for (const r of runs) this.#meta.overlay(blob.id, r.start, r.end, { tag: r.value, version, loc: LOC_BLOB_FILE });
      }));
      return { bytes, end: lastRun.end * PAGE_SIZE, single };
    }));
  }

  /** writePages on `blob`, its lock held. */
  async #writeIn(ref: BlobRef, blob: BlobRow, offset: number, bytes: Uint8Array, tag: number, cond: WriteConditions):
    Promise<void> {
    checkInside(ref, offset, bytes.length, blob.size);
    const { start, end } = pageWindow(offset, bytes.length);
    const around = this.#meta.runsIn(blob.id, start, end);
    checkConditions(cond, blob.seq, around, start, end);
    const allocated = clip(around, start, end);
    const fresh = gaps(around, start, end);
    await this.#markDirty(blob);
    const copies = await this.#copyBeforeWrite(blob, start, end);
    const dat = await this.#files.handle(this.#files.dataPath(blob.file));
    const slice = (r: { start: number; end: number }): Uint8Array =>
      bytes.subarray((r.start - start) * PAGE_SIZE, (r.end - start) * PAGE_SIZE);
    for (const g of fresh) await dat.write(slice(g), 0, (g.end - g.start) * PAGE_SIZE, g.start * PAGE_SIZE);
    if (fresh.length > 0) await dat.datasync();
    let journal: Buffer | undefined;
    if (allocated.length > 0) {
      journal = Buffer.concat(allocated.map(slice));
      const redo = await this.#files.handle(this.#files.redoPath(blob.file));
      await redo.write(journal, 0, journal.length, 0);
      await redo.datasync();
    }
    this.#tx(() => {
      const version = this.#bump(blob, {});
      this.#meta.overlay(blob.id, start, end, { tag, version, loc: LOC_BLOB_FILE });
      this.#applyCopies(copies);
      if (journal !== undefined) {
        this.#meta.sql('INSERT OR REPLACE INTO redo(blob_id, pieces, bytes, sha256) VALUES (?, ?, ?, ?)').run(blob.id,
          JSON.stringify(allocated.map((r) => [r.start, r.end])), journal.length, sha256(journal));
      }
    });
    if (journal !== undefined) {
      for (const r of allocated) await dat.write(slice(r), 0, (r.end - r.start) * PAGE_SIZE, r.start * PAGE_SIZE);
      await dat.datasync();
      await (await this.#files.handle(this.#files.redoPath(blob.file))).truncate(0);
      this.#pendingRedo.add(blob.id);
    }
  }

  async clearPages(ref: BlobRef, offset: number, length: number, conditions?: WriteConditions): Promise<void> {
    v.checkAligned('offset', offset, Number.MAX_SAFE_INTEGER);
    v.checkClearLength(length);
    const cond = v.checkConditions(conditions);
    await this.#mutate(ref, async (blob) => {
      checkInside(ref, offset, length, blob.size);
      const { start, end } = pageWindow(offset, length);
      checkConditions(cond, blob.seq, this.#meta.runsIn(blob.id, start, end), start, end);
      await this.#markDirty(blob);
      const copies = await this.#copyBeforeWrite(blob, start, end);
      const gc = this.#tx(() => {
        this.#bump(blob, {});
        this.#meta.overlay(blob.id, start, end, null);
        this.#applyCopies(copies);
        return [this.#addGc(blob.file, 'punch', start, end)];
      });
      await this.#runGc(gc);
    });
  }

  async readPages(ref: BlobOrSnapshotRef, offset: number, length: number): Promise<ReadResult> {
    v.checkAnyRef(ref);
    v.checkReadWindow(offset, length);
    return this.#shared(ref, async ({ blob, snap }) => {
      const size = snap?.size ?? blob.size;
      checkInside(ref, offset, length, size);
      const { start, end } = pageWindow(offset, length);
      const runs = clip(this.#meta.runsIn(snap === undefined ? blob.id : -snap.id, start, end), start, end);
      const data = new Uint8Array(length);
      for (const r of runs) {
        const file = r.value.loc === LOC_SNAPSHOT_FILE ? (snap as SnapshotRow).file : blob.file;
        const from = Math.max(offset, r.start * PAGE_SIZE);
        const to = Math.min(offset + length, r.end * PAGE_SIZE);
        await (await this.#files.handle(this.#files.dataPath(file))).read(data, from - offset, to - from, from);
      }
      return { data, ranges: toTaggedRanges(runs, (s) => s.tag), version: snap?.version ?? blob.version };
    });
  }

  async listRanges(ref: BlobOrSnapshotRef, window?: PageRange): Promise<TaggedRange[]> {
    const out: TaggedRange[] = [];
    for await (const r of this.iterateRanges(ref, window)) out.push(r);
    return out;
  }

  async *iterateRanges(ref: BlobOrSnapshotRef, window?: PageRange): AsyncIterable<TaggedRange> {
    v.checkAnyRef(ref);
    const w = v.checkWindow(window);
    let at: number | undefined;
    let end = 0;
    let pending: TaggedRange | undefined;
    for (;;) {
      const batch = await this.#shared(ref, async ({ blob, snap }) => {
        if (at === undefined) {
          const pages = (snap?.size ?? blob.size) / PAGE_SIZE;
          ({ start: at, end } = w === undefined ? { start: 0, end: pages } : pagesOfRange(w));
          end = Math.min(end, pages);
        }
        return clip(this.#meta.runsIn(snap === undefined ? blob.id : -snap.id, at, end, RUN_BATCH), at, end);
      });
      const merged: TaggedRange[] = pending === undefined ? [] : [pending];
      for (const r of batch) appendTagged(merged, r.start, r.end, r.value.tag);
      pending = merged.pop();
      yield* merged;
      const last = batch[batch.length - 1];
      if (batch.length < RUN_BATCH || last === undefined) break;
      at = last.end;
    }
    if (pending !== undefined) yield pending;
  }

  async createSnapshot(ref: BlobRef): Promise<string> {
    return this.#mutate(ref, async (blob) => {
      const snaps = this.#meta.snapshotsOf(blob.id);
      const id = newSnapshotId(snaps[snaps.length - 1]?.snapshot);
      const file = randomUUID();
      await this.#files.create(file, false);
      this.#tx(() => {
        const row = this.#meta.sql(`INSERT INTO snapshots(blob_id, snapshot, file, size, seq, metadata, created, modified,
          version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`)
          .get(blob.id, id, file, blob.size, blob.seq, blob.metadata, Date.now(), blob.modified, blob.version) as { id: number };
        this.#meta.copyRuns(blob.id, -row.id, LOC_BLOB_FILE);
      });
      return id;
    });
  }

  async deleteSnapshot(ref: SnapshotRef): Promise<void> {
    v.checkName('snapshot', ref.snapshot);
    await this.#mutate(ref, async (blob) => {
      const snap = this.#snapshotRow(blob, ref);
      const gc = this.#tx(() => {
        this.#meta.deleteRuns(-snap.id);
        this.#meta.sql('DELETE FROM snapshots WHERE id = ?').run(snap.id);
        return [this.#addGc(snap.file, 'unlink', 0, 0)];
      });
      await this.#runGc(gc);
    });
  }

  async diffRanges(ref: BlobOrSnapshotRef, previousSnapshot: string, window?: PageRange): Promise<DiffResult> {
    v.checkAnyRef(ref);
    v.checkName('previousSnapshot', previousSnapshot);
    const w = v.checkWindow(window);
    return this.#shared(ref, async ({ blob, snap }) => {
      const prev = this.#meta.snapshot(blob.id, previousSnapshot);
      if (prev === undefined || (snap !== undefined && previousSnapshot >= snap.snapshot)) {
        throw new StoreError('PreviousSnapshotNotFound', `${previousSnapshot} is not an earlier snapshot of ${describeRef(ref)}`);
      }
      const pages = (snap?.size ?? blob.size) / PAGE_SIZE;
      const { start, end } = w === undefined ? { start: 0, end: pages } : pagesOfRange(w);
      const stop = Math.min(end, pages);
      const target = this.#meta.runsIn(snap === undefined ? blob.id : -snap.id, start, stop);
      return diffRuns(target, this.#meta.runsIn(-prev.id, start, stop), start, stop, (s) => s.version);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    await this.#files.closeAll();
    if (this.#failure === undefined) {
      this.#tx(() => this.#meta.sql('UPDATE blobs SET dirty = 0 WHERE dirty = 1').run());
    }
    this.#meta.close();
  }

  // ── plumbing ──────────────────────────────────────────────────────────────────────────────────────────

  /** Reject when closed or after a fatal I/O failure. */
  #usable(): void {
    if (this.#closed) throw new StoreError('StoreClosed', `the store in ${this.directory} has been closed`);
    if (this.#failure !== undefined) {
      throw new StoreError('StoreIoFailed',
        `the store in ${this.directory} failed earlier and refuses further calls until it is reopened`,
        { cause: this.#failure });
    }
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#inFlight.add(p);
    const done = (): void => { this.#inFlight.delete(p); };
    p.then(done, done);
    return p;
  }

  /** Run `fn` holding `keys` exclusively; failures that are not domain or argument errors are fatal. */
  #exclusive<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    this.#usable();
    return this.#track(this.#locks.withAll(keys, async () => {
      this.#usable();
      return this.#fatal(fn);
    }));
  }

  /** Run `fn`; a failure that is not a domain or argument error is fatal for the store. */
  async #fatal<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof StoreError || e instanceof RangeError || e instanceof TypeError) throw e;
      throw this.#ioFailure(e);
    }
  }

  /** Record a fatal I/O failure; returns the error to throw. */
  #ioFailure(e: unknown): StoreError {
    this.#failure ??= e;
    return new StoreError('StoreIoFailed', `a write to the store in ${this.directory} failed: ${String(e)}`, { cause: e });
  }

  #mutate<T>(ref: BlobRef, fn: (blob: BlobRow) => Promise<T>): Promise<T> {
    v.checkBlobRef(ref);
    return this.#exclusive([blobKey(ref)], () => fn(this.#blobRow(ref)));
  }

  #shared<T>(ref: BlobOrSnapshotRef, fn: (t: Target) => Promise<T>): Promise<T> {
    this.#usable();
    return this.#track(this.#locks.with(blobKey(ref), false, async () => {
      this.#usable();
      return fn(this.#target(ref));
    }));
  }

  /** One metadata transaction, also deleting redo and gc rows whose work is done. */
  #tx<T>(fn: () => T): T {
    return this.#meta.tx(() => {
      for (const id of this.#pendingRedo) this.#meta.sql('DELETE FROM redo WHERE blob_id = ?').run(id);
      for (const id of this.#pendingGc) this.#meta.sql('DELETE FROM gc WHERE id = ?').run(id);
      this.#pendingRedo.clear();
      this.#pendingGc.clear();
      return fn();
    });
  }

  #containerRow(account: string, container: string): ContainerRow {
    v.checkName('account', account);
    v.checkName('container', container);
    this.#usable();
    const c = this.#meta.container(account, container);
    if (c === undefined) throw new StoreError('ContainerNotFound', `container ${account}/${container} does not exist`);
    return c;
  }

  #blobRow(ref: BlobRef): BlobRow {
    this.#containerRow(ref.account, ref.container);
    const b = this.#meta.blobByName(ref.account, ref.container, ref.blob);
    if (b === undefined) throw new StoreError('BlobNotFound', `blob ${describeRef(ref)} does not exist`);
    return b;
  }

  #snapshotRow(blob: BlobRow, ref: SnapshotRef): SnapshotRow {
    const s = this.#meta.snapshot(blob.id, ref.snapshot);
    if (s === undefined) throw new StoreError('SnapshotNotFound', `snapshot ${describeRef(ref)} does not exist`);
    return s;
  }

  #target(ref: BlobOrSnapshotRef): Target {
    const blob = this.#blobRow(ref);
    return { blob, snap: isSnapshotRef(ref) ? this.#snapshotRow(blob, ref) : undefined };
  }

  #info(blob: BlobRow, snap: SnapshotRow | undefined): BlobInfo {
    const src = snap ?? blob;
    return {
      account: blob.account, container: blob.container, blob: blob.name,
      ...(snap === undefined ? {} : { snapshot: snap.snapshot }),
      size: src.size, sequenceNumber: src.seq, metadata: JSON.parse(src.metadata) as Metadata,
      createdAt: new Date(src.created), modifiedAt: new Date(src.modified), version: src.version,
      snapshots: snap === undefined ? this.#meta.snapshotsOf(blob.id).map((s) => s.snapshot) : [],
    };
  }

  /** Bump the blob's version (and apply `changes`) inside a transaction; returns the new version. */
  #bump(blob: BlobRow, changes: { size?: number }): number {
    const version = blob.version + 1;
    this.#meta.sql('UPDATE blobs SET version = ?, modified = ?, size = ? WHERE id = ?')
      .run(version, Date.now(), changes.size ?? blob.size, blob.id);
    return version;
  }

  /** Delete a blob's rows (inside a transaction); returns the gc rows that remove its files. */
  #dropBlobRows(blob: BlobRow): number[] {
    const gc: number[] = [];
    for (const s of this.#meta.snapshotsOf(blob.id)) {
      this.#meta.deleteRuns(-s.id);
      gc.push(this.#addGc(s.file, 'unlink', 0, 0));
    }
    this.#meta.sql('DELETE FROM snapshots WHERE blob_id = ?').run(blob.id);
    this.#meta.sql('DELETE FROM redo WHERE blob_id = ?').run(blob.id);
    this.#meta.deleteRuns(blob.id);
    this.#meta.sql('DELETE FROM blobs WHERE id = ?').run(blob.id);
    gc.push(this.#addGc(blob.file, 'unlink', 0, 0));
    this.#dirty.delete(blob.id);
    return gc;
  }

  #addGc(file: string, action: GcRow['action'], start: number, end: number): number {
    const r = this.#meta.sql('INSERT INTO gc(file, action, start, end) VALUES (?, ?, ?, ?) RETURNING id')
      .get(file, action, start, end) as { id: number };
    return r.id;
  }

  /** Carry out committed gc rows; their deletion rides on the next commit. */
  async #runGc(ids: number[]): Promise<void> {
    for (const id of ids) {
      const row = this.#meta.sql('SELECT * FROM gc WHERE id = ?').get(id) as GcRow | undefined;
      if (row === undefined) continue;
      if (row.action === 'unlink') await this.#files.forget(row.file);
      await runGcRow(this.#files.io, this.#files.dir, row, (path) => this.#files.handle(path));
      this.#pendingGc.add(id);
    }
  }

  /** Durably mark the blob as possibly holding bytes in unallocated pages, before its first write this session. */
  async #markDirty(blob: BlobRow): Promise<void> {
    if (this.#dirty.has(blob.id)) return;
    this.#tx(() => this.#meta.sql('UPDATE blobs SET dirty = 1 WHERE id = ?').run(blob.id));
    this.#dirty.add(blob.id);
  }

  /**
   * Copy pages `[start, end)` that snapshots still share with the blob's data file into each such snapshot's
   * own file, durably; returns the runs to switch to loc=1 in the coming commit.
   */
  async #copyBeforeWrite(blob: BlobRow, start: number, end: number): Promise<{ owner: number; run: Run<StoredStamp> }[]> {
    const copies: { owner: number; run: Run<StoredStamp> }[] = [];
    for (const snap of this.#meta.snapshotsOf(blob.id)) {
      const shared = clip(this.#meta.runsIn(-snap.id, start, end), start, end).filter((r) => r.value.loc === LOC_BLOB_FILE);
      if (shared.length === 0) continue;
      for (const r of shared) {
        await this.#files.copyPages(blob.file, snap.file, r.start, r.end);
        copies.push({ owner: -snap.id, run: r });
      }
      await (await this.#files.handle(this.#files.dataPath(snap.file))).datasync();
    }
    return copies;
  }

  #applyCopies(copies: { owner: number; run: Run<StoredStamp> }[]): void {
    for (const { owner, run } of copies) {
      this.#meta.overlay(owner, run.start, run.end, { ...run.value, loc: LOC_SNAPSHOT_FILE });
    }
  }

}

function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}
