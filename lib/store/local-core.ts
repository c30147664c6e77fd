/**
 * The shared state and plumbing of a LocalPageStore (see local.ts for the layout and the write paths), used by
 * local.ts and the files that carry out its operations (local-write.ts, local-fill.ts, local-snapshots.ts):
 *
 *   locks        one reader/writer lock per blob: mutations hold it exclusively, reads and fill batches shared
 *   failure      any I/O or commit failure is fatal: it is latched, and every later call rejects with
 *                `StoreIoFailed` until the store is reopened (which runs recovery)
 *   tx           one metadata commit, which also deletes the redo and gc rows whose file work is done
 *   dirty        a blob is marked dirty, durably, before its first data write of a session, so recovery knows
 *                to punch its unallocated pages
 *   gc           clears, shrinks and deletes commit a gc row, then punch, truncate or unlink (local-recovery.ts
 *                re-runs rows a crash cut short)
 */
import { blobKey, describeRef } from './common.js';
import { StoreError } from './errors.js';
import type { DataFiles } from './local-files.js';
import type { BlobRow, ContainerRow, GcRow, MetaDb, SnapshotRow } from './local-meta.js';
import { runGcRow } from './local-recovery.js';
import { KeyedRwLock } from './lock.js';
import { type BlobInfo, type BlobOrSnapshotRef, type BlobRef, isSnapshotRef, type Metadata, type SnapshotRef } from './types.js';
import * as v from './validate.js';

/** The blob a call is about, and the snapshot when it names one. */
export interface Target {
  blob: BlobRow;
  snap: SnapshotRow | undefined;
}

export class LocalCore {
  readonly directory: string;
  readonly files: DataFiles;
  readonly meta: MetaDb;
  readonly locks = new KeyedRwLock();
  /** Blobs whose redo row has been applied: the row is deleted by the next commit. */
  readonly pendingRedo = new Set<number>();
  readonly #dirty = new Set<number>();
  readonly #pendingGc = new Set<number>();
  #failure: unknown;
  #closed = false;
  #inFlight = new Set<Promise<unknown>>();

  constructor(directory: string, files: DataFiles, meta: MetaDb) {
    this.directory = directory;
    this.files = files;
    this.meta = meta;
  }

  /** Reject when closed or after a fatal I/O failure. */
  usable(): void {
    if (this.#closed) throw new StoreError('StoreClosed', `the store in ${this.directory} has been closed`);
    if (this.#failure !== undefined) {
      throw new StoreError('StoreIoFailed',
        `the store in ${this.directory} failed earlier and refuses further calls until it is reopened`,
        { cause: this.#failure });
    }
  }

  track<T>(p: Promise<T>): Promise<T> {
    this.#inFlight.add(p);
    const done = (): void => { this.#inFlight.delete(p); };
    p.then(done, done);
    return p;
  }

  /** Run `fn` holding `keys` exclusively; failures that are not domain or argument errors are fatal. */
  exclusive<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    this.usable();
    return this.track(this.locks.withAll(keys, async () => {
      this.usable();
      return this.fatal(fn);
    }));
  }

  /** Run `fn`; a failure that is not a domain or argument error is fatal for the store. */
  async fatal<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof StoreError || e instanceof RangeError || e instanceof TypeError) throw e;
      throw this.ioFailure(e);
    }
  }

  /** Record a fatal I/O failure; returns the error to throw. */
  ioFailure(e: unknown): StoreError {
    this.#failure ??= e;
    return new StoreError('StoreIoFailed', `a write to the store in ${this.directory} failed: ${String(e)}`, { cause: e });
  }

  mutate<T>(ref: BlobRef, fn: (blob: BlobRow) => Promise<T>): Promise<T> {
    v.checkBlobRef(ref);
    return this.exclusive([blobKey(ref)], () => fn(this.blobRow(ref)));
  }

  shared<T>(ref: BlobOrSnapshotRef, fn: (t: Target) => Promise<T>): Promise<T> {
    this.usable();
    return this.track(this.locks.with(blobKey(ref), false, async () => {
      this.usable();
      return fn(this.target(ref));
    }));
  }

  /** One metadata transaction, also deleting redo and gc rows whose work is done. */
  tx<T>(fn: () => T): T {
    return this.meta.tx(() => {
      for (const id of this.pendingRedo) this.meta.sql('DELETE FROM redo WHERE blob_id = ?').run(id);
      for (const id of this.#pendingGc) this.meta.sql('DELETE FROM gc WHERE id = ?').run(id);
      this.pendingRedo.clear();
      this.#pendingGc.clear();
      return fn();
    });
  }

  containerRow(account: string, container: string): ContainerRow {
    v.checkName('account', account);
    v.checkName('container', container);
    this.usable();
    const c = this.meta.container(account, container);
    if (c === undefined) throw new StoreError('ContainerNotFound', `container ${account}/${container} does not exist`);
    return c;
  }

  blobRow(ref: BlobRef): BlobRow {
    this.containerRow(ref.account, ref.container);
    const b = this.meta.blobByName(ref.account, ref.container, ref.blob);
    if (b === undefined) throw new StoreError('BlobNotFound', `blob ${describeRef(ref)} does not exist`);
    return b;
  }

  snapshotRow(blob: BlobRow, ref: SnapshotRef): SnapshotRow {
    const s = this.meta.snapshot(blob.id, ref.snapshot);
    if (s === undefined) throw new StoreError('SnapshotNotFound', `snapshot ${describeRef(ref)} does not exist`);
    return s;
  }

  target(ref: BlobOrSnapshotRef): Target {
    const blob = this.blobRow(ref);
    return { blob, snap: isSnapshotRef(ref) ? this.snapshotRow(blob, ref) : undefined };
  }

  info(blob: BlobRow, snap: SnapshotRow | undefined): BlobInfo {
    const src = snap ?? blob;
    return {
      account: blob.account, container: blob.container, blob: blob.name,
      ...(snap === undefined ? {} : { snapshot: snap.snapshot }),
      size: src.size, sequenceNumber: src.seq, metadata: JSON.parse(src.metadata) as Metadata,
      createdAt: new Date(src.created), modifiedAt: new Date(src.modified), version: src.version,
      snapshots: snap === undefined ? this.meta.snapshotsOf(blob.id).map((s) => s.snapshot) : [],
    };
  }

  /** Bump the blob's version (and apply `changes`) inside a transaction; returns the new version. */
  bump(blob: BlobRow, changes: { size?: number }): number {
    const version = blob.version + 1;
    this.meta.sql('UPDATE blobs SET version = ?, modified = ?, size = ? WHERE id = ?')
      .run(version, Date.now(), changes.size ?? blob.size, blob.id);
    return version;
  }

  /** Delete a blob's rows (inside a transaction); returns the gc rows that remove its files. */
  dropBlobRows(blob: BlobRow): number[] {
    const gc: number[] = [];
    for (const s of this.meta.snapshotsOf(blob.id)) {
      this.meta.deleteRuns(-s.id);
      gc.push(this.addGc(s.file, 'unlink', 0, 0));
    }
    this.meta.sql('DELETE FROM snapshots WHERE blob_id = ?').run(blob.id);
    this.meta.sql('DELETE FROM redo WHERE blob_id = ?').run(blob.id);
    this.meta.deleteRuns(blob.id);
    this.meta.sql('DELETE FROM blobs WHERE id = ?').run(blob.id);
    gc.push(this.addGc(blob.file, 'unlink', 0, 0));
    this.#dirty.delete(blob.id);
    return gc;
  }

  addGc(file: string, action: GcRow['action'], start: number, end: number): number {
    const r = this.meta.sql('INSERT INTO gc(file, action, start, end) VALUES (?, ?, ?, ?) RETURNING id')
      .get(file, action, start, end) as { id: number };
    return r.id;
  }

  /** Carry out committed gc rows; their deletion rides on the next commit. */
  async runGc(ids: number[]): Promise<void> {
    for (const id of ids) {
      const row = this.meta.sql('SELECT * FROM gc WHERE id = ?').get(id) as GcRow | undefined;
      if (row === undefined) continue;
      if (row.action === 'unlink') await this.files.forget(row.file);
      await runGcRow(this.files.io, this.files.dir, row, (path) => this.files.handle(path));
      this.#pendingGc.add(id);
    }
  }

  /** Durably mark the blob as possibly holding bytes in unallocated pages, before its first write this session. */
  async markDirty(blob: BlobRow): Promise<void> {
    if (this.#dirty.has(blob.id)) return;
    this.tx(() => this.meta.sql('UPDATE blobs SET dirty = 1 WHERE id = ?').run(blob.id));
    this.#dirty.add(blob.id);
  }

  /** Wait for calls in flight, close the files and, after a clean session, clear the dirty marks. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    await this.files.closeAll();
    if (this.#failure === undefined) {
      this.tx(() => this.meta.sql('UPDATE blobs SET dirty = 0 WHERE dirty = 1').run());
    }
    this.meta.close();
  }
}
