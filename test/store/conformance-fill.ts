/**
 * Conformance of PageStore.fillPages (optional in the interface): every store that has it runs these through
 * a factory, as conformance.ts does for the rest. Batches: durable and visible together, in stream order;
 * extents over allocated pages or in a blob with snapshots still land exactly; a stream that throws, an
 * extent that fails a check or an abort commit what came before it, then reject.
 */
import { describe, expect, it } from 'vitest';

import { type FillExtent, type FillProgress, PAGE_SIZE, type PageStore, StoreError } from '../../lib/store/index.js';
import { alignedBuffer, IO_ALIGNMENT } from '../../lib/xts/index.js';
import { expectStoreError, pages, type StoreFactory, withStore as withStoreOf } from './conformance.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const ref = { account: 'acct', container: 'disks', blob: 'fill.vhd' };
const withStore = (factory: StoreFactory, fn: (store: PageStore) => Promise<void>): Promise<void> =>
  withStoreOf(factory, fn, ref);

/** Extent i: `count` pages at page `start`, every byte `fill`, tag `tag`. */
interface Spec { start: number; count: number; fill: number; tag: number }

async function* stream(specs: Spec[], each?: (i: number) => void | Promise<void>): AsyncGenerator<FillExtent> {
  for (const [i, s] of specs.entries()) {
    await each?.(i);
    yield { offset: s.start * PAGE_SIZE, data: pages(s.count, s.fill), tag: s.tag };
  }
}

/** The blob's pages [0, n) as [fill byte or null, tag or null] per page, from reads and ranges. */
async function contents(s: PageStore, n: number): Promise<Array<[number | null, number | null]>> {
  const { data, ranges } = await s.readPages(ref, 0, n * PAGE_SIZE);
  return Array.from({ length: n }, (_, p) => {
    const r = ranges.find((x) => x.start <= p * PAGE_SIZE && x.end >= p * PAGE_SIZE);
    return [r === undefined ? null : (data[p * PAGE_SIZE] as number), r?.tag ?? null];
  });
}

function expected(n: number, specs: Spec[], base: Array<[number | null, number | null]> = []): Array<[number | null, number | null]> {
  const out = Array.from({ length: n }, (_, p): [number | null, number | null] => base[p] ?? [null, null]);
  for (const s of specs) for (let p = s.start; p < s.start + s.count; p++) out[p] = [s.fill, s.tag];
  return out;
}


/**
 * `batchesExcludeWriters`: a store whose batches span several extents holds other writers off until the batch
 * commits (LocalPageStore); one that applies every extent on its own (MemoryPageStore) lets them land between
 * extents. Either way an extent and a write never mix within a page.
 */
export function describeFillConformance(name: string, factory: StoreFactory, { batchesExcludeWriters }: { batchesExcludeWriters: boolean }): void {
  const t = (title: string, fn: (store: PageStore & Required<Pick<PageStore, 'fillPages'>>) => Promise<void>): void => {
    it(title, () => withStore(factory, async (s) => {
      expect(typeof s.fillPages).toBe('function');
      await fn(s as PageStore & Required<Pick<PageStore, 'fillPages'>>);
    }));
  };

  describe(`PageStore.fillPages conformance: ${name}`, () => {
    const SPECS: Spec[] = [
      { start: 0, count: 8, fill: 1, tag: 0 }, { start: 8, count: 8, fill: 2, tag: 0 }, { start: 20, count: 4, fill: 3, tag: 2 },
      { start: 24, count: 16, fill: 4, tag: 2 }, { start: 64, count: 1, fill: 5, tag: 7 }, { start: 100, count: 28, fill: 6, tag: 1 },
    ];

    t('fills fresh pages in batches; each batch is durable and visible when onBatch runs, nothing after it', async (s) => {
      await s.createBlob(ref, 128 * PAGE_SIZE);
      const seen: FillProgress[] = [];
      const result = await s.fillPages(ref, stream(SPECS), {
        batchBytes: 10 * PAGE_SIZE,
        onBatch: async (p) => {
          seen.push(p);
          // Visible exactly up to lastOffset: every extent ending there is allocated, none after it.
          const done = SPECS.filter((x) => (x.start + x.count) * PAGE_SIZE <= p.lastOffset);
          expect(await contents(s, 128)).toEqual(expected(128, done));
          expect(p.durableBytes).toBe(done.reduce((n, x) => n + x.count * PAGE_SIZE, 0));
        },
      });
      const total = SPECS.reduce((n, x) => n + x.count * PAGE_SIZE, 0);
      expect(result).toEqual({ bytesWritten: total, batches: seen.length });
      expect(seen.length).toBeGreaterThanOrEqual(3);
      expect(seen.at(-1)).toEqual({ durableBytes: total, lastOffset: 128 * PAGE_SIZE });
      for (let i = 1; i < seen.length; i++) expect((seen[i] as FillProgress).lastOffset).toBeGreaterThan((seen[i - 1] as FillProgress).lastOffset);
      expect(await contents(s, 128)).toEqual(expected(128, SPECS));
      expect(await s.listRanges(ref)).toEqual([
        { start: 0, end: 16 * PAGE_SIZE - 1, tag: 0 }, { start: 20 * PAGE_SIZE, end: 40 * PAGE_SIZE - 1, tag: 2 },
        { start: 64 * PAGE_SIZE, end: 65 * PAGE_SIZE - 1, tag: 7 }, { start: 100 * PAGE_SIZE, end: 128 * PAGE_SIZE - 1, tag: 1 },
      ]);
      expect((await s.getBlob(ref)).version).toBeGreaterThan(0);
    });

    t('the default batch covers a whole small fill; an empty stream writes nothing', async (s) => {
      await s.createBlob(ref, 8 * MiB);
      const big = [{ start: 0, count: 8192, fill: 9, tag: 3 }, { start: 8192, count: 8192, fill: 8, tag: 3 }];
      expect(await s.fillPages(ref, stream(big))).toEqual({ bytesWritten: 8 * MiB, batches: 1 });
      expect(await s.listRanges(ref)).toEqual([{ start: 0, end: 8 * MiB - 1, tag: 3 }]);
      await s.createBlob(ref, MiB, { overwrite: true });
      expect(await s.fillPages(ref, stream([]), { onBatch: () => { throw new Error('no batch expected'); } }))
        .toEqual({ bytesWritten: 0, batches: 0 });
    });

    t('extents over allocated pages, and blobs with snapshots, land exactly; snapshots keep their pages', async (s) => {
      await s.createBlob(ref, 128 * PAGE_SIZE);
      await s.writePages(ref, 10 * PAGE_SIZE, pages(12, 0xee), 4); // under extents 2 and 3
      const base = await contents(s, 128);
      await s.fillPages(ref, stream(SPECS), { batchBytes: 4 * PAGE_SIZE });
      expect(await contents(s, 128)).toEqual(expected(128, SPECS, base));

      const snapshot = await s.createSnapshot(ref);
      const before = await s.readPages({ ...ref, snapshot }, 0, 128 * PAGE_SIZE);
      const again: Spec[] = [{ start: 4, count: 8, fill: 0x21, tag: 5 }, { start: 40, count: 10, fill: 0x22, tag: 5 }];
      const after = expected(128, again, await contents(s, 128));
      await s.fillPages(ref, stream(again), { batchBytes: 4 * PAGE_SIZE });
      expect(await contents(s, 128)).toEqual(after);
      const snap = await s.readPages({ ...ref, snapshot }, 0, 128 * PAGE_SIZE);
      expect(Buffer.from(snap.data).equals(Buffer.from(before.data))).toBe(true);
      expect(snap.ranges).toEqual(before.ranges);
      const diff = await s.diffRanges(ref, snapshot);
      expect(diff.updated).toEqual([{ start: 4 * PAGE_SIZE, end: 12 * PAGE_SIZE - 1 }, { start: 40 * PAGE_SIZE, end: 50 * PAGE_SIZE - 1 }]);
    });

    t('a stream that throws: what came before is committed and reported, then the fill rejects with its error', async (s) => {
      await s.createBlob(ref, 128 * PAGE_SIZE);
      const seen: FillProgress[] = [];
      const boom = new Error('source on fire');
      let finalised = false;
      async function* failing(): AsyncGenerator<FillExtent> {
        try {
          yield* stream(SPECS.slice(0, 3));
          throw boom;
        } finally {
          finalised = true;
        }
      }
      await expect(s.fillPages(ref, failing(), { batchBytes: MiB, onBatch: (p) => { seen.push(p); } })).rejects.toBe(boom);
      expect(finalised).toBe(true);
      expect(seen).toEqual([{ durableBytes: 20 * PAGE_SIZE, lastOffset: 24 * PAGE_SIZE }]);
      expect(await contents(s, 128)).toEqual(expected(128, SPECS.slice(0, 3)));
      // The store is still usable (a failing source is not a store failure).
      await s.writePages(ref, 127 * PAGE_SIZE, pages(1, 1), 0);
    });

    t('bad extents reject (TypeError / RangeError / InvalidPageRange) after committing what came before', async (s) => {
      await s.createBlob(ref, 128 * PAGE_SIZE);
      const good = SPECS.slice(0, 2);
      const bad: Array<[unknown, new (...a: never[]) => Error]> = [
        [{ offset: 100, data: pages(1, 1), tag: 0 }, RangeError],
        [{ offset: 0, data: pages(1, 1), tag: 0 }, RangeError], // below the previous end
        [{ offset: 32 * PAGE_SIZE, data: Buffer.alloc(100), tag: 0 }, RangeError],
        [{ offset: 32 * PAGE_SIZE, data: pages(1, 1), tag: -1 }, RangeError],
        [{ offset: 32 * PAGE_SIZE, data: 'x', tag: 0 }, TypeError],
        [{ offset: 32 * PAGE_SIZE, data: pages(1, 1), tag: 0, release: 'later' }, TypeError],
        [null, TypeError],
        [{ offset: 127 * PAGE_SIZE, data: pages(2, 1), tag: 0 }, StoreError],
      ];
      for (const [extent, type] of bad) {
        await s.createBlob(ref, 128 * PAGE_SIZE, { overwrite: true });
        async function* withBad(): AsyncGenerator<FillExtent> {
          yield* stream(good);
          yield extent as FillExtent;
        }
        const error = await s.fillPages(ref, withBad()).then(() => undefined, (e: unknown) => e);
        expect(error).toBeInstanceOf(type);
        if (type === StoreError) expect((error as StoreError).code).toBe('InvalidPageRange');
        expect(await contents(s, 128)).toEqual(expected(128, good));
      }
      await expect(s.fillPages(ref, [] as unknown as AsyncIterable<FillExtent>)).rejects.toThrow(TypeError);
      await expect(s.fillPages(ref, stream([]), { batchBytes: 0 })).rejects.toThrow(RangeError);
      await expectStoreError(s.fillPages({ ...ref, blob: 'missing' }, stream(good)), 'BlobNotFound', 404);
    });

    t('release: each extent is released once, only when the store no longer reads it, whatever path it takes', async (s) => {
      const P = IO_ALIGNMENT / PAGE_SIZE; // pages per 4 KiB
      await s.createBlob(ref, 2 * MiB);
      await s.writePages(ref, 200 * P * PAGE_SIZE, pages(P, 0x31), 6); // under the last extent: a single write
      // Aligned memory and offsets (direct I/O where the store has it), memory off by 16 bytes (a staged copy),
      // an offset that is not 4 KiB-aligned (buffered), allocated pages (the single path), a tail release of a
      // whole buffer.
      const aligned = alignedBuffer(64 * P * PAGE_SIZE).fill(0x41);
      const offBy16 = Buffer.alloc(16 + 32 * P * PAGE_SIZE, 0x42).subarray(16);
      const specs: Array<{ offset: number; data: Uint8Array; fill: number }> = [
        { offset: 0, data: aligned, fill: 0x41 },
        { offset: 64 * P * PAGE_SIZE, data: offBy16, fill: 0x42 },
        { offset: 96 * P * PAGE_SIZE + PAGE_SIZE, data: pages(9, 0x43), fill: 0x43 },
        { offset: 200 * P * PAGE_SIZE, data: pages(2 * P, 0x44), fill: 0x44 },
      ];
      const released = specs.map(() => 0);
      async function* withRelease(): AsyncGenerator<FillExtent> {
        for (const [i, x] of specs.entries()) {
          // On release the producer scribbles over its buffer at once: the store must be done with it.
          yield { offset: x.offset, data: x.data, tag: 2, release: () => { released[i] = (released[i] ?? 0) + 1; x.data.fill(0xee); } };
        }
      }
      const result = await s.fillPages(ref, withRelease(), { batchBytes: 16 * P * PAGE_SIZE });
      expect(result.bytesWritten).toBe(specs.reduce((n, x) => n + x.data.length, 0));
      expect(released).toEqual([1, 1, 1, 1]);
      for (const x of specs) {
        const { data, ranges } = await s.readPages(ref, x.offset, x.data.length);
        expect(data.every((b) => b === x.fill)).toBe(true);
        expect(ranges).toEqual([{ start: x.offset, end: x.offset + x.data.length - 1, tag: 2 }]);
      }
      // A release that throws is the producer's problem: the fill stands.
      await s.createBlob(ref, MiB, { overwrite: true });
      async function* throwing(): AsyncGenerator<FillExtent> {
        yield { offset: 0, data: pages(8, 0x45), tag: 1, release: () => { throw new Error('producer bookkeeping'); } };
      }
      expect(await s.fillPages(ref, throwing())).toEqual({ bytesWritten: 8 * PAGE_SIZE, batches: 1 });
      expect((await s.readPages(ref, 0, 8 * PAGE_SIZE)).data.every((b) => b === 0x45)).toBe(true);
    });

    t('abort: the extents pulled before it are committed and reported, then the fill rejects with the reason', async (s) => {
      await s.createBlob(ref, 128 * PAGE_SIZE);
      const controller = new AbortController();
      const seen: FillProgress[] = [];
      const error = await s.fillPages(ref, stream(SPECS, (i) => { if (i === 4) controller.abort(); }), {
        signal: controller.signal, batchBytes: MiB, onBatch: (p) => { seen.push(p); },
      }).then(() => undefined, (e: unknown) => e);
      expect((error as Error).name).toBe('AbortError');
      // Extent 4 was being produced when the abort came; it is still written (it was handed over), none after.
      expect(await contents(s, 128)).toEqual(expected(128, SPECS.slice(0, 5)));
      expect(seen).toEqual([{ durableBytes: 37 * PAGE_SIZE, lastOffset: 65 * PAGE_SIZE }]);
    });

    t('a write issued during a batch is ordered with it, never mixed; reads go on and see only committed batches', async (s) => {
      await s.createBlob(ref, 128 * PAGE_SIZE);
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => { release = resolve; });
      let reached: () => void = () => undefined;
      const atGate = new Promise<void>((resolve) => { reached = resolve; });
      // The stream stalls while producing extent 2: extents 0 and 1 are handed over, the batch is open.
      const fill = s.fillPages(ref, stream(SPECS.slice(0, 3), async (i) => {
        if (i !== 2) return;
        reached();
        await gate;
      }), { batchBytes: MiB });
      await atGate;
      // A read goes on mid-batch and sees only committed batches (none yet where batches span extents).
      expect(await contents(s, 24)).toEqual(expected(24, batchesExcludeWriters ? [] : SPECS.slice(0, 2)));
      let writeDone = false;
      const write = s.writePages(ref, 20 * PAGE_SIZE, pages(2, 0x77), 9).then(() => { writeDone = true; });
      await new Promise((r) => setTimeout(r, 20));
      const extent2 = SPECS[2] as Spec;
      const theWrite: Spec = { start: 20, count: 2, fill: 0x77, tag: 9 };
      if (batchesExcludeWriters) expect(writeDone).toBe(false);
      release();
      await fill;
      await write;
      const writeLast = expected(24, [...SPECS.slice(0, 3), theWrite]);
      const extentLast = expected(24, [...SPECS.slice(0, 2), theWrite, extent2]);
      // Held off until the batch committed, the write lands after it; otherwise the extent, pulled later, does.
      expect(await contents(s, 24)).toEqual(batchesExcludeWriters ? writeLast : extentLast);
    });
  });
}
