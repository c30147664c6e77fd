/**
 * Bulk upload of extents to an Azure page blob: what `az storage blob upload --type page` does, with vdcrypt's
 * tags and crash safety (azure-store.ts header).
 *
 *   source extents ──▶ split into ≤ 4 MiB chunks, CRC64 of each; plaintext (tag 0) all-zero pages dropped
 *        │                 (they stay unallocated; chunks the checkpoint lists as done are skipped when resuming)
 *        ├─ chunk into pages that were empty at the start (the usual case: an import into a new blob)
 *        │     first one ──▶ 1 fill intent: state.fill = {tag, the empty spans} (state blob, once per upload;
 *        │                   the upload's checkpoint and write version ride on it, or on the first batch intent)
 *        │     Put Page, x-ms-content-crc64, sent as soon as one of `concurrency` slots is free, through the
 *        │     client's SDK pipeline (put-page.ts: the SDK retries with backoff on 5xx/timeouts; the CRC64 is
 *        │     taken here unless the producer hands it over with the extent, as seal.ts does)
 *        │
 *        └─ chunk over pages that held data (an overwrite), or with another tag than the fill's
 *              batch of chunks (batchBytes) ──▶ 1 intent: state.pending += each chunk {pages, tag, crc64}
 *              Put Page × chunk, same slots ──▶ batch settled ──▶ 1 commit: pending -= landed; runs += them
 *        ▼
 *   end ──▶ 1 state write: runs += every filled chunk that landed (tag, v); fill and checkpoint removed
 *
 * A fill needs no per-chunk record: its pages were empty and nothing else writes the blob while the upload
 * holds its lock, so after a crash recovery commits exactly the pages of the fill's spans that Azure reports
 * allocated (Put Page is atomic per request) and marks them done for a resume; a 1 GiB import into a new blob
 * costs two state writes (the fill intent, which also opens the upload's checkpoint, and the end) instead of an
 * intent and a commit per 32 MiB batch, which on a server sharing the client's cores took ~10% of the upload's
 * time. Overwrites keep the per-chunk CRC64 intents: there the old bytes were data too, and only the checksum
 * tells which ones Azure holds.
 *
 * Batches are prepared one ahead: while batch k's Put Pages are being issued, batch k+1 is read, hashed and
 * its intent written, so its first request goes out as soon as a slot of batch k frees (no stall at batch
 * boundaries); at most batches k (in flight), k+1 (announced) and k+2 (being read) are held at once. Filled
 * chunks hold only their slot.
 * Pages with a tag >= 1 are ciphertext: the seal step (seal.ts) dropped all-zero plaintext pages before
 * encrypting, and an all-zero ciphertext page is still data, so those extents are sent without a zero scan.
 * All chunks of one upload carry one write version. When the upload stops (Azure unreachable, a refusal), the
 * state keeps the checkpoint, the fill intent and the intents of the chunks in doubt; the next access settles
 * them (recovery.ts: the fill by Get Page Ranges, pending chunks by CRC64; what landed is committed and counted
 * done), and `resume: true` with the same source sends only what is not done.
 */
import { randomUUID } from 'node:crypto';

import { describeValue } from '../errors.js';
import { MAX_WRITE_BYTES, PAGE_SIZE } from '../store/index.js';
import * as v from '../store/validate.js';
import { nonZeroRunsAsync, pagesInRuns } from '../xts/index.js';
import { putPage } from './put-page.js';
import { mergeSpans, spansOfAzure, spansOfRuns, subtractSpans } from './spans.js';
import type { SettledBlob } from './state-store.js';
import {
  type BlobState, commitWrite, crc64Base64, dropPending, isDone, markDone, type PageSpan, type PendingWrite,
} from './state.js';

/** A run of pages to store with one tag. `data` must not change until the upload settles. */
export interface UploadExtent {
  /** Byte offset in the blob, a multiple of 512. */
  offset: number;
  /** A multiple of 512 bytes (any length: split into 4 MiB requests). */
  data: Uint8Array;
  /** Store tag of these pages (0 plaintext, g >= 1 AEK generation g in the blob layer). */
  tag: number;
  /**
   * Azure's CRC64 of `data` (8 bytes, little-endian, as lib/xts `crc64` returns it), when the producer already
   * took it: the extent then goes as one Put Page carrying it, and `data` is not read again before the request.
   * Only for `data` of at most 4 MiB, with a tag >= 1 or `noZeroPages` (else it is ignored and the chunks are
   * checksummed here). A wrong value is caught by Azure, which refuses the request: the upload stops and
   * nothing is committed for it.
   */
  crc64?: Uint8Array;
  /** For plaintext (tag 0): the producer already dropped every all-zero page, so `data` is not scanned again. */
  noZeroPages?: boolean;
  /**
   * Called once when the upload no longer reads `data` (each of its chunks sent, refused, or skipped on
   * resume), so the producer may reuse the buffer. Not called for an extent whose chunks were not all issued
   * because the upload stopped: that buffer is left to the garbage collector.
   */
  release?: () => void;
}

export type ExtentSource = AsyncIterable<UploadExtent> | Iterable<UploadExtent>;

export interface UploadProgress {
  /** Bytes sent in Put Page requests by this call. */
  bytesSent: number;
  /** All-zero bytes not sent (they stay unallocated). */
  bytesSkipped: number;
  /** Bytes an earlier, interrupted upload had finished (skipped on resume). */
  bytesResumed: number;
  /** Put Page requests that succeeded. */
  requests: number;
}

export interface UploadResult extends UploadProgress {
  /** The checkpoint id (the same across resumes of one upload). */
  uploadId: string;
}

export interface UploadOptions {
  /** Put Page requests in flight (default 8, 1..64). */
  concurrency?: number;
  /** Called after every finished request with running totals. */
  onProgress?: (progress: UploadProgress) => void;
  /** Continue the interrupted upload recorded in the blob's checkpoint, skipping its finished chunks. */
  resume?: boolean;
  /** Bytes per intent/commit of the state blob (default 32 MiB, at least 4 MiB). */
  batchBytes?: number;
}

export const DEFAULT_UPLOAD_CONCURRENCY = 8;
export const DEFAULT_BATCH_BYTES = 32 * 1024 * 1024;
const PLAINTEXT_TAG = 0;

interface Chunk {
  start: number;
  end: number;
  data: Uint8Array;
  tag: number;
  /** Base64 CRC64 of `data`, taken as the chunk is batched (spread between requests, not one block per batch). */
  crc64: string;
  /** The extent's hold on its buffer: one per chunk not yet settled. */
  hold: Hold;
}

/** Counts the uses of an extent's buffer; calls its `release` when the last one ends. */
class Hold {
  #left = 1;
  readonly #release: (() => void) | undefined;

  constructor(release: (() => void) | undefined) {
    this.#release = release;
  }

  take(): void {
    this.#left++;
  }

  drop(): void {
    if (--this.#left === 0) this.#release?.();
  }
}

/**
 * Run one upload on `ctx`: the page blob, its settled state and the state writer the store hands over.
 * `allocated`: a Get Page Ranges of the whole blob the caller already started (else it is asked here).
 */
export async function runUpload(ctx: SettledBlob, source: ExtentSource, options: UploadOptions,
  allocated?: Promise<PageRangesAnswer>): Promise<UploadResult> {
  const concurrency = v.checkInteger('concurrency', options.concurrency ?? DEFAULT_UPLOAD_CONCURRENCY, 64);
  if (concurrency < 1) throw new RangeError('concurrency must be at least 1');
  const batchBytes = Math.max(MAX_WRITE_BYTES, v.checkInteger('batchBytes', options.batchBytes ?? DEFAULT_BATCH_BYTES));
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new TypeError(`onProgress must be a function, got ${describeValue(options.onProgress)}`);
  }
  const checkpoint = options.resume === true ? ctx.loaded.state.upload : undefined;
  const uploadId = checkpoint?.id ?? randomUUID();
  const stats: UploadProgress = { bytesSent: 0, bytesSkipped: 0, bytesResumed: 0, requests: 0 };
  // What an interrupted upload finished (resume only; a new upload has nothing done).
  const doneAtStart = checkpoint !== undefined ? ctx.loaded.state : undefined;
  // Which pages are empty, asked while the first extents are sealed; awaited before the first request.
  const emptyAtStart = emptySpans(ctx, allocated ?? ctx.client.getPageRanges());
  emptyAtStart.catch(() => undefined);

  // The upload's checkpoint and its write version ride on its first state write (the fill intent or the first
  // batch's intent; the closing write when nothing was sent), not on a write of their own: nothing is sent
  // before that write, and one round trip less sits in front of the first request.
  let version = 0;
  let begun = false;
  const begin = (s: BlobState): void => {
    if (checkpoint === undefined) s.upload = { id: uploadId, done: [] };
    s.version++;
    version = s.version;
  };
  // State writes (intents, commits) go one at a time, in order.
  let chain: Promise<void> = Promise.resolve();
  const stateWrite = (mutate: (s: BlobState) => void): Promise<void> => {
    const p = chain.then(async () => {
      await ctx.save((s) => {
        if (!begun) begin(s);
        mutate(s);
      });
      begun = true;
    });
    chain = p.catch(() => undefined);
    return p;
  };
  const slots = new Slots(concurrency);
  const settled: Promise<void>[] = [];
  let failure: { err: unknown } | undefined;

  /**
   * Send one chunk's Put Page as soon as a slot is free, calling `landed` when it succeeds; undefined (nothing
   * sent) once the upload has failed. The request never rejects: a failure is recorded in `failure`.
   */
  const send = async (c: Chunk, landed: () => void): Promise<{ request: Promise<void> } | undefined> => {
    await slots.acquire();
    if (failure !== undefined) {
      slots.release();
      return undefined;
    }
    const request = putPage(ctx.client, c.data, c.start * PAGE_SIZE, c.crc64).then(() => {
      landed();
      stats.bytesSent += c.data.length;
      stats.requests++;
      options.onProgress?.({ ...stats });
    }, (err: unknown) => {
      failure ??= { err };
    }).finally(() => {
      c.hold.drop();
      slots.release();
    });
    return { request };
  };

  // Issue a batch's Put Pages once its intent has landed; its commit is queued when they all settle.
  const issue = async (batch: Chunk[], entries: PendingWrite[]): Promise<void> => {
    const landed: number[] = [];
    const uploads: Promise<void>[] = [];
    for (let i = 0; i < batch.length && failure === undefined; i++) {
      const sent = await send(batch[i] as Chunk, () => landed.push(i));
      if (sent === undefined) break;
      uploads.push(sent.request);
    }
    settled.push(Promise.all(uploads).then(async () => {
      if (landed.length === 0) return;
      const done = landed.map((i) => entries[i] as PendingWrite);
      try {
        await stateWrite((s) => {
          dropPending(s, done);
          for (const e of done) {
            commitWrite(s, e.start, e.end, e.tag, version);
            markDone(s, e.start, e.end);
          }
        });
      } catch (err) {
        failure ??= { err };
      }
    }));
  };

  // Chunks into empty pages (the fill): announced once, then each sent as soon as a slot frees.
  let fillTag: number | undefined;
  const filled = new SpanList();
  const filling = new Set<Promise<void>>();
  const fillChunk = async (c: Chunk): Promise<void> => {
    const sent = await send(c, () => filled.add(c.start, c.end));
    if (sent === undefined) return;
    const request = sent.request.finally(() => filling.delete(request));
    filling.add(request);
  };

  // The issuing of the batches handed over so far, in order.
  let issuing: Promise<void> = Promise.resolve();
  /** Announce a batch now, queue its issuing after the previous batch's, and wait until that one is issued. */
  const flush = async (batch: Chunk[]): Promise<void> => {
    if (batch.length === 0 || failure !== undefined) return;
    const entries: PendingWrite[] = batch.map((c) => ({ start: c.start, end: c.end, tag: c.tag, crc64: c.crc64, upload: true }));
    const intent = stateWrite((s) => { s.pending.push(...entries.map((e) => ({ ...e }))); });
    const previous = issuing;
    issuing = previous.then(async () => {
      await intent;
      if (failure === undefined) await issue(batch, entries);
    }).catch((err: unknown) => {
      failure ??= { err };
    });
    await previous;
  };

  try {
    let batch: Chunk[] = [];
    let batched = 0;
    let lastEnd = 0;
    let empty: PageSpan[] | undefined;
    for await (const extent of source) {
      if (failure !== undefined) break;
      checkExtent(extent, lastEnd);
      lastEnd = extent.offset + extent.data.length;
      if (extent.release !== undefined && typeof extent.release !== 'function') {
        throw new TypeError(`extent release must be a function, got ${describeValue(extent.release)}`);
      }
      const hold = new Hold(extent.release);
      for (const chunk of await chunksOf(extent, stats)) {
        if (doneAtStart !== undefined && isDone(doneAtStart, chunk.start, chunk.end)) {
          stats.bytesResumed += chunk.data.length;
          continue;
        }
        hold.take();
        const c: Chunk = { ...chunk, crc64: chunk.crc64 ?? crc64Base64(chunk.data), hold };
        const spans = (empty ??= await emptyAtStart);
        if (covers(spans, c.start, c.end) && (fillTag === undefined || fillTag === c.tag)) {
          if (fillTag === undefined) {
            const tag = c.tag;
            await stateWrite((s) => { s.fill = { tag, spans: spans.map((e) => ({ ...e })) }; });
            fillTag = tag;
          }
          await fillChunk(c);
          continue;
        }
        batch.push(c);
        batched += c.data.length;
        if (batched >= batchBytes) {
          const full = batch;
          batch = [];
          batched = 0;
          await flush(full);
        }
      }
      hold.drop();
    }
    await flush(batch);
    await emptyAtStart; // Azure unreachable fails the upload even when there was nothing to send
  } catch (err) {
    failure ??= { err };
  }
  await issuing;
  await Promise.all(settled);
  await Promise.all([...filling]);
  await chain;
  // On failure the fill intent stays: the next access commits what Azure holds (a request that failed here
  // may still have landed).
  if (failure !== undefined) throw failure.err;
  const tag = fillTag;
  await stateWrite((s) => {
    if (tag !== undefined) {
      for (const f of filled.spans()) commitWrite(s, f.start, f.end, tag, version);
    }
    delete s.fill;
    delete s.upload;
  });
  return { ...stats, uploadId };
}

type PageRangesAnswer = Awaited<ReturnType<SettledBlob['client']['getPageRanges']>>;

/**
 * The pages of the blob that hold nothing now: no run in the settled state and none allocated on Azure (one
 * Get Page Ranges; the two agree after recovery, and a page only Azure holds is left to the checked path).
 */
async function emptySpans(ctx: SettledBlob, allocated: Promise<PageRangesAnswer>): Promise<PageSpan[]> {
  const res = await allocated;
  const size = res.blobContentLength ?? (await ctx.client.getProperties()).contentLength ?? 0;
  const all = [{ start: 0, end: Math.floor(size / PAGE_SIZE) }];
  return subtractSpans(subtractSpans(all, spansOfRuns(ctx.loaded.state.runs)), spansOfAzure(res.pageRange ?? []));
}

/** Whether one span of `spans` (sorted, merged) holds all of `[start, end)`. */
function covers(spans: readonly PageSpan[], start: number, end: number): boolean {
  let lo = 0;
  let hi = spans.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((spans[mid] as PageSpan).end <= start) lo = mid + 1;
    else hi = mid;
  }
  const s = spans[lo];
  return s !== undefined && s.start <= start && s.end >= end;
}

/** Page spans added in any order, kept merged (requests land about in order, so the list stays short). */
class SpanList {
  #spans: PageSpan[] = [];
  #sorted = 0;

  add(start: number, end: number): void {
    const last = this.#spans[this.#spans.length - 1];
    if (last !== undefined && last.end === start) last.end = end;
    else this.#spans.push({ start, end });
    if (this.#spans.length - this.#sorted > 1024) this.spans();
  }

  /** The spans, sorted and merged. */
  spans(): PageSpan[] {
    this.#spans = mergeSpans(this.#spans.sort((a, b) => a.start - b.start));
    this.#sorted = this.#spans.length;
    return this.#spans;
  }
}

function checkExtent(extent: UploadExtent, lastEnd: number): void {
  if (typeof extent !== 'object' || extent === null) throw new TypeError(`an extent must be an object, got ${describeValue(extent)}`);
  const offset = v.checkAligned('extent offset', extent.offset, Number.MAX_SAFE_INTEGER);
  if (!(extent.data instanceof Uint8Array)) throw new TypeError(`extent data must be a Uint8Array, got ${describeValue(extent.data)}`);
  if (extent.data.length % PAGE_SIZE !== 0) throw new RangeError(`extent data must be a multiple of ${PAGE_SIZE} bytes, got ${extent.data.length}`);
  v.checkTag(extent.tag);
  if (offset < lastEnd) throw new RangeError(`extents must ascend without overlap: offset ${offset} < previous end ${lastEnd}`);
  if (extent.crc64 !== undefined) {
    if (!(extent.crc64 instanceof Uint8Array) || extent.crc64.length !== 8) {
      throw new TypeError(`extent crc64 must be 8 bytes, got ${describeValue(extent.crc64)}`);
    }
    if (extent.data.length > MAX_WRITE_BYTES) {
      throw new RangeError(`extent crc64 is only for data of at most ${MAX_WRITE_BYTES} bytes, got ${extent.data.length}`);
    }
  }
  if (extent.noZeroPages !== undefined && typeof extent.noZeroPages !== 'boolean') {
    throw new TypeError(`extent noZeroPages must be a boolean, got ${describeValue(extent.noZeroPages)}`);
  }
}

/**
 * An extent cut into ≤ 4 MiB chunks: for plaintext (tag 0) only its non-zero page runs, found with their CRC64
 * by the native pass on the pool (lib/xts runs.ts) and the zero pages counted in `stats`, unless the producer
 * vouches there are none; ciphertext (tag >= 1) whole (see the header). A chunk carries its CRC64 when the
 * producer or the scan has it (else it is taken as the chunk is batched).
 */
async function chunksOf(extent: UploadExtent, stats: UploadProgress): Promise<(Omit<Chunk, 'crc64' | 'hold'> & { crc64?: string })[]> {
  const first = extent.offset / PAGE_SIZE;
  const pages = extent.data.length / PAGE_SIZE;
  const maxPages = MAX_WRITE_BYTES / PAGE_SIZE;
  const chunk = (start: number, end: number, crc64: Uint8Array | undefined) => ({
    start: first + start, end: first + end, data: extent.data.subarray(start * PAGE_SIZE, end * PAGE_SIZE), tag: extent.tag,
    ...(crc64 !== undefined ? { crc64: Buffer.from(crc64).toString('base64') } : {}),
  });
  if (extent.tag === PLAINTEXT_TAG && extent.noZeroPages !== true) {
    const runs = await nonZeroRunsAsync(extent.data, maxPages);
    stats.bytesSkipped += (pages - pagesInRuns(runs)) * PAGE_SIZE;
    return runs.map((r) => chunk(r.start, r.end, r.crc64));
  }
  if (extent.crc64 !== undefined) return pages > 0 ? [chunk(0, pages, extent.crc64)] : [];
  const out = [];
  for (let start = 0; start < pages; start += maxPages) out.push(chunk(start, Math.min(pages, start + maxPages), undefined));
  return out;
}

/** A counting semaphore. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(n: number) {
    this.#free = n;
  }

  acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next();
    else this.#free++;
  }
}
