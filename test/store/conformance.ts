/**
 * The PageStore conformance suite: every implementation (memory, local directory, later Azure) runs it
 * through a factory. It is the executable form of the interface documented in lib/store/types.ts.
 */
import { describe, expect, it } from 'vitest';

import { PAGE_SIZE, type PageStore, StoreError, type TaggedRange } from '../../lib/store/index.js';

export interface StoreFixture {
  store: PageStore;
  /** Close and remove whatever the fixture made. */
  dispose(): Promise<void>;
}

export type StoreFactory = () => Promise<StoreFixture>;

const KiB = 1024;
const MiB = 1024 * KiB;
const ref = { account: 'acct', container: 'disks', blob: 'os.vhd' };

/** `n` pages of `fill`. */
export function pages(n: number, fill: number): Buffer {
  return Buffer.alloc(n * PAGE_SIZE, fill);
}

export async function expectStoreError(p: Promise<unknown>, code: string, status?: number): Promise<void> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(StoreError);
  expect((e as StoreError).code).toBe(code);
  if (status !== undefined) expect((e as StoreError).status).toBe(status);
}

/** Run `fn` on a fresh store from `factory` with the container of `where` created, then dispose of it. */
export async function withStore(factory: StoreFactory, fn: (store: PageStore) => Promise<void>,
  where: { account: string; container: string } = ref): Promise<void> {
  const f = await factory();
  try {
    await f.store.createContainer(where.account, where.container);
    await fn(f.store);
  } finally {
    await f.dispose();
  }
}

export function describeConformance(name: string, factory: StoreFactory): void {
  const t = (title: string, fn: (store: PageStore) => Promise<void>): void => {
    it(title, () => withStore(factory, fn));
  };

  describe(`PageStore conformance: ${name}`, () => {
    t('containers: create, list, duplicate, delete with blobs', async (s) => {
      await s.createContainer('acct', 'other', { team: 'x' });
      await expectStoreError(s.createContainer('acct', 'other'), 'ContainerAlreadyExists', 409);
      expect((await s.listContainers('acct')).map((c) => c.container)).toEqual(['disks', 'other']);
      expect((await s.listContainers('acct'))[1]?.metadata).toEqual({ team: 'x' });
      expect(await s.listContainers('nobody')).toEqual([]);
      await s.createBlob({ account: 'acct', container: 'other', blob: 'b' }, PAGE_SIZE);
      await s.deleteContainer('acct', 'other');
      await expectStoreError(s.listBlobs('acct', 'other'), 'ContainerNotFound', 404);
      await expectStoreError(s.deleteContainer('acct', 'other'), 'ContainerNotFound', 404);
      await expectStoreError(s.createBlob({ account: 'acct', container: 'nope', blob: 'b' }, PAGE_SIZE), 'ContainerNotFound');
    });

    t('blobs: create, get, list, overwrite, metadata, delete', async (s) => {
      const info = await s.createBlob(ref, MiB, { metadata: { os: 'linux' }, sequenceNumber: 7 });
      expect(info).toMatchObject({ size: MiB, sequenceNumber: 7, metadata: { os: 'linux' }, snapshots: [], version: 0 });
      await expectStoreError(s.createBlob(ref, MiB), 'BlobAlreadyExists', 409);
      await s.writePages(ref, 0, pages(1, 1), 0);
      await s.createBlob(ref, 2 * MiB, { overwrite: true });
      expect((await s.getBlob(ref)).size).toBe(2 * MiB);
      expect(await s.listRanges(ref)).toEqual([]);
      expect((await s.setMetadata(ref, { a: 'b' })).metadata).toEqual({ a: 'b' });
      expect((await s.listBlobs('acct', 'disks')).map((b) => b.blob)).toEqual(['os.vhd']);
      await s.deleteBlob(ref);
      await expectStoreError(s.getBlob(ref), 'BlobNotFound', 404);
      await expectStoreError(s.deleteBlob(ref), 'BlobNotFound', 404);
    });

    t('argument errors are TypeError / RangeError', async (s) => {
      await s.createBlob(ref, MiB);
      await expect(s.createBlob({ ...ref, blob: 'x' }, 1000)).rejects.toThrow(RangeError);
      await expect(s.createBlob({ ...ref, blob: 'x' }, 8 * 1024 * 1024 * MiB + PAGE_SIZE)).rejects.toThrow(RangeError);
      await expect(s.createBlob({ ...ref, blob: 'x' }, '512' as unknown as number)).rejects.toThrow(TypeError);
      await expect(s.writePages(ref, 100, pages(1, 1), 0)).rejects.toThrow(RangeError);
      await expect(s.writePages(ref, 0, Buffer.alloc(100), 0)).rejects.toThrow(RangeError);
      await expect(s.writePages(ref, 0, Buffer.alloc(0), 0)).rejects.toThrow(RangeError);
      await expect(s.writePages(ref, 0, pages(8 * KiB + 1, 0), 0)).rejects.toThrow(RangeError);
      await expect(s.writePages(ref, 0, 'x' as unknown as Uint8Array, 0)).rejects.toThrow(TypeError);
      await expect(s.writePages(ref, 0, pages(1, 1), -1)).rejects.toThrow(RangeError);
      await expect(s.writePages(ref, 0, pages(1, 1), 1.5)).rejects.toThrow(RangeError);
      await expect(s.clearPages(ref, 0, 0)).rejects.toThrow(RangeError);
      await expect(s.readPages(ref, -1, 10)).rejects.toThrow(RangeError);
      await expect(s.setSequenceNumber(ref, 'increment', 3)).rejects.toThrow(RangeError);
      await expect(s.setSequenceNumber(ref, 'bump' as 'max', 3)).rejects.toThrow(RangeError);
      await expect(s.getBlob({ account: 'acct', container: '', blob: 'b' })).rejects.toThrow(RangeError);
      await expect(s.getBlob(null as unknown as typeof ref)).rejects.toThrow(TypeError);
    });

    t('writes past the end are 416 InvalidPageRange', async (s) => {
      await s.createBlob(ref, 4 * PAGE_SIZE);
      await expectStoreError(s.writePages(ref, 3 * PAGE_SIZE, pages(2, 1), 0), 'InvalidPageRange', 416);
      await expectStoreError(s.clearPages(ref, 4 * PAGE_SIZE, PAGE_SIZE), 'InvalidPageRange', 416);
      await expectStoreError(s.readPages(ref, 0, 4 * PAGE_SIZE + 1), 'InvalidPageRange', 416);
      expect(await s.listRanges(ref)).toEqual([]);
    });

    t('write, read any byte range, unallocated reads zeros, ranges merge by tag', async (s) => {
      await s.createBlob(ref, MiB);
      await s.writePages(ref, 0, pages(2, 0xaa), 0);
      await s.writePages(ref, 2 * PAGE_SIZE, pages(2, 0xbb), 0);
      await s.writePages(ref, 8 * PAGE_SIZE, pages(1, 0xcc), 3);
      expect(await s.listRanges(ref)).toEqual([{ start: 0, end: 2047, tag: 0 }, { start: 4096, end: 4607, tag: 3 }]);
      const r = await s.readPages(ref, 1000, 4000);
      expect(r.data.length).toBe(4000);
      expect(r.data[0]).toBe(0xaa);
      expect(r.data[1024 - 1000]).toBe(0xbb);
      expect(r.data[2048 - 1000]).toBe(0);
      expect(r.data[4096 - 1000]).toBe(0xcc);
      expect(r.ranges).toEqual([{ start: 512, end: 2047, tag: 0 }, { start: 4096, end: 4607, tag: 3 }]);
      expect(await s.listRanges(ref, { start: 1024, end: 1535 })).toEqual([{ start: 1024, end: 1535, tag: 0 }]);
      const empty = await s.readPages(ref, 0, 0);
      expect(empty.data.length).toBe(0);
    });

    t('overwrite splits ranges; tags follow the bytes', async (s) => {
      await s.createBlob(ref, MiB);
      await s.writePages(ref, 0, pages(8, 1), 1);
      await s.writePages(ref, 2 * PAGE_SIZE, pages(2, 2), 2);
      expect(await s.listRanges(ref)).toEqual<TaggedRange[]>([
        { start: 0, end: 1023, tag: 1 }, { start: 1024, end: 2047, tag: 2 }, { start: 2048, end: 4095, tag: 1 },
      ]);
      const { data } = await s.readPages(ref, 0, 8 * PAGE_SIZE);
      expect([...data.subarray(0, 8 * PAGE_SIZE).filter((_, i) => i % PAGE_SIZE === 0)]).toEqual([1, 1, 2, 2, 1, 1, 1, 1]);
    });

    t('clear unallocates pages and splits ranges', async (s) => {
      await s.createBlob(ref, MiB);
      await s.writePages(ref, 0, pages(8, 1), 1);
      await s.clearPages(ref, 3 * PAGE_SIZE, 2 * PAGE_SIZE);
      expect(await s.listRanges(ref)).toEqual([{ start: 0, end: 1535, tag: 1 }, { start: 2560, end: 4095, tag: 1 }]);
      expect((await s.readPages(ref, 3 * PAGE_SIZE, 2 * PAGE_SIZE)).data.every((b) => b === 0)).toBe(true);
      await s.clearPages(ref, 0, MiB);
      expect(await s.listRanges(ref)).toEqual([]);
    });

    t('resize: shrink drops pages past the end, grow reads zeros', async (s) => {
      await s.createBlob(ref, 8 * PAGE_SIZE);
      await s.writePages(ref, 0, pages(8, 5), 5);
      expect((await s.resizeBlob(ref, 3 * PAGE_SIZE)).size).toBe(3 * PAGE_SIZE);
      expect(await s.listRanges(ref)).toEqual([{ start: 0, end: 1535, tag: 5 }]);
      await s.resizeBlob(ref, 16 * PAGE_SIZE);
      expect(await s.listRanges(ref)).toEqual([{ start: 0, end: 1535, tag: 5 }]);
      expect((await s.readPages(ref, 3 * PAGE_SIZE, 5 * PAGE_SIZE)).data.every((b) => b === 0)).toBe(true);
      await expect(s.resizeBlob(ref, 100)).rejects.toThrow(RangeError);
    });

    t('sequence numbers: max, update, increment and the conditional checks', async (s) => {
      await s.createBlob(ref, MiB, { sequenceNumber: 5 });
      expect((await s.setSequenceNumber(ref, 'max', 3)).sequenceNumber).toBe(5);
      expect((await s.setSequenceNumber(ref, 'max', 9)).sequenceNumber).toBe(9);
      expect((await s.setSequenceNumber(ref, 'update', 2)).sequenceNumber).toBe(2);
      expect((await s.setSequenceNumber(ref, 'increment')).sequenceNumber).toBe(3);
      await s.writePages(ref, 0, pages(1, 1), 0, { ifSequenceNumberEqual: 3, ifSequenceNumberLessThanOrEqual: 3 });
      await expectStoreError(s.writePages(ref, 0, pages(1, 2), 0, { ifSequenceNumberLessThan: 3 }),
        'SequenceNumberConditionNotMet', 412);
      await expectStoreError(s.clearPages(ref, 0, PAGE_SIZE, { ifSequenceNumberEqual: 4 }), 'SequenceNumberConditionNotMet');
      expect((await s.readPages(ref, 0, 1)).data[0]).toBe(1);
    });

    t('ifPagesUnchangedSince: rewrite in place only if nobody wrote meanwhile', async (s) => {
      await s.createBlob(ref, MiB);
      await s.writePages(ref, 0, pages(4, 1), 0);
      const { version } = await s.readPages(ref, 0, 4 * PAGE_SIZE);
      await s.writePages(ref, 0, pages(4, 2), 7, { ifPagesUnchangedSince: version });
      await expectStoreError(s.writePages(ref, 0, pages(4, 3), 7, { ifPagesUnchangedSince: version }), 'ConditionNotMet', 412);
      const v2 = (await s.getBlob(ref)).version;
      await s.clearPages(ref, PAGE_SIZE, PAGE_SIZE);
      await expectStoreError(s.writePages(ref, 0, pages(4, 3), 7, { ifPagesUnchangedSince: v2 }), 'ConditionNotMet');
      await expectStoreError(s.writePages(ref, 8 * PAGE_SIZE, pages(1, 3), 7, { ifPagesUnchangedSince: 1e9 }), 'ConditionNotMet');
      expect(await s.listRanges(ref)).toEqual([{ start: 0, end: 511, tag: 7 }, { start: 1024, end: 2047, tag: 7 }]);
    });

    t('snapshots: read-only point-in-time copies with their own ranges', async (s) => {
      await s.createBlob(ref, 16 * PAGE_SIZE, { metadata: { v: '1' }, sequenceNumber: 4 });
      await s.writePages(ref, 0, pages(4, 1), 1);
      const s1 = await s.createSnapshot(ref);
      await s.writePages(ref, PAGE_SIZE, pages(1, 2), 2);
      await s.clearPages(ref, 3 * PAGE_SIZE, PAGE_SIZE);
      await s.resizeBlob(ref, 2 * PAGE_SIZE);
      await s.setMetadata(ref, { v: '2' });
      const s2 = await s.createSnapshot(ref);
      expect(s2 > s1).toBe(true);
      expect(s1).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$/);
      expect((await s.getBlob(ref)).snapshots).toEqual([s1, s2]);
      const snap1 = { ...ref, snapshot: s1 };
      expect(await s.getBlob(snap1)).toMatchObject({ size: 16 * PAGE_SIZE, sequenceNumber: 4, metadata: { v: '1' }, snapshot: s1 });
      expect(await s.listRanges(snap1)).toEqual([{ start: 0, end: 2047, tag: 1 }]);
      expect([...(await s.readPages(snap1, 0, 4 * PAGE_SIZE)).data].every((b) => b === 1)).toBe(true);
      expect(await s.listRanges({ ...ref, snapshot: s2 })).toEqual([{ start: 0, end: 511, tag: 1 }, { start: 512, end: 1023, tag: 2 }]);
      await s.deleteSnapshot(snap1);
      await expectStoreError(s.getBlob(snap1), 'SnapshotNotFound', 404);
      await expectStoreError(s.readPages(snap1, 0, 1), 'SnapshotNotFound');
      await s.deleteBlob(ref);
      await expectStoreError(s.getBlob({ ...ref, snapshot: s2 }), 'BlobNotFound');
    });

    t('diff against a previous snapshot: updated and cleared ranges', async (s) => {
      await s.createBlob(ref, 32 * PAGE_SIZE);
      await s.writePages(ref, 0, pages(8, 1), 1);
      const s1 = await s.createSnapshot(ref);
      expect(await s.diffRanges(ref, s1)).toEqual({ updated: [], cleared: [] });
      await s.writePages(ref, 2 * PAGE_SIZE, pages(2, 2), 1);
      await s.clearPages(ref, 6 * PAGE_SIZE, 2 * PAGE_SIZE);
      await s.writePages(ref, 10 * PAGE_SIZE, pages(1, 3), 2);
      const s2 = await s.createSnapshot(ref);
      await s.writePages(ref, 0, pages(1, 4), 2);
      expect(await s.diffRanges({ ...ref, snapshot: s2 }, s1)).toEqual({
        updated: [{ start: 1024, end: 2047 }, { start: 5120, end: 5631 }],
        cleared: [{ start: 3072, end: 4095 }],
      });
      expect(await s.diffRanges(ref, s2)).toEqual({ updated: [{ start: 0, end: 511 }], cleared: [] });
      expect(await s.diffRanges(ref, s1, { start: 0, end: 1535 })).toEqual({
        updated: [{ start: 0, end: 511 }, { start: 1024, end: 1535 }], cleared: [],
      });
      await expectStoreError(s.diffRanges({ ...ref, snapshot: s1 }, s2), 'PreviousSnapshotNotFound', 409);
      await expectStoreError(s.diffRanges(ref, '2000-01-01T00:00:00.0000000Z'), 'PreviousSnapshotNotFound');
    });

    t('concurrent writes to one blob: all applied, none torn, last writer wins per page', async (s) => {
      await s.createBlob(ref, 64 * PAGE_SIZE);
      const calls: Promise<void>[] = [];
      for (let i = 0; i < 40; i++) calls.push(s.writePages(ref, (i % 8) * 4 * PAGE_SIZE, pages(8, i + 1), i));
      const reads = Array.from({ length: 20 }, () => s.readPages(ref, 0, 40 * PAGE_SIZE));
      await Promise.all(calls);
      for (const r of await Promise.all(reads)) {
        for (let p = 0; p < 40; p++) {
          const page = r.data.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
          expect(page.every((b) => b === page[0])).toBe(true); // never half a write
        }
      }
      const { data, ranges } = await s.readPages(ref, 0, 36 * PAGE_SIZE);
      // Windows overlap by 4 pages; call order decides: the later call i covers pages 4(i%8)..4(i%8)+7.
      for (let p = 0; p < 36; p++) {
        const last = Math.max(...Array.from({ length: 40 }, (_, i) => i).filter((i) => p >= (i % 8) * 4 && p < (i % 8) * 4 + 8));
        expect(data[p * PAGE_SIZE]).toBe(last + 1);
        expect(ranges.find((r) => r.start <= p * PAGE_SIZE && r.end >= p * PAGE_SIZE)?.tag).toBe(last);
      }
    });

    t('iterateRanges yields the same as listRanges; writes copy the caller buffer, reads hand theirs over', async (s) => {
      await s.createBlob(ref, 4 * MiB);
      for (let i = 0; i < 300; i++) await s.writePages(ref, i * 2 * PAGE_SIZE, pages(1, i % 250), i % 3);
      const listed = await s.listRanges(ref);
      const iterated: TaggedRange[] = [];
      for await (const r of s.iterateRanges(ref)) iterated.push(r);
      expect(iterated).toEqual(listed);
      expect(listed.length).toBe(300);
      const buf = pages(1, 9);
      const p = s.writePages(ref, PAGE_SIZE, buf, 0);
      buf.fill(1);
      await p;
      expect((await s.readPages(ref, PAGE_SIZE, 1)).data[0]).toBe(9);
      // Reads hand over their buffer: changing it changes nothing stored (the blob layer decrypts in place).
      const read = await s.readPages(ref, PAGE_SIZE, PAGE_SIZE);
      read.data.fill(7);
      expect((await s.readPages(ref, PAGE_SIZE, PAGE_SIZE)).data[0]).toBe(9);
    });

    t('close: later calls reject with StoreClosed', async (s) => {
      await s.close();
      await expectStoreError(s.listContainers('acct'), 'StoreClosed');
    });
  });
}
