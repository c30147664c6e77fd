/**
 * LocalPageStore recovery, run by `LocalPageStore.open` before the store accepts calls. Every step is
 * idempotent and commits only after its file work is durable, so a crash during recovery is recovered by the
 * next open:
 *
 *   1. redo rows    replay committed overwrites whose bytes (SHA-256 checked) are still in the .redo file;
 *                   a mismatch means the row was applied and its file truncated or reused
 *   2. gc rows      re-run committed punches, truncations and unlinks
 *   3. dirty blobs  punch every unallocated page of blobs (and their snapshot files) written in a session
 *                   that did not close cleanly: bytes of writes that never committed vanish, and truncate
 *                   the .redo file
 *   4. orphans      unlink data files no row refers to (a create or delete cut short)
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';

import type { FileHandleIo, FileIo } from './file-io.js';
import { type BlobRow, type GcRow, LOC_SNAPSHOT_FILE, type MetaDb, type RedoRow, type SnapshotRow } from './local-meta.js';
import { gaps } from './ranges.js';
import { PAGE_SIZE } from './types.js';

export const DATA_SUFFIX = '.dat';
export const REDO_SUFFIX = '.redo';

export function dataPath(dataDir: string, file: string): string {
  return join(dataDir, file + DATA_SUFFIX);
}

export function redoPath(dataDir: string, file: string): string {
  return join(dataDir, file + REDO_SUFFIX);
}

type OpenHandle = (path: string) => Promise<FileHandleIo>;

function isMissing(e: unknown): boolean {
  return (e as { code?: string }).code === 'ENOENT';
}

/** Carry out one gc row. A missing file means the work was done already. */
export async function runGcRow(io: FileIo, dataDir: string, row: GcRow, handle: OpenHandle): Promise<void> {
  if (row.action === 'unlink') {
    await io.unlink(dataPath(dataDir, row.file));
    await io.unlink(redoPath(dataDir, row.file));
    await io.syncDir(dataDir);
    return;
  }
  let h: FileHandleIo;
  try {
    h = await handle(dataPath(dataDir, row.file));
  } catch (e) {
    if (isMissing(e)) return;
    throw e;
  }
  const size = await h.size();
  if (row.action === 'truncate') {
    if (size > row.start * PAGE_SIZE) await h.truncate(row.start * PAGE_SIZE);
  } else {
    const from = row.start * PAGE_SIZE;
    const to = Math.min(row.end * PAGE_SIZE, size);
    if (to > from) await io.punchHoles(dataPath(dataDir, row.file), h, [{ offset: from, length: to - from }]);
  }
  await h.datasync();
}

/** Punch every page of `path` not covered by `runs` (up to the file's end). */
async function punchUnallocated(io: FileIo, path: string, h: FileHandleIo,
  runs: { start: number; end: number }[]): Promise<void> {
  const pages = Math.ceil((await h.size()) / PAGE_SIZE);
  const holes = gaps(runs.map((r) => ({ ...r, value: 0 })), 0, pages)
    .map((g) => ({ offset: g.start * PAGE_SIZE, length: (g.end - g.start) * PAGE_SIZE }));
  await io.punchHoles(path, h, holes);
  await h.datasync();
}

export async function recover(meta: MetaDb, io: FileIo, dataDir: string): Promise<void> {
  const handles = new Map<string, FileHandleIo>();
  const handle: OpenHandle = async (path) => {
    let h = handles.get(path);
    if (h === undefined) {
      h = await io.open(path, 'open');
      handles.set(path, h);
    }
    return h;
  };
  try {
    // 1. redo
    for (const row of meta.sql('SELECT * FROM redo').all() as RedoRow[]) {
      const blob = meta.blobById(row.blob_id);
      if (blob !== undefined) {
        const redo = await handle(redoPath(dataDir, blob.file));
        if ((await redo.size()) >= row.bytes) {
          const bytes = new Uint8Array(row.bytes);
          await redo.read(bytes, 0, row.bytes, 0);
          if (createHash('sha256').update(bytes).digest().equals(row.sha256)) {
            const dat = await handle(dataPath(dataDir, blob.file));
            let at = 0;
            for (const [start, end] of JSON.parse(row.pieces) as [number, number][]) {
              const n = (end - start) * PAGE_SIZE;
              await dat.write(bytes, at, n, start * PAGE_SIZE);
              at += n;
            }
            await dat.datasync();
          }
        }
        await redo.truncate(0);
        await redo.datasync();
      }
      meta.tx(() => meta.sql('DELETE FROM redo WHERE blob_id = ?').run(row.blob_id));
    }
    // 2. gc
    for (const row of meta.sql('SELECT * FROM gc ORDER BY id').all() as GcRow[]) {
      await runGcRow(io, dataDir, row, handle);
      meta.tx(() => meta.sql('DELETE FROM gc WHERE id = ?').run(row.id));
    }
    // 3. dirty blobs
    for (const blob of meta.sql('SELECT * FROM blobs WHERE dirty = 1').all() as BlobRow[]) {
      const datPath = dataPath(dataDir, blob.file);
      const dat = await handle(datPath);
      if ((await dat.size()) > blob.size) await dat.truncate(blob.size);
      await punchUnallocated(io, datPath, dat, meta.runsIn(blob.id, 0, Number.MAX_SAFE_INTEGER));
      const redo = await handle(redoPath(dataDir, blob.file));
      await redo.truncate(0);
      await redo.datasync();
      for (const snap of meta.snapshotsOf(blob.id) as SnapshotRow[]) {
        const path = dataPath(dataDir, snap.file);
        const own = meta.runsIn(-snap.id, 0, Number.MAX_SAFE_INTEGER).filter((r) => r.value.loc === LOC_SNAPSHOT_FILE);
        await punchUnallocated(io, path, await handle(path), own);
      }
      meta.tx(() => meta.sql('UPDATE blobs SET dirty = 0 WHERE id = ?').run(blob.id));
    }
    // 4. orphans
    const live = new Set<string>([
      ...(meta.sql('SELECT file FROM blobs').all() as { file: string }[]).map((r) => r.file),
      ...(meta.sql('SELECT file FROM snapshots').all() as { file: string }[]).map((r) => r.file),
    ]);
    let unlinked = false;
    for (const name of await io.list(dataDir)) {
      const stem = name.endsWith(DATA_SUFFIX) ? name.slice(0, -DATA_SUFFIX.length)
        : name.endsWith(REDO_SUFFIX) ? name.slice(0, -REDO_SUFFIX.length) : undefined;
      if (stem !== undefined && live.has(stem)) continue;
      await io.unlink(join(dataDir, name));
      unlinked = true;
    }
    if (unlinked) await io.syncDir(dataDir);
  } finally {
    for (const h of handles.values()) await h.close().catch(() => undefined);
  }
}
