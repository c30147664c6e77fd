/**
 * LocalPageStore snapshots. A snapshot is a row, a copy of the blob's runs under owner -snapshot id, and its own
 * sparse data file (`<dir>/data/<sid>.dat`, see local.ts). Its runs start with loc=0: the pages are shared with
 * the blob's data file. Before the blob overwrites, clears or drops shared pages, they are copied:
 *
 *   copy-before-write:  pwrite <sid>.dat ─ fdatasync ─ (the caller's COMMIT switches those runs to loc=1)
 *
 * so a snapshot's bytes are durable in its own file before the commit that lets the blob's pages change.
 */
import { randomUUID } from 'node:crypto';

import { describeRef, newSnapshotId } from './common.js';
import { StoreError } from './errors.js';
import type { LocalCore } from './local-core.js';
import { type BlobRow, LOC_BLOB_FILE, LOC_SNAPSHOT_FILE, type StoredStamp } from './local-meta.js';
import { clip, diffRuns, pagesOfRange, type Run } from './ranges.js';
import { type BlobOrSnapshotRef, type BlobRef, type DiffResult, PAGE_SIZE, type PageRange, type SnapshotRef } from './types.js';
import * as v from './validate.js';

/** Snapshot pages copied to the snapshot's own file, whose runs switch to loc=1 in the coming commit. */
export type SnapshotCopies = { owner: number; run: Run<StoredStamp> }[];

export async function createSnapshot(core: LocalCore, ref: BlobRef): Promise<string> {
  return core.mutate(ref, async (blob) => {
    const snaps = core.meta.snapshotsOf(blob.id);
    const id = newSnapshotId(snaps[snaps.length - 1]?.snapshot);
    const file = randomUUID();
    await core.files.create(file, false);
    core.tx(() => {
      const row = core.meta.sql(`INSERT INTO snapshots(blob_id, snapshot, file, size, seq, metadata, created, modified,
        version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`)
        .get(blob.id, id, file, blob.size, blob.seq, blob.metadata, Date.now(), blob.modified, blob.version) as { id: number };
      core.meta.copyRuns(blob.id, -row.id, LOC_BLOB_FILE);
    });
    return id;
  });
}

export async function deleteSnapshot(core: LocalCore, ref: SnapshotRef): Promise<void> {
  v.checkName('snapshot', ref.snapshot);
  await core.mutate(ref, async (blob) => {
    const snap = core.snapshotRow(blob, ref);
    const gc = core.tx(() => {
      core.meta.deleteRuns(-snap.id);
      core.meta.sql('DELETE FROM snapshots WHERE id = ?').run(snap.id);
      return [core.addGc(snap.file, 'unlink', 0, 0)];
    });
    await core.runGc(gc);
  });
}

export async function diffRanges(core: LocalCore, ref: BlobOrSnapshotRef, previousSnapshot: string, window?: PageRange):
  Promise<DiffResult> {
  v.checkAnyRef(ref);
  v.checkName('previousSnapshot', previousSnapshot);
  const w = v.checkWindow(window);
  return core.shared(ref, async ({ blob, snap }) => {
    const prev = core.meta.snapshot(blob.id, previousSnapshot);
    if (prev === undefined || (snap !== undefined && previousSnapshot >= snap.snapshot)) {
      throw new StoreError('PreviousSnapshotNotFound', `${previousSnapshot} is not an earlier snapshot of ${describeRef(ref)}`);
    }
    const pages = (snap?.size ?? blob.size) / PAGE_SIZE;
    const { start, end } = w === undefined ? { start: 0, end: pages } : pagesOfRange(w);
    const stop = Math.min(end, pages);
    const target = core.meta.runsIn(snap === undefined ? blob.id : -snap.id, start, stop);
    return diffRuns(target, core.meta.runsIn(-prev.id, start, stop), start, stop, (s) => s.version);
  });
}

/**
 * Copy pages `[start, end)` that snapshots still share with the blob's data file into each such snapshot's
 * own file, durably; returns the runs to switch to loc=1 in the coming commit.
 */
export async function copyBeforeWrite(core: LocalCore, blob: BlobRow, start: number, end: number): Promise<SnapshotCopies> {
  const copies: SnapshotCopies = [];
  for (const snap of core.meta.snapshotsOf(blob.id)) {
    const shared = clip(core.meta.runsIn(-snap.id, start, end), start, end).filter((r) => r.value.loc === LOC_BLOB_FILE);
    if (shared.length === 0) continue;
    for (const r of shared) {
      await core.files.copyPages(blob.file, snap.file, r.start, r.end);
      copies.push({ owner: -snap.id, run: r });
    }
    await (await core.files.handle(core.files.dataPath(snap.file))).datasync();
  }
  return copies;
}

/** Switch the copied runs to loc=1 (inside the transaction that changes the blob's pages). */
export function applyCopies(core: LocalCore, copies: SnapshotCopies): void {
  for (const { owner, run } of copies) {
    core.meta.overlay(owner, run.start, run.end, { ...run.value, loc: LOC_SNAPSHOT_FILE });
  }
}
