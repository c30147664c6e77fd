/**
 * LocalPageStore's metadata: one SQLite database (better-sqlite3) holding containers, blobs, snapshots, the
 * page runs with their tags, and two small work queues (`redo`, `gc`). It holds no page bytes.
 *
 * Settings: `journal_mode=WAL` + `synchronous=FULL` (every commit fsyncs the WAL: a committed transaction
 * survives power loss), `secure_delete=ON` (deleted rows are zeroed), a WAL checkpointed every 256 pages and cut back to 1 MiB, `locking_mode=EXCLUSIVE` (one process
 * per store; no -shm file), and the WAL is checkpointed and truncated on close.
 *
 * Runs (see ranges.ts) are rows keyed `(owner, start)`: owner = blob id for a blob, -snapshot id for a
 * snapshot. `loc` says where a snapshot page's bytes are: 0 = still in the blob's data file (unchanged since
 * the snapshot), 1 = copied into the snapshot's own file before the blob overwrote them.
 */
import Database from 'better-sqlite3';

import { overlay, type PageStamp, type Run } from './ranges.js';

export const SCHEMA_VERSION = 1;

/** Where a page's bytes live: the blob's own data file, or (snapshots only) the snapshot's copy file. */
export const LOC_BLOB_FILE = 0;
export const LOC_SNAPSHOT_FILE = 1;

export interface StoredStamp extends PageStamp {
  loc: number;
}

export const sameStored = (a: StoredStamp, b: StoredStamp): boolean =>
  a.tag === b.tag && a.version === b.version && a.loc === b.loc;

export interface BlobRow {
  id: number;
  account: string;
  container: string;
  name: string;
  file: string;
  size: number;
  seq: number;
  metadata: string;
  created: number;
  modified: number;
  version: number;
  dirty: number;
}

export interface SnapshotRow {
  id: number;
  blob_id: number;
  snapshot: string;
  file: string;
  size: number;
  seq: number;
  metadata: string;
  created: number;
  modified: number;
  version: number;
}

export interface ContainerRow {
  account: string;
  name: string;
  metadata: string;
  created: number;
}

/** A pending overwrite: pages `pieces` of blob `blob_id`, their bytes in the blob's `.redo` file. */
export interface RedoRow {
  blob_id: number;
  pieces: string;
  bytes: number;
  sha256: Buffer;
}

/** A pending reclaim: punch pages [start, end) of a file, truncate it to `start` pages, or unlink it. */
export interface GcRow {
  id: number;
  file: string;
  action: 'punch' | 'truncate' | 'unlink';
  start: number;
  end: number;
}

interface RunRow {
  start: number;
  end: number;
  tag: number;
  version: number;
  loc: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS info(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS containers(account TEXT NOT NULL, name TEXT NOT NULL, metadata TEXT NOT NULL,
  created INTEGER NOT NULL, PRIMARY KEY(account, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs(id INTEGER PRIMARY KEY, account TEXT NOT NULL, container TEXT NOT NULL,
  name TEXT NOT NULL, file TEXT NOT NULL UNIQUE, size INTEGER NOT NULL, seq INTEGER NOT NULL,
  metadata TEXT NOT NULL, created INTEGER NOT NULL, modified INTEGER NOT NULL, version INTEGER NOT NULL,
  dirty INTEGER NOT NULL DEFAULT 0, UNIQUE(account, container, name));
CREATE TABLE IF NOT EXISTS snapshots(id INTEGER PRIMARY KEY, blob_id INTEGER NOT NULL, snapshot TEXT NOT NULL,
  file TEXT NOT NULL UNIQUE, size INTEGER NOT NULL, seq INTEGER NOT NULL, metadata TEXT NOT NULL,
  created INTEGER NOT NULL, modified INTEGER NOT NULL, version INTEGER NOT NULL, UNIQUE(blob_id, snapshot));
CREATE TABLE IF NOT EXISTS runs(owner INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
  tag INTEGER NOT NULL, version INTEGER NOT NULL, loc INTEGER NOT NULL, PRIMARY KEY(owner, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS redo(blob_id INTEGER PRIMARY KEY, pieces TEXT NOT NULL, bytes INTEGER NOT NULL,
  sha256 BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS gc(id INTEGER PRIMARY KEY, file TEXT NOT NULL, action TEXT NOT NULL,
  start INTEGER NOT NULL, end INTEGER NOT NULL);
`;

/** Checkpoint the WAL every this many pages, and truncate it back to this size: it stays ~1 MiB. */
export const WAL_CHECKPOINT_PAGES = 256;
export const WAL_SIZE_LIMIT = 1024 * 1024;

/** Runs fetched per query when iterating. */
export const RUN_BATCH = 1024;

function toRun(r: RunRow): Run<StoredStamp> {
  return { start: r.start, end: r.end, value: { tag: r.tag, version: r.version, loc: r.loc } };
}

export class MetaDb {
  readonly db: Database.Database;
  readonly #stmt: Record<string, Database.Statement>;

  constructor(path: string) {
    this.db = new Database(path, { timeout: 0 });
    this.db.pragma('locking_mode = EXCLUSIVE');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('secure_delete = ON');
    this.db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
    this.db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
    this.db.pragma('foreign_keys = OFF');
    this.db.exec('BEGIN IMMEDIATE; COMMIT'); // take the exclusive lock now
    this.db.exec(SCHEMA);
    this.db.prepare('INSERT OR IGNORE INTO info(key, value) VALUES (\'schema\', ?)').run(SCHEMA_VERSION);
    const p = (sql: string): Database.Statement => this.db.prepare(sql);
    this.#stmt = {
      runBefore: p('SELECT start, end, tag, version, loc FROM runs WHERE owner = ? AND start < ? ORDER BY start DESC LIMIT 1'),
      runsFrom: p('SELECT start, end, tag, version, loc FROM runs WHERE owner = ? AND start >= ? AND start <= ? ORDER BY start'),
      runsBatch: p('SELECT start, end, tag, version, loc FROM runs WHERE owner = ? AND start >= ? AND start < ? ORDER BY start LIMIT ?'),
      deleteRun: p('DELETE FROM runs WHERE owner = ? AND start = ?'),
      insertRun: p('INSERT INTO runs(owner, start, end, tag, version, loc) VALUES (?, ?, ?, ?, ?, ?)'),
      deleteRunsFrom: p('DELETE FROM runs WHERE owner = ? AND start >= ?'),
      trimRun: p('UPDATE runs SET end = ? WHERE owner = ? AND start = ?'),
      blobByName: p('SELECT * FROM blobs WHERE account = ? AND container = ? AND name = ?'),
      blobById: p('SELECT * FROM blobs WHERE id = ?'),
      snapshot: p('SELECT * FROM snapshots WHERE blob_id = ? AND snapshot = ?'),
      snapshotsOf: p('SELECT * FROM snapshots WHERE blob_id = ? ORDER BY snapshot'),
      container: p('SELECT * FROM containers WHERE account = ? AND name = ?'),
    };
  }

  #s(name: string): Database.Statement {
    return this.#stmt[name] as Database.Statement;
  }

  /** Runs of `owner` that overlap or touch pages `[start, end)`: the slice an overlay there replaces. */
  runsAround(owner: number, start: number, end: number): Run<StoredStamp>[] {
    const out: Run<StoredStamp>[] = [];
    const before = this.#s('runBefore').get(owner, start) as RunRow | undefined;
    if (before !== undefined && before.end >= start) out.push(toRun(before));
    for (const r of this.#s('runsFrom').all(owner, start, end) as RunRow[]) out.push(toRun(r));
    return out;
  }

  /** Runs of `owner` overlapping pages `[start, end)`, unclipped, at most `limit`. */
  runsIn(owner: number, start: number, end: number, limit = Number.MAX_SAFE_INTEGER): Run<StoredStamp>[] {
    const out: Run<StoredStamp>[] = [];
    const before = this.#s('runBefore').get(owner, start) as RunRow | undefined;
    if (before !== undefined && before.end > start) out.push(toRun(before));
    if (out.length >= limit) return out;
    for (const r of this.#s('runsBatch').all(owner, start, end, limit - out.length) as RunRow[]) out.push(toRun(r));
    return out;
  }

  /** Replace the runs of `owner` around `[start, end)` by the overlay of `value` (null unallocates). */
  overlay(owner: number, start: number, end: number, value: StoredStamp | null): void {
    const old = this.runsAround(owner, start, end);
    const next = overlay(old, start, end, value, sameStored);
    for (const r of old) this.#s('deleteRun').run(owner, r.start);
    for (const r of next) this.#s('insertRun').run(owner, r.start, r.end, r.value.tag, r.value.version, r.value.loc);
  }

  /** Drop pages at or past `end`. */
  truncateRuns(owner: number, end: number): void {
    this.#s('deleteRunsFrom').run(owner, end);
    const before = this.#s('runBefore').get(owner, end) as RunRow | undefined;
    if (before !== undefined && before.end > end) this.#s('trimRun').run(end, owner, before.start);
  }

  copyRuns(fromOwner: number, toOwner: number, loc: number): void {
    this.sql('INSERT INTO runs(owner, start, end, tag, version, loc) SELECT ?, start, end, tag, version, ? FROM runs WHERE owner = ?')
      .run(toOwner, loc, fromOwner);
  }

  deleteRuns(owner: number): void {
    this.sql('DELETE FROM runs WHERE owner = ?').run(owner);
  }

  blobByName(account: string, container: string, name: string): BlobRow | undefined {
    return this.#s('blobByName').get(account, container, name) as BlobRow | undefined;
  }

  blobById(id: number): BlobRow | undefined {
    return this.#s('blobById').get(id) as BlobRow | undefined;
  }

  snapshot(blobId: number, snapshot: string): SnapshotRow | undefined {
    return this.#s('snapshot').get(blobId, snapshot) as SnapshotRow | undefined;
  }

  snapshotsOf(blobId: number): SnapshotRow[] {
    return this.#s('snapshotsOf').all(blobId) as SnapshotRow[];
  }

  container(account: string, name: string): ContainerRow | undefined {
    return this.#s('container').get(account, name) as ContainerRow | undefined;
  }

  #cache = new Map<string, Database.Statement>();

  /** A cached prepared statement. */
  sql(text: string): Database.Statement {
    let st = this.#cache.get(text);
    if (st === undefined) {
      st = this.db.prepare(text);
      this.#cache.set(text, st);
    }
    return st;
  }

  /** Run `fn` in one transaction: committed (and fsynced) when it returns. */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (!this.db.open) return;
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}
