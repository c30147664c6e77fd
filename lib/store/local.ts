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
 *
 * The files: local-core.ts (locks, fatal failures, commits, gc), local-write.ts (writes and clears),
 * local-fill.ts (fill batches), local-snapshots.ts (snapshots, copy-before-write), local-meta.ts (SQLite),
 * local-files.ts (data files), local-recovery.ts (recovery at open).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';

import { blobKey, checkInside, describeRef, nextSequenceNumber } from './common.js';
import { StoreError } from './errors.js';
import { type FileIo, nodeFileIo } from './file-io.js';
import { LocalCore } from './local-core.js';
import * as fill from './local-fill.js';
import { type BlobRow, type ContainerRow, LOC_SNAPSHOT_FILE, MetaDb, RUN_BATCH, type SnapshotRow } from './local-meta.js';
import { DataFiles } from './local-files.js';
import { recover } from './local-recovery.js';
import * as snapshots from './local-snapshots.js';
import { clearIn, writeIn } from './local-write.js';
import { appendTagged, clip, pagesOfRange, pageWindow, toTaggedRanges } from './ranges.js';
import {
  type BlobInfo, type BlobOrSnapshotRef, type BlobRef, type ContainerInfo, type CreateBlobOptions, type DiffResult,
  type FillExtent, type FillOptions, type FillResult, type Metadata, PAGE_SIZE, type PageRange, type PageStore, type ReadResult,
  type SequenceNumberAction, type SnapshotRef, type TaggedRange, type WriteConditions,
} from './types.js';
import * as v from './validate.js';

export { FILL_WRITEBACK_BYTES, FILL_WRITES_IN_FLIGHT } from './local-fill.js';

export interface LocalPageStoreOptions {
  /** File operations; tests inject failures here. Default: node:fs plus `fallocate` for punching holes. */
  fileIo?: FileIo;
}

export const META_FILE = 'meta.sqlite';
export const DATA_DIR = 'data';

export class LocalPageStore implements PageStore {
  readonly directory: string;
  /** True when clears and shrinks return space to the filesystem (punch hole); false: they write zeros. */
  readonly punchesHoles: boolean;
  readonly #core: LocalCore;

  private constructor(directory: string, io: FileIo, meta: MetaDb, punchesHoles: boolean) {
    this.directory = directory;
    this.#core = new LocalCore(directory, DataFiles.in(directory, DATA_DIR, io), meta);
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
    await this.#core.exclusive([JSON.stringify([account, container])], async () => {
      if (this.#core.meta.container(account, container) !== undefined) {
        throw new StoreError('ContainerAlreadyExists', `container ${account}/${container} already exists`);
      }
      this.#core.tx(() => this.#core.meta.sql('INSERT INTO containers(account, name, metadata, created) VALUES (?, ?, ?, ?)')
        .run(account, container, JSON.stringify(md), Date.now()));
    });
  }

  async deleteContainer(account: string, container: string): Promise<void> {
    v.checkName('account', account);
    v.checkName('container', container);
    this.#core.usable();
    const blobsOf = (): BlobRow[] => this.#core.meta.sql('SELECT * FROM blobs WHERE account = ? AND container = ? ORDER BY name')
      .all(account, container) as BlobRow[];
    const keyOf = (b: BlobRow): string => blobKey({ account, container, blob: b.name });
    for (;;) {
      // Hold every blob's lock; a blob created meanwhile (whose lock we lack) means: take the locks again.
      const keys = blobsOf().map(keyOf);
      const done = await this.#core.exclusive([JSON.stringify([account, container]), ...keys], async () => {
        if (this.#core.meta.container(account, container) === undefined) {
          throw new StoreError('ContainerNotFound', `container ${account}/${container} does not exist`);
        }
        const blobs = blobsOf();
        if (blobs.some((b) => !keys.includes(keyOf(b)))) return false;
        const gc = this.#core.tx(() => {
          this.#core.meta.sql('DELETE FROM containers WHERE account = ? AND name = ?').run(account, container);
          return blobs.flatMap((b) => this.#core.dropBlobRows(b));
        });
        await this.#core.runGc(gc);
        return true;
      });
      if (done) return;
    }
  }

  async listContainers(account: string): Promise<ContainerInfo[]> {
    v.checkName('account', account);
    this.#core.usable();
    return (this.#core.meta.sql('SELECT * FROM containers WHERE account = ? ORDER BY name').all(account) as ContainerRow[])
      .map((c) => ({ account, container: c.name, metadata: JSON.parse(c.metadata) as Metadata, createdAt: new Date(c.created) }));
  }

  async listBlobs(account: string, container: string): Promise<BlobInfo[]> {
    this.#core.containerRow(account, container);
    return (this.#core.meta.sql('SELECT * FROM blobs WHERE account = ? AND container = ? ORDER BY name')
      .all(account, container) as BlobRow[]).map((b) => this.#core.info(b, undefined));
  }

  // ── blobs ─────────────────────────────────────────────────────────────────────────────────────────────

  async createBlob(ref: BlobRef, size: number, options: CreateBlobOptions = {}): Promise<BlobInfo> {
    v.checkBlobRef(ref);
    v.checkBlobSize(size);
    const metadata = v.checkMetadata(options.metadata);
    const seq = v.checkInteger('sequenceNumber', options.sequenceNumber ?? 0);
    return this.#core.exclusive([blobKey(ref)], async () => {
      this.#core.containerRow(ref.account, ref.container);
      const old = this.#core.meta.blobByName(ref.account, ref.container, ref.blob);
      if (old !== undefined && options.overwrite !== true) {
        throw new StoreError('BlobAlreadyExists', `blob ${describeRef(ref)} already exists`);
      }
      const file = randomUUID();
      await this.#core.files.create(file, true);
      const now = Date.now();
      const { row, gc } = this.#core.tx(() => {
        this.#core.containerRow(ref.account, ref.container); // it may have been deleted while the file was created
        const gc = old === undefined ? [] : this.#core.dropBlobRows(old);
        const row = this.#core.meta.sql(`INSERT INTO blobs(account, container, name, file, size, seq, metadata, created,
          modified, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0) RETURNING *`)
          .get(ref.account, ref.container, ref.blob, file, size, seq, JSON.stringify(metadata), now, now) as BlobRow;
        return { row, gc };
      });
      await this.#core.runGc(gc);
      return this.#core.info(row, undefined);
    });
  }

  async getBlob(ref: BlobOrSnapshotRef): Promise<BlobInfo> {
    v.checkAnyRef(ref);
    this.#core.usable();
    const t = this.#core.target(ref);
    return this.#core.info(t.blob, t.snap);
  }

  async setMetadata(ref: BlobRef, metadata: Metadata): Promise<BlobInfo> {
    const md = v.checkMetadata(metadata);
    return this.#core.mutate(ref, async (blob) => {
      this.#core.tx(() => this.#core.meta.sql('UPDATE blobs SET metadata = ?, modified = ? WHERE id = ?')
        .run(JSON.stringify(md), Date.now(), blob.id));
      return this.#core.info(this.#core.meta.blobById(blob.id) as BlobRow, undefined);
    });
  }

  async deleteBlob(ref: BlobRef): Promise<void> {
    await this.#core.mutate(ref, async (blob) => {
      await this.#core.runGc(this.#core.tx(() => this.#core.dropBlobRows(blob)));
    });
  }

  async resizeBlob(ref: BlobRef, size: number): Promise<BlobInfo> {
    v.checkBlobSize(size);
    return this.#core.mutate(ref, async (blob) => {
      if (size >= blob.size) {
        this.#core.tx(() => this.#core.meta.sql('UPDATE blobs SET size = ?, modified = ? WHERE id = ?').run(size, Date.now(), blob.id));
      } else {
        const end = size / PAGE_SIZE;
        await this.#core.markDirty(blob);
        const copies = await snapshots.copyBeforeWrite(this.#core, blob, end, blob.size / PAGE_SIZE);
        const gc = this.#core.tx(() => {
          this.#core.meta.truncateRuns(blob.id, end);
          snapshots.applyCopies(this.#core, copies);
          this.#core.bump(blob, { size });
          return [this.#core.addGc(blob.file, 'truncate', end, end)];
        });
        await this.#core.runGc(gc);
      }
      return this.#core.info(this.#core.meta.blobById(blob.id) as BlobRow, undefined);
    });
  }

  async setSequenceNumber(ref: BlobRef, action: SequenceNumberAction, value?: number): Promise<BlobInfo> {
    const a = v.checkSequenceAction(action, value);
    return this.#core.mutate(ref, async (blob) => {
      const seq = nextSequenceNumber(blob.seq, a.action, a.value);
      this.#core.tx(() => this.#core.meta.sql('UPDATE blobs SET seq = ?, modified = ? WHERE id = ?').run(seq, Date.now(), blob.id));
      return this.#core.info(this.#core.meta.blobById(blob.id) as BlobRow, undefined);
    });
  }

  // ── pages ─────────────────────────────────────────────────────────────────────────────────────────────

  async writePages(ref: BlobRef, offset: number, data: Uint8Array, tag: number, conditions?: WriteConditions): Promise<void> {
    v.checkAligned('offset', offset, Number.MAX_SAFE_INTEGER);
    v.checkWriteData(data);
    v.checkTag(tag);
    const cond = v.checkConditions(conditions);
    const bytes = Buffer.from(data); // our own copy: the caller may reuse `data` once we return
    await this.#core.mutate(ref, (blob) => writeIn(this.#core, ref, blob, offset, bytes, tag, cond));
  }

  /** Bulk fill (see PageStore.fillPages): batches of fresh pages, the rest as writePages (local-fill.ts). */
  async fillPages(ref: BlobRef, extents: AsyncIterable<FillExtent>, options?: FillOptions): Promise<FillResult> {
    return fill.fillPages(this.#core, ref, extents, options);
  }

  async clearPages(ref: BlobRef, offset: number, length: number, conditions?: WriteConditions): Promise<void> {
    v.checkAligned('offset', offset, Number.MAX_SAFE_INTEGER);
    v.checkClearLength(length);
    const cond = v.checkConditions(conditions);
    await this.#core.mutate(ref, (blob) => clearIn(this.#core, ref, blob, offset, length, cond));
  }

  async readPages(ref: BlobOrSnapshotRef, offset: number, length: number): Promise<ReadResult> {
    v.checkAnyRef(ref);
    v.checkReadWindow(offset, length);
    return this.#core.shared(ref, async ({ blob, snap }) => {
      const size = snap?.size ?? blob.size;
      checkInside(ref, offset, length, size);
      const { start, end } = pageWindow(offset, length);
      const runs = clip(this.#core.meta.runsIn(snap === undefined ? blob.id : -snap.id, start, end), start, end);
      const data = new Uint8Array(length);
      for (const r of runs) {
        const file = r.value.loc === LOC_SNAPSHOT_FILE ? (snap as SnapshotRow).file : blob.file;
        const from = Math.max(offset, r.start * PAGE_SIZE);
        const to = Math.min(offset + length, r.end * PAGE_SIZE);
        await (await this.#core.files.handle(this.#core.files.dataPath(file))).read(data, from - offset, to - from, from);
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
      const batch = await this.#core.shared(ref, async ({ blob, snap }) => {
        if (at === undefined) {
          const pages = (snap?.size ?? blob.size) / PAGE_SIZE;
          ({ start: at, end } = w === undefined ? { start: 0, end: pages } : pagesOfRange(w));
          end = Math.min(end, pages);
        }
        return clip(this.#core.meta.runsIn(snap === undefined ? blob.id : -snap.id, at, end, RUN_BATCH), at, end);
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

  // ── snapshots ─────────────────────────────────────────────────────────────────────────────────────────

  async createSnapshot(ref: BlobRef): Promise<string> {
    return snapshots.createSnapshot(this.#core, ref);
  }

  async deleteSnapshot(ref: SnapshotRef): Promise<void> {
    return snapshots.deleteSnapshot(this.#core, ref);
  }

  async diffRanges(ref: BlobOrSnapshotRef, previousSnapshot: string, window?: PageRange): Promise<DiffResult> {
    return snapshots.diffRanges(this.#core, ref, previousSnapshot, window);
  }

  async close(): Promise<void> {
    return this.#core.close();
  }
}
