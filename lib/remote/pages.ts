/**
 * Page requests on Azure with their tags (azure-store.ts header). Every change to pages follows the
 * write-ahead protocol: an intent in the state blob, then the Azure request, then the commit that moves the
 * tags. A definite refusal (4xx) changed nothing, so its intent is withdrawn; any other failure leaves the
 * intent for crash recovery (recovery.ts) to settle.
 *
 *   writePages   pending += {R, g, crc64} Put Page R (CRC64)        pending -= R; runs[R] = (g, v+1)
 *   clearPages   clears += R              Clear Pages R              clears -= R; runs -= R; v+1
 *   shrink       resize = n               Set Blob Properties n      runs cut at n; v+1; resize removed
 *
 * Reads take the state's runs and Get Page Ranges together: only pages allocated in both are downloaded (holes
 * are never fetched) and a page the state holds but Azure lacks is `StoreCorrupt`.
 */
import type { PageBlobClient } from '@azure/storage-blob';

import { checkConditions, checkInside, describeRef } from '../store/common.js';
import {
  type BlobOrSnapshotRef, type BlobRef, PAGE_SIZE, type ReadResult, StoreError, type WriteConditions,
} from '../store/index.js';
import { clip, pageWindow, toTaggedRanges } from '../store/ranges.js';
import { isDefiniteRefusal } from './errors.js';
import { allocatedSpans, spansOfRuns, subtractSpans } from './spans.js';
import {
  applyClear, applyShrink, type BlobState, commitWrite, crc64Base64, crc64Option, dropPending, type PendingWrite,
} from './state.js';
import type { SettledBlob } from './state-store.js';

/** Downloads are merged across holes shorter than this (fewer requests, a little more data). */
const MERGE_GAP_PAGES = (256 * 1024) / PAGE_SIZE;

/** Put Page `body` at `offset` with tag `tag`: intent, data, commit. */
export async function writeTagged(ref: BlobRef, blob: SettledBlob, offset: number, body: Buffer, tag: number,
  cond: WriteConditions): Promise<void> {
  const { start, end } = pageWindow(offset, body.length);
  checkInside(ref, offset, body.length, (await blob.client.getProperties()).contentLength ?? 0);
  checkConditions({ ifPagesUnchangedSince: cond.ifPagesUnchangedSince }, 0, blob.loaded.state.runs, start, end);
  const crc64 = crc64Base64(body);
  const pending: PendingWrite = { start, end, tag, crc64 };
  await blob.save((s) => { s.pending.push({ ...pending }); });
  try {
    await blob.client.uploadPages(body, offset, body.length, {
      ...crc64Option(crc64), conditions: sequenceConditions(cond),
    });
  } catch (err) {
    // A refusal changed nothing: withdraw the intent. Otherwise recovery settles it by its checksum.
    if (isDefiniteRefusal(err)) await blob.save((s) => { dropPending(s, [pending]); });
    throw err;
  }
  await blob.save((s) => {
    dropPending(s, [pending]);
    s.version++;
    commitWrite(s, start, end, tag, s.version);
  });
}

/** Clear Pages `[offset, offset + length)`: intent, clear, commit. */
export async function clearTagged(ref: BlobRef, blob: SettledBlob, offset: number, length: number,
  cond: WriteConditions): Promise<void> {
  const { start, end } = pageWindow(offset, length);
  checkInside(ref, offset, length, (await blob.client.getProperties()).contentLength ?? 0);
  checkConditions({ ifPagesUnchangedSince: cond.ifPagesUnchangedSince }, 0, blob.loaded.state.runs, start, end);
  await blob.save((s) => { s.clears.push({ start, end }); });
  try {
    await blob.client.clearPages(offset, length, { conditions: sequenceConditions(cond) });
  } catch (err) {
    if (isDefiniteRefusal(err)) await blob.save((s) => { dropClear(s, start, end); });
    throw err;
  }
  await blob.save((s) => {
    dropClear(s, start, end);
    s.version++;
    applyClear(s, start, end);
  });
}

/** Set the blob's size; a shrink is announced first and cuts the runs once Azure has it. */
export async function resizeTagged(blob: SettledBlob, size: number): Promise<void> {
  const props = await blob.client.getProperties();
  const shrink = size < (props.contentLength ?? 0);
  if (shrink) await blob.save((s) => { s.resize = size; });
  try {
    await blob.client.resize(size);
  } catch (err) {
    if (shrink && isDefiniteRefusal(err)) await blob.save((s) => { delete s.resize; });
    throw err;
  }
  if (shrink) {
    await blob.save((s) => {
      applyShrink(s, size / PAGE_SIZE);
      s.version++;
      delete s.resize;
    });
  }
}

/** Read `[offset, offset + length)` (inside the blob) of `client`, whose tags are `state`'s runs. */
export async function readTagged(ref: BlobOrSnapshotRef, client: PageBlobClient, state: BlobState, offset: number,
  length: number): Promise<ReadResult> {
  const data = new Uint8Array(length);
  if (length === 0) return { data, ranges: [], version: state.version };
  const { start, end } = pageWindow(offset, length);
  const runs = clip(state.runs, start, end);
  const azure = await allocatedSpans(client, start, end);
  const wanted = spansOfRuns(runs);
  const missing = subtractSpans(wanted, azure);
  if (missing.length > 0) {
    throw new StoreError('StoreCorrupt', `${describeRef(ref)}: page ${(missing[0] as { start: number }).start} has a tag `
      + 'but Azure reports it unallocated');
  }
  await download(client, wanted, offset, data);
  return { data, ranges: toTaggedRanges(runs, (s) => s.tag), version: state.version };
}

async function download(client: PageBlobClient, wanted: { start: number; end: number }[], offset: number, data: Uint8Array): Promise<void> {
  // Merge wanted spans across short holes into download windows; copy back only the wanted pages.
  const windows: { start: number; end: number; parts: { start: number; end: number }[] }[] = [];
  for (const w of wanted) {
    const last = windows[windows.length - 1];
    if (last !== undefined && w.start - last.end <= MERGE_GAP_PAGES) {
      last.end = w.end;
      last.parts.push(w);
    } else {
      windows.push({ start: w.start, end: w.end, parts: [w] });
    }
  }
  const limit = offset + data.length;
  await Promise.all(windows.map(async (win) => {
    const from = Math.max(win.start * PAGE_SIZE, offset);
    const to = Math.min(win.end * PAGE_SIZE, limit);
    const bytes = await client.downloadToBuffer(from, to - from, { concurrency: 4 });
    for (const part of win.parts) {
      const a = Math.max(part.start * PAGE_SIZE, from);
      const b = Math.min(part.end * PAGE_SIZE, to);
      if (b > a) data.set(bytes.subarray(a - from, b - from), a - offset);
    }
  }));
}

function sequenceConditions(c: WriteConditions): Record<string, number> {
  const out: Record<string, number> = {};
  if (c.ifSequenceNumberLessThanOrEqual !== undefined) out.ifSequenceNumberLessThanOrEqualTo = c.ifSequenceNumberLessThanOrEqual;
  if (c.ifSequenceNumberLessThan !== undefined) out.ifSequenceNumberLessThan = c.ifSequenceNumberLessThan;
  if (c.ifSequenceNumberEqual !== undefined) out.ifSequenceNumberEqualTo = c.ifSequenceNumberEqual;
  return out;
}

function dropClear(s: BlobState, start: number, end: number): void {
  const i = s.clears.findIndex((c) => c.start === start && c.end === end);
  if (i >= 0) s.clears.splice(i, 1);
}
