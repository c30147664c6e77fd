/**
 * Crash recovery: settle the write-ahead records an interrupted call left in a blob's state (azure-store.ts
 * header), on first access after the crash, under the blob's lock, before anything else. One state write
 * settles them all and bumps the version:
 *
 *   pending write  → download its pages, compare CRC64: equal → commit its tag (and mark an upload chunk done);
 *                    else drop it (Put Page is atomic per request: the old bytes are still there)
 *   pending clear  → pages Azure reports unallocated (Get Page Ranges) leave the runs; the rest keep their tag
 *   pending shrink → runs are cut at the size Azure reports
 *   fill intent    → pages of its spans Azure reports allocated (Get Page Ranges) and that have no run are
 *                    committed with its tag (and marked done for the upload); the rest stay empty. A page with a
 *                    run there was committed by a checked chunk of another tag, and a pending write of the same
 *                    upload that landed there (another tag) is applied after it: both keep their own tag.
 */
import type { PageBlobClient } from '@azure/storage-blob';

import { PAGE_SIZE } from '../store/index.js';
import { allocatedSpans, clipSpans, intersectSpans, mergeSpans, spansOfRuns, subtractSpans } from './spans.js';
import {
  applyClear, applyShrink, type BlobState, commitWrite, dropPending, markDone, carries, type PageSpan, pendingKey,
} from './state.js';

/**
 * Settle `state`'s pending records against what `client` (the page blob) now holds; `save` writes the state
 * blob (ETag-checked, re-applied to a fresher state if someone else wrote it).
 */
export async function recover(client: PageBlobClient, state: BlobState,
  save: (mutate: (s: BlobState) => void) => Promise<void>): Promise<void> {
  const size = (await client.getProperties()).contentLength ?? 0;
  const unallocated: { start: number; end: number }[] = [];
  for (const c of state.clears) {
    const end = Math.min(c.end, size / PAGE_SIZE);
    if (end <= c.start) continue;
    const azure = await allocatedSpans(client, c.start, end);
    unallocated.push(...subtractSpans([{ start: c.start, end }], azure));
  }
  // The fill intent: one Get Page Ranges over its spans (clipped to the size Azure reports).
  const fill = state.fill;
  let filled: PageSpan[] = [];
  if (fill !== undefined) {
    const spans = clipSpans(fill.spans, 0, size / PAGE_SIZE);
    if (spans.length > 0) {
      const from = (spans[0] as PageSpan).start;
      const to = (spans[spans.length - 1] as PageSpan).end;
      filled = intersectSpans(spans, await allocatedSpans(client, from, to));
    }
  }
  const landed = new Set<string>();
  for (const p of state.pending) {
    if (p.end * PAGE_SIZE > size) continue;
    const bytes = await client.downloadToBuffer(p.start * PAGE_SIZE, (p.end - p.start) * PAGE_SIZE);
    if (carries(p, bytes)) landed.add(pendingKey(p));
  }
  const settled = [...state.pending];
  await save((st) => {
    if (st.resize !== undefined) applyShrink(st, size / PAGE_SIZE);
    delete st.resize;
    for (const u of mergeSpans(unallocated.sort((a, b) => a.start - b.start))) applyClear(st, u.start, u.end);
    st.clears = [];
    st.version++;
    // (Only if the record is still there: a state re-read after a lost ETag race may have been settled already.)
    // Pages of the spans that have a run now were committed by the upload's checked path (a chunk of another
    // tag, committed with its own): they keep it. The fill's own chunks are only committed at its end.
    if (fill !== undefined && st.fill !== undefined) {
      for (const f of subtractSpans(filled, spansOfRuns(st.runs))) {
        commitWrite(st, f.start, f.end, fill.tag, st.version);
        markDone(st, f.start, f.end);
      }
      delete st.fill;
    }
    for (const p of st.pending) {
      if (!landed.has(pendingKey(p))) continue;
      commitWrite(st, p.start, p.end, p.tag, st.version);
      if (p.upload === true) markDone(st, p.start, p.end);
    }
    dropPending(st, settled);
  });
}
