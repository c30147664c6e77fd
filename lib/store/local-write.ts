/**
 * LocalPageStore page writes and clears, run with the blob's lock held exclusively (see local.ts for the layout
 * and every write path). The durable point of each is one SQLite commit:
 *
 *   fresh pages (unallocated):  pwrite .dat ─ fdatasync ─ COMMIT runs            no double write
 *   allocated pages:            pwrite .redo ─ fdatasync ─ COMMIT runs + redo row ─ pwrite .dat ─ fdatasync
 *                               ─ truncate .redo ─ (redo row deleted by the next commit)
 *   clear:                      COMMIT runs + gc row ─ punch .dat ─ fdatasync ─ (gc row deleted)
 *
 * Fresh pages need no journal: until the commit they read as zeros, and recovery punches them. Allocated pages
 * are journaled first; the redo row keeps the SHA-256 of the journal, so recovery replays a row whose bytes
 * are still in the .redo file and knows one whose file was truncated or reused as applied (local-recovery.ts).
 * Pages shared with snapshots are copied out first (local-snapshots.ts).
 */
import { createHash } from 'node:crypto';

import { checkConditions, checkInside } from './common.js';
import type { LocalCore } from './local-core.js';
import { type BlobRow, LOC_BLOB_FILE } from './local-meta.js';
import { applyCopies, copyBeforeWrite } from './local-snapshots.js';
import { clip, gaps, pageWindow } from './ranges.js';
import { type BlobRef, PAGE_SIZE, type WriteConditions } from './types.js';

/** writePages on `blob`, its lock held. */
export async function writeIn(core: LocalCore, ref: BlobRef, blob: BlobRow, offset: number, bytes: Uint8Array, tag: number,
  cond: WriteConditions): Promise<void> {
  checkInside(ref, offset, bytes.length, blob.size);
  const { start, end } = pageWindow(offset, bytes.length);
  const around = core.meta.runsIn(blob.id, start, end);
  checkConditions(cond, blob.seq, around, start, end);
  const allocated = clip(around, start, end);
  const fresh = gaps(around, start, end);
  await core.markDirty(blob);
  const copies = await copyBeforeWrite(core, blob, start, end);
  const dat = await core.files.handle(core.files.dataPath(blob.file));
  const slice = (r: { start: number; end: number }): Uint8Array =>
    bytes.subarray((r.start - start) * PAGE_SIZE, (r.end - start) * PAGE_SIZE);
  for (const g of fresh) await dat.write(slice(g), 0, (g.end - g.start) * PAGE_SIZE, g.start * PAGE_SIZE);
  if (fresh.length > 0) await dat.datasync();
  let journal: Buffer | undefined;
  if (allocated.length > 0) {
    journal = Buffer.concat(allocated.map(slice));
    const redo = await core.files.handle(core.files.redoPath(blob.file));
    await redo.write(journal, 0, journal.length, 0);
    await redo.datasync();
  }
  core.tx(() => {
    const version = core.bump(blob, {});
    core.meta.overlay(blob.id, start, end, { tag, version, loc: LOC_BLOB_FILE });
    applyCopies(core, copies);
    if (journal !== undefined) {
      core.meta.sql('INSERT OR REPLACE INTO redo(blob_id, pieces, bytes, sha256) VALUES (?, ?, ?, ?)').run(blob.id,
        JSON.stringify(allocated.map((r) => [r.start, r.end])), journal.length, sha256(journal));
    }
  });
  if (journal !== undefined) {
    for (const r of allocated) await dat.write(slice(r), 0, (r.end - r.start) * PAGE_SIZE, r.start * PAGE_SIZE);
    await dat.datasync();
    await (await core.files.handle(core.files.redoPath(blob.file))).truncate(0);
    core.pendingRedo.add(blob.id);
  }
}

/** clearPages on `blob`, its lock held. */
export async function clearIn(core: LocalCore, ref: BlobRef, blob: BlobRow, offset: number, length: number,
  cond: WriteConditions): Promise<void> {
  checkInside(ref, offset, length, blob.size);
  const { start, end } = pageWindow(offset, length);
  checkConditions(cond, blob.seq, core.meta.runsIn(blob.id, start, end), start, end);
  await core.markDirty(blob);
  const copies = await copyBeforeWrite(core, blob, start, end);
  const gc = core.tx(() => {
    core.bump(blob, {});
    core.meta.overlay(blob.id, start, end, null);
    applyCopies(core, copies);
    return [core.addGc(blob.file, 'punch', start, end)];
  });
  await core.runGc(gc);
}

function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}
