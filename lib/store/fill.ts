/**
 * The driver of {@link PageStore.fillPages}, shared by the stores: it pulls and checks the extent stream,
 * alternates durable batches of fresh pages with single writes of whatever a batch cannot take, reports each
 * durable point to `onBatch`, and ends the way the interface promises (see types.ts):
 *
 *   extents ──▶ FillSource (checks, abort, one extent of push-back)
 *                 │
 *                 ├─▶ steps.batch   fresh pages, many extents, one durable point   ──▶ onBatch
 *                 └─▶ steps.single  an extent the batch left (allocated pages, snapshots), durable on its own
 *
 * Every durable point follows the previous one in stream order, so what survives a crash is a prefix of the
 * stream. When the stream throws, a check fails or the signal fires, the batch written so far is still
 * committed and reported, then the fill rejects with that error.
 */
import type { FillExtent, FillOptions, FillResult } from './types.js';
import { checkFillExtent } from './validate.js';

/** The extent stream of one fill, checked as it is pulled. It never throws: a failure stops it (see `stopped`). */
export class FillSource {
  readonly #it: AsyncIterator<FillExtent>;
  readonly #signal: AbortSignal | undefined;
  #unread: FillExtent | undefined;
  #end = 0;
  #finished = false;
  /** Why the stream stopped early: the stream threw, an extent failed a check, or the signal fired. */
  stopped: { error: unknown } | undefined;

  constructor(extents: AsyncIterable<FillExtent>, signal: AbortSignal | undefined) {
    this.#it = extents[Symbol.asyncIterator]();
    this.#signal = signal;
  }

  /** The next extent, or undefined at the end of the stream or once it has stopped. */
  async next(): Promise<FillExtent | undefined> {
    const back = this.#unread;
    if (back !== undefined) {
      this.#unread = undefined;
      return back;
    }
    if (this.#finished || this.stopped !== undefined) return undefined;
    if (this.#signal?.aborted === true) {
      this.stopped = { error: this.#signal.reason };
      return undefined;
    }
    try {
      const r = await this.#it.next();
      if (r.done === true) {
        this.#finished = true;
        return undefined;
      }
      const extent = checkFillExtent(r.value, this.#end);
      this.#end = extent.offset + extent.data.length;
      return extent;
    } catch (error) {
      this.stopped = { error };
      return undefined;
    }
  }

  /** Push back the extent just pulled: the next `next()` returns it again. */
  unread(extent: FillExtent): void {
    this.#unread = extent;
  }

  /** Stop with `error` (an extent that failed a store check, such as InvalidPageRange). */
  fail(error: unknown): void {
    this.stopped ??= { error };
  }

  /** Let an unfinished stream run its cleanup (a generator's `finally`). */
  async close(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    await this.#it.return?.();
  }
}

export interface FillSteps {
  /**
   * Write extents of fresh pages pulled from `source`, about `batchBytes` of them, and make them durable as one
   * batch. Returns the bytes committed, the end offset of the last one, and `single: true` when the next
   * extent must go through {@link single} (it was pushed back, or the blob cannot take batches now).
   */
  batch(source: FillSource, batchBytes: number): Promise<{ bytes: number; end: number; single: boolean }>;
  /** Write one extent durably on its own (an ordinary writePages). */
  single(extent: FillExtent): Promise<void>;
}

export async function runFill(source: FillSource, options: FillOptions & { batchBytes: number }, steps: FillSteps):
  Promise<FillResult> {
  let bytesWritten = 0;
  let batches = 0;
  let lastOffset = 0;
  let unreported = 0;
  const durable = (bytes: number, end: number): void => {
    bytesWritten += bytes;
    unreported += bytes;
    lastOffset = end;
  };
  const report = async (): Promise<void> => {
    if (unreported === 0) return;
    unreported = 0;
    batches++;
    await options.onBatch?.({ durableBytes: bytesWritten, lastOffset });
  };
  try {
    for (;;) {
      const b = await steps.batch(source, options.batchBytes);
      if (b.bytes > 0) {
        durable(b.bytes, b.end);
        await report();
      }
      if (source.stopped !== undefined) break;
      if (!b.single) {
        if (b.bytes === 0) break; // the stream ended
        continue;
      }
      const extent = await source.next();
      if (extent === undefined) break;
      try {
        await steps.single(extent);
      } finally {
        extent.release?.();
      }
      durable(extent.data.length, extent.offset + extent.data.length);
      if (unreported >= options.batchBytes) await report();
    }
    await report();
  } finally {
    await source.close().catch(() => undefined);
  }
  if (source.stopped !== undefined) throw source.stopped.error;
  return { bytesWritten, batches };
}
