/**
 * A bulk fill on a store without `fillPages` (PageStore makes it optional): writePages per extent, up to
 * `concurrency` in flight. `onBatch` is told the durable prefix (every extent before the first write still in
 * flight) each time it has grown by `batchBytes`, and at the end. Each extent is released (FillExtent.release)
 * once its writePages settles. On a failure, an error of the stream or an abort, the writes in flight land
 * first, the durable prefix is reported, then the fill rejects.
 */
import {
  type BlobRef, DEFAULT_FILL_BATCH_BYTES, type FillExtent, type FillOptions, type FillResult, type PageStore,
} from '../store/index.js';
import { checkFillExtent } from '../store/validate.js';

interface Pending {
  end: number;
  bytes: number;
  stored: boolean;
}

export async function fillByWrites(store: PageStore, ref: BlobRef, extents: AsyncIterable<FillExtent>,
  options: FillOptions, concurrency: number): Promise<FillResult> {
  const batchBytes = options.batchBytes ?? DEFAULT_FILL_BATCH_BYTES;
  if (!Number.isSafeInteger(batchBytes) || batchBytes < 1) throw new RangeError(`batchBytes must be a positive integer, got ${batchBytes}`);
  const pending: Pending[] = [];
  const landing = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let bytesWritten = 0;
  let batches = 0;
  let lastOffset = 0;
  let unreported = 0;
  const retire = (): void => {
    while (pending[0]?.stored === true) {
      const p = pending.shift() as Pending;
      bytesWritten += p.bytes;
      unreported += p.bytes;
      lastOffset = p.end;
    }
  };
  const report = async (force: boolean): Promise<void> => {
    retire();
    if (unreported === 0 || (!force && unreported < batchBytes)) return;
    unreported = 0;
    batches++;
    await options.onBatch?.({ durableBytes: bytesWritten, lastOffset });
  };
  const source = extents[Symbol.asyncIterator]();
  let finished = false;
  let previousEnd = 0;
  try {
    for (;;) {
      if (options.signal?.aborted === true) {
        failure ??= { error: options.signal.reason };
        break;
      }
      const next = await source.next();
      if (next.done === true) {
        finished = true;
        break;
      }
      // The store's own extent check: typed errors, ascending order, and a release that runs once and never throws.
      const extent = checkFillExtent(next.value, previousEnd);
      previousEnd = extent.offset + extent.data.length;
      const entry: Pending = { end: extent.offset + extent.data.length, bytes: extent.data.length, stored: false };
      pending.push(entry);
      const write: Promise<void> = store.writePages(ref, extent.offset, extent.data, extent.tag).then(
        () => { entry.stored = true; },
        (error: unknown) => { failure ??= { error }; },
      ).finally(() => {
        landing.delete(write);
        extent.release?.();
      });
      landing.add(write);
      while (landing.size >= concurrency && failure === undefined) await Promise.race(landing);
      if (failure !== undefined) break;
      await report(false);
    }
  } catch (error) {
    failure ??= { error };
  }
  if (!finished) await source.return?.().catch(() => undefined);
  await Promise.all(landing);
  if (failure === undefined) {
    await report(true);
    return { bytesWritten, batches };
  }
  await report(true).catch(() => undefined);
  throw failure.error;
}
