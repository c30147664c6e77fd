/**
 * The companion state of a page blob on Azure: what the local store keeps beside each page (its tag and the
 * version of the write that produced it), plus the write-ahead records that make a data upload and its tag
 * commit look atomic. Stored as JSON in the block blob `<blob>.vdcrypt-state`; pure functions here, the
 * requests in state-store.ts (the state blob), pages.ts and recovery.ts (the protocol, azure-store.ts header).
 *
 *   { "format": 1, "version": 12,
 *     "runs":    [[start, end, tag, version], ...],         committed pages, half-open page runs (ranges.ts)
 *     "pending": [{ "start", "end", "tag", "crc64", "upload"? }, ...] Put Page requests that may or may not
 *                                                           have landed: each one request (<= 4 MiB), atomic
 *     "clears":  [{ "start", "end" }, ...]                  clears already removed from runs, maybe not sent
 *     "resize":  size?                                      a shrink already applied to runs, maybe not sent
 *     "fill":    { "tag", "spans": [[start, end], ...] }?   pages an upload may be filling (FillIntent)
 *     "upload":  { "id", "done": [[start, end], ...] }?     checkpoint of an interrupted uploadExtents }
 */
import { createHash } from 'node:crypto';

import { StoreError } from '../store/index.js';
import { crc64 } from '../xts/index.js';
import { overlay, type PageStamp, type Run, sameStamp, truncateRuns } from '../store/ranges.js';

export const STATE_FORMAT = 1;

/**
 * A Put Page request announced before it was sent, with the checksum of the bytes it carries: `crc64` (base64
 * of Azure's 8-byte CRC64, what vdcrypt sends), or `md5` (base64) in states written before CRC64.
 */
export interface PendingWrite {
  start: number;
  end: number;
  tag: number;
  crc64?: string;
  md5?: string;
  /** Part of the upload named in {@link BlobState.upload}: once it is known to have landed, it counts as done. */
  upload?: boolean;
}

export interface PageSpan {
  start: number;
  end: number;
}

export interface UploadCheckpoint {
  id: string;
  /** Chunks (pages) known to be stored with their tag committed. */
  done: PageSpan[];
}

/**
 * The write-ahead record of an upload into empty pages (upload.ts): the pages of `spans` held nothing when the
 * upload began (no run here, unallocated on Azure), and every one of them the upload writes carries `tag`.
 * Nothing else writes the blob meanwhile (one writer, the blob's lock) and Put Page is atomic per request, so
 * after a crash any page of `spans` that Azure reports allocated was written whole by the upload: recovery
 * commits those with `tag` from one Get Page Ranges, without downloading or checksumming them, and the others
 * stay empty. One record covers the whole upload, where pending writes cost an intent and a commit per batch.
 */
export interface FillIntent {
  tag: number;
  spans: PageSpan[];
}

export interface BlobState {
  version: number;
  runs: Run<PageStamp>[];
  pending: PendingWrite[];
  clears: PageSpan[];
  resize?: number;
  fill?: FillIntent;
  upload?: UploadCheckpoint;
}

export function emptyState(): BlobState {
  return { version: 0, runs: [], pending: [], clears: [] };
}

export function cloneState(s: BlobState): BlobState {
  return {
    version: s.version,
    runs: s.runs.map((r) => ({ start: r.start, end: r.end, value: { ...r.value } })),
    pending: s.pending.map((p) => ({ ...p })),
    clears: s.clears.map((c) => ({ ...c })),
    ...(s.resize !== undefined ? { resize: s.resize } : {}),
    ...(s.fill !== undefined ? { fill: { tag: s.fill.tag, spans: s.fill.spans.map((d) => ({ ...d })) } } : {}),
    ...(s.upload !== undefined ? { upload: { id: s.upload.id, done: s.upload.done.map((d) => ({ ...d })) } } : {}),
  };
}

/** True when the state holds write-ahead records that recovery has to settle. */
export function needsRecovery(s: BlobState): boolean {
  return s.pending.length > 0 || s.clears.length > 0 || s.resize !== undefined || s.fill !== undefined;
}

export function serializeState(s: BlobState): Buffer {
  return Buffer.from(JSON.stringify({
    format: STATE_FORMAT,
    version: s.version,
    runs: s.runs.map((r) => [r.start, r.end, r.value.tag, r.value.version]),
    pending: s.pending,
    clears: s.clears.map((c) => [c.start, c.end]),
    ...(s.resize !== undefined ? { resize: s.resize } : {}),
    ...(s.fill !== undefined ? { fill: { tag: s.fill.tag, spans: s.fill.spans.map((d) => [d.start, d.end]) } } : {}),
    ...(s.upload !== undefined ? { upload: { id: s.upload.id, done: s.upload.done.map((d) => [d.start, d.end]) } } : {}),
  }));
}

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

function corrupt(where: string, why: string): StoreError {
  return new StoreError('StoreCorrupt', `state blob ${where} is unreadable: ${why}`);
}

function spans(raw: unknown, where: string): PageSpan[] {
  if (!Array.isArray(raw)) throw corrupt(where, 'a span list is not an array');
  return raw.map((x: unknown) => {
    if (!Array.isArray(x) || !isInt(x[0]) || !isInt(x[1]) || x[1] <= x[0]) throw corrupt(where, 'bad span');
    return { start: x[0], end: x[1] };
  });
}

export function parseState(bytes: Uint8Array, where: string): BlobState {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new StoreError('StoreCorrupt', `state blob ${where} is not JSON`, { cause: err });
  }
  if (raw.format !== STATE_FORMAT) throw corrupt(where, `format ${String(raw.format)}, expected ${STATE_FORMAT}`);
  if (!isInt(raw.version) || !Array.isArray(raw.runs) || !Array.isArray(raw.pending)) throw corrupt(where, 'missing fields');
  let last = 0;
  const runs = raw.runs.map((x: unknown): Run<PageStamp> => {
    if (!Array.isArray(x) || !isInt(x[0]) || !isInt(x[1]) || !isInt(x[2]) || !isInt(x[3]) || x[1] <= x[0] || x[0] < last) {
      throw corrupt(where, 'bad run');
    }
    last = x[1];
    return { start: x[0], end: x[1], value: { tag: x[2], version: x[3] } };
  });
  const pending = raw.pending.map((x: unknown): PendingWrite => {
    const p = x as Partial<PendingWrite>;
    const sum = typeof p.crc64 === 'string' ? { crc64: p.crc64 } : typeof p.md5 === 'string' ? { md5: p.md5 } : undefined;
    if (!isInt(p.start) || !isInt(p.end) || !isInt(p.tag) || sum === undefined || p.end <= p.start) {
      throw corrupt(where, 'bad pending write');
    }
    return { start: p.start, end: p.end, tag: p.tag, ...sum, ...(p.upload === true ? { upload: true } : {}) };
  });
  const state: BlobState = { version: raw.version, runs, pending, clears: spans(raw.clears ?? [], where) };
  if (raw.resize !== undefined) {
    if (!isInt(raw.resize)) throw corrupt(where, 'bad resize');
    state.resize = raw.resize;
  }
  if (raw.fill !== undefined) {
    const f = raw.fill as { tag?: unknown; spans?: unknown };
    if (typeof f !== 'object' || f === null || !isInt(f.tag)) throw corrupt(where, 'bad fill intent');
    const fillSpans = spans(f.spans, where);
    if (fillSpans.some((x, i) => i > 0 && x.start < (fillSpans[i - 1] as PageSpan).end)) throw corrupt(where, 'fill spans overlap');
    state.fill = { tag: f.tag, spans: fillSpans };
  }
  if (raw.upload !== undefined) {
    const u = raw.upload as { id?: unknown; done?: unknown };
    if (typeof u.id !== 'string') throw corrupt(where, 'bad upload checkpoint');
    state.upload = { id: u.id, done: spans(u.done, where) };
  }
  return state;
}

/** The checksum a pending write records for `data` (Azure's CRC64, base64). */
export function crc64Base64(data: Uint8Array): string {
  return crc64(data).toString('base64');
}

/** Whether `bytes` (read back from Azure) are what the pending write `p` sent, by its recorded checksum. */
export function carries(p: PendingWrite, bytes: Uint8Array): boolean {
  if (p.crc64 !== undefined) return crc64Base64(bytes) === p.crc64;
  return p.md5 !== undefined && createHash('md5').update(bytes).digest('base64') === p.md5;
}

/** The Put Page option that has Azure check a body against its CRC64 (base64, from {@link crc64Base64}) in transit. */
export function crc64Option(crc64Base64Value: string): { transactionalContentCrc64: Uint8Array } {
  return { transactionalContentCrc64: Buffer.from(crc64Base64Value, 'base64') };
}

/** Commit pages `[start, end)` with `tag` at `version` (the write is known to have landed). */
export function commitWrite(s: BlobState, start: number, end: number, tag: number, version: number): void {
  s.runs = overlay(s.runs, start, end, { tag, version }, sameStamp);
}

export function pendingKey(p: PendingWrite): string {
  return `${p.start}:${p.end}:${p.tag}:${p.crc64 ?? `md5=${p.md5 ?? ''}`}`;
}

/** Remove the pending entries equal to `entries` (by value: a reloaded state holds fresh objects). */
export function dropPending(s: BlobState, entries: readonly PendingWrite[]): void {
  const keys = new Set(entries.map(pendingKey));
  s.pending = s.pending.filter((p) => !keys.has(pendingKey(p)));
}

/** Add pages to the upload checkpoint, merging adjacent spans. */
export function markDone(s: BlobState, start: number, end: number): void {
  if (s.upload === undefined) return;
  const all = [...s.upload.done, { start, end }].sort((a, b) => a.start - b.start);
  const out: PageSpan[] = [];
  for (const d of all) {
    const last = out[out.length - 1];
    if (last !== undefined && d.start <= last.end) last.end = Math.max(last.end, d.end);
    else out.push({ ...d });
  }
  s.upload.done = out;
}

export function isDone(s: BlobState, start: number, end: number): boolean {
  return s.upload?.done.some((d) => d.start <= start && d.end >= end) ?? false;
}

export function applyClear(s: BlobState, start: number, end: number): void {
  s.runs = overlay(s.runs, start, end, null, sameStamp);
}

export function applyShrink(s: BlobState, pages: number): void {
  s.runs = truncateRuns(s.runs, pages);
}
