/**
 * LocalPageStore beyond the conformance suite: space reclaim (Azurite #2767), bytes at rest, injected I/O
 * failures (EIO, ENOSPC) through the FileIo seam, recovery of each crash window, the single-process lock.
 */
import { closeSync, constants, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import {
  type FillExtent, type FileHandleIo, type FileIo, LocalPageStore, nodeFileIo, PAGE_SIZE, StoreError,
} from '../../lib/store/index.js';
import { alignedBuffer } from '../../lib/xts/index.js';
import { expectStoreError, pages } from './conformance.js';
import { localFixture, tempDir as newTempDir } from './helpers.js';

const made: string[] = [];
function tempDir(): string {
  const dir = newTempDir();
  made.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

const ref = { account: 'a', container: 'c', blob: 'disk' };
const MiB = 1024 * 1024;

function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((n) => join(dir, n)).filter((p) => statSync(p).isFile());
}

/** Bytes the directory occupies on disk (allocated blocks, not apparent sizes). */
function allocatedBytes(dir: string): number {
  return allFiles(dir).reduce((n, p) => n + statSync(p).blocks * 512, 0);
}

function dirContains(dir: string, needle: Buffer): string[] {
  return allFiles(dir).filter((p) => readFileSync(p).includes(needle));
}

/** A page full of a recognisable ASCII pattern. */
function patternPages(n: number, text: string): Buffer {
  const b = Buffer.alloc(n * PAGE_SIZE);
  for (let i = 0; i < b.length; i += text.length) b.write(text, i, 'latin1');
  return b;
}

type Op = 'write' | 'datasync' | 'truncate' | 'punch';

/** nodeFileIo with failures: `fail(op, path, n)` returns an errno to raise for the n-th call of that kind. */
function faultyIo(fail: (op: Op, path: string, n: number) => string | undefined): FileIo {
  const base = nodeFileIo();
  const counts = new Map<Op, number>();
  const check = (op: Op, path: string): void => {
    const n = (counts.get(op) ?? 0) + 1;
    counts.set(op, n);
    const code = fail(op, path, n);
    if (code !== undefined) throw Object.assign(new Error(`${code}: injected ${op} failure on ${path}`), { code });
  };
  const wrap = (h: FileHandleIo, path: string): FileHandleIo => ({
    read: (...a) => h.read(...a),
    write: async (...a) => { check('write', path); return h.write(...a); },
    datasync: async () => { check('datasync', path); return h.datasync(); },
    truncate: async (len) => { check('truncate', path); return h.truncate(len); },
    size: () => h.size(),
    allocated: () => h.allocated(),
    close: () => h.close(),
  });
  const openDirect = base.openDirect;
  return {
    ...base,
    open: async (path, mode) => wrap(await base.open(path, mode), path),
    ...(openDirect === undefined ? {} : { openDirect: async (path: string) => wrap(await openDirect(path), path) }),
    punchHoles: async (path, h, ranges) => { check('punch', path); return base.punchHoles(path, h, ranges); },
  };
}

/** Whether the file system of `dir` takes O_DIRECT (tmpfs and some others do not). */
function directIoWorks(dir: string): boolean {
  const probe = join(dir, '.direct-probe');
  try {
    writeFileSync(probe, '');
    closeSync(openSync(probe, constants.O_RDWR | constants.O_DIRECT));
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { force: true });
  }
}

/** nodeFileIo that counts data-file writes by handle kind; `direct` may replace what openDirect does. */
function countingIo(direct?: (path: string) => Promise<FileHandleIo>): FileIo & { writes: { buffered: number; direct: number } } {
  const base = nodeFileIo();
  const writes = { buffered: 0, direct: 0 };
  const counted = (h: FileHandleIo, path: string, kind: 'buffered' | 'direct'): FileHandleIo => ({
    ...h,
    read: (...a) => h.read(...a),
    write: async (...a) => {
      if (path.endsWith('.dat')) writes[kind]++;
      return h.write(...a);
    },
    datasync: () => h.datasync(),
    truncate: (len) => h.truncate(len),
    size: () => h.size(),
    allocated: () => h.allocated(),
    close: () => h.close(),
  });
  return {
    ...base,
    writes,
    open: async (path, mode) => counted(await base.open(path, mode), path, 'buffered'),
    openDirect: async (path) => counted(await (direct ?? (base.openDirect as (p: string) => Promise<FileHandleIo>))(path), path, 'direct'),
  };
}

async function* extentsOf(list: Array<[number, Uint8Array]>, tag = 1): AsyncGenerator<FillExtent> {
  for (const [offset, data] of list) yield { offset, data, tag };
}

async function setup(store: LocalPageStore, size = 4 * MiB): Promise<void> {
  await store.createContainer(ref.account, ref.container);
  await store.createBlob(ref, size);
}

describe('LocalPageStore space', () => {
  it('repeated overwrites do not grow the store (Azurite #2767)', async () => {
    const f = await localFixture();
    try {
      await setup(f.store, 64 * MiB);
      const data = (): number => allocatedBytes(join(f.dir, 'data'));
      await f.store.writePages(ref, 0, pages(2048, 1), 0);
      const after1 = data();
      for (let i = 0; i < 40; i++) await f.store.writePages(ref, 0, pages(2048, i), i % 3);
      for (let i = 0; i < 2000; i++) await f.store.writePages(ref, (i % 256) * 8 * PAGE_SIZE, pages(8, i), 1);
      expect(data()).toBe(after1); // 1 MiB written ~100 times: the data files did not grow by a byte
      expect(allocatedBytes(f.dir)).toBeLessThan(after1 + 2 * MiB); // SQLite: rows + a WAL capped near 1 MiB
    } finally {
      await f.dispose();
    }
  });

  it('clears and shrinks return space to the filesystem', async () => {
    const f = await localFixture();
    try {
      await setup(f.store, 64 * MiB);
      for (let i = 0; i < 8; i++) await f.store.writePages(ref, i * 4 * MiB, pages(8192, 7), 0);
      const full = allocatedBytes(f.dir);
      expect(full).toBeGreaterThanOrEqual(32 * MiB);
      await f.store.clearPages(ref, 0, 16 * MiB);
      await f.store.resizeBlob(ref, 24 * MiB);
      const left = allocatedBytes(f.dir);
      if (f.store.punchesHoles) expect(left).toBeLessThan(full - 20 * MiB);
      expect((await f.store.readPages(ref, 0, 4 * MiB)).data.every((b) => b === 0)).toBe(true);
    } finally {
      await f.dispose();
    }
  });
});

describe('LocalPageStore bytes at rest', () => {
  it('old bytes of overwritten or cleared pages are nowhere in the directory', async () => {
    const f = await localFixture();
    const needle = Buffer.from('PLAINTEXT-SECRET-PATTERN-0123456789');
    try {
      await setup(f.store);
      await f.store.writePages(ref, 0, patternPages(64, needle.toString('latin1')), 0); // fresh: straight to .dat
      await f.store.writePages(ref, 64 * PAGE_SIZE, pages(8, 1), 0);
      await f.store.writePages(ref, 64 * PAGE_SIZE, patternPages(8, needle.toString('latin1')), 0); // via .redo
      await f.store.writePages(ref, 200 * PAGE_SIZE, patternPages(4, needle.toString('latin1')), 0);
      expect(dirContains(f.dir, needle).length).toBeGreaterThan(0);
      const snap = await f.store.createSnapshot(ref);
      await f.store.writePages(ref, 0, pages(64, 0xee), 3); // "re-encrypt" in place
      await f.store.writePages(ref, 64 * PAGE_SIZE, pages(8, 0xee), 3);
      await f.store.clearPages(ref, 200 * PAGE_SIZE, 4 * PAGE_SIZE);
      // The snapshot legitimately keeps its point-in-time copy...
      expect(dirContains(f.dir, needle).length).toBeGreaterThan(0);
      await f.store.deleteSnapshot({ ...ref, snapshot: snap });
      // ...and once it is gone, no file holds the pattern: not the data files, the redo file, SQLite or its WAL.
      expect(dirContains(f.dir, needle)).toEqual([]);
      await f.store.close();
      expect(dirContains(f.dir, needle)).toEqual([]);
    } finally {
      await f.dispose();
    }
  });
});

describe('LocalPageStore I/O failures (injected through FileIo)', () => {
  for (const [name, op, errno] of [
    ['fdatasync EIO on fresh pages', 'datasync', 'EIO'],
    ['write ENOSPC on fresh pages', 'write', 'ENOSPC'],
  ] as const) {
    it(`${name}: rejects, refuses later calls, loses nothing acknowledged, leaves no bytes behind`, async () => {
      const dir = tempDir();
      let armed = false;
      const store = await LocalPageStore.open(dir, {
        fileIo: faultyIo((o, path) => (armed && o === op && path.endsWith('.dat') ? errno : undefined)),
      });
      await setup(store);
      await store.writePages(ref, 0, pages(4, 1), 1);
      armed = true;
      const failed = await store.writePages(ref, 8 * PAGE_SIZE, pages(4, 2), 2).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(StoreError);
      expect((failed as StoreError).code).toBe('StoreIoFailed');
      expect(((failed as StoreError).cause as { code: string }).code).toBe(errno);
      await expectStoreError(store.readPages(ref, 0, PAGE_SIZE), 'StoreIoFailed');
      await expectStoreError(store.writePages(ref, 0, pages(1, 3), 1), 'StoreIoFailed');
      await store.close();
      const reopened = await LocalPageStore.open(dir);
      expect(await reopened.listRanges(ref)).toEqual([{ start: 0, end: 2047, tag: 1 }]);
      expect((await reopened.readPages(ref, 0, 12 * PAGE_SIZE)).data.subarray(0, 2048).every((b) => b === 1)).toBe(true);
      await reopened.close();
      const dat = allFiles(join(dir, 'data')).find((p) => p.endsWith('.dat')) as string;
      expect(readFileSync(dat).subarray(8 * PAGE_SIZE).every((b) => b === 0)).toBe(true); // scrubbed by recovery
    });
  }

  it('a failure after the commit of an overwrite is finished by replaying the redo journal', async () => {
    const dir = tempDir();
    let armed = false;
    const store = await LocalPageStore.open(dir, {
      fileIo: faultyIo((o, path, n) => (armed && o === 'write' && path.endsWith('.dat') && n > 0 ? 'EIO' : undefined)),
    });
    await setup(store);
    await store.writePages(ref, 0, pages(8, 1), 1);
    armed = true; // the .redo write and the commit succeed; applying in place fails
    await expectStoreError(store.writePages(ref, 0, pages(8, 2), 2), 'StoreIoFailed');
    await store.close();
    const reopened = await LocalPageStore.open(dir);
    expect(await reopened.listRanges(ref)).toEqual([{ start: 0, end: 4095, tag: 2 }]);
    expect((await reopened.readPages(ref, 0, 8 * PAGE_SIZE)).data.every((b) => b === 2)).toBe(true);
    expect(allFiles(join(dir, 'data')).filter((p) => p.endsWith('.redo')).map((p) => statSync(p).size)).toEqual([0]);
    await reopened.close();
  });

  it('a failed redo fsync before the commit leaves the old bytes and tag', async () => {
    const dir = tempDir();
    let armed = false;
    const store = await LocalPageStore.open(dir, {
      fileIo: faultyIo((o, path) => (armed && o === 'datasync' && path.endsWith('.redo') ? 'EIO' : undefined)),
    });
    await setup(store);
    await store.writePages(ref, 0, pages(8, 1), 1);
    armed = true;
    await expectStoreError(store.writePages(ref, 0, pages(8, 2), 2), 'StoreIoFailed');
    await store.close();
    const reopened = await LocalPageStore.open(dir);
    expect(await reopened.listRanges(ref)).toEqual([{ start: 0, end: 4095, tag: 1 }]);
    expect((await reopened.readPages(ref, 0, 8 * PAGE_SIZE)).data.every((b) => b === 1)).toBe(true);
    await reopened.close();
  });

  it('recovery that fails part-way can simply be run again', async () => {
    const dir = tempDir();
    let armed = false;
    const store = await LocalPageStore.open(dir, {
      fileIo: faultyIo((o, path) => (armed && o === 'punch' ? 'EIO' : undefined)),
    });
    await setup(store);
    await store.writePages(ref, 0, pages(8, 1), 1);
    armed = true;
    await expectStoreError(store.clearPages(ref, 0, 4 * PAGE_SIZE), 'StoreIoFailed'); // committed, punch failed
    await store.close();
    await expectStoreError(LocalPageStore.open(dir, { fileIo: faultyIo((o) => (o === 'punch' ? 'EIO' : undefined)) }),
      'StoreIoFailed');
    const reopened = await LocalPageStore.open(dir);
    expect(await reopened.listRanges(ref)).toEqual([{ start: 2048, end: 4095, tag: 1 }]);
    await reopened.close();
    const dat = allFiles(join(dir, 'data')).find((p) => p.endsWith('.dat')) as string;
    expect(readFileSync(dat).subarray(0, 4 * PAGE_SIZE).every((b) => b === 0)).toBe(true);
  });
});

describe('LocalPageStore bulk fills with direct I/O', () => {
  it.runIf(directIoWorks(newTempDir()))('aligned extents go to the device through O_DIRECT; others are buffered; bytes land exactly', async () => {
    const dir = tempDir();
    const io = countingIo();
    const store = await LocalPageStore.open(dir, { fileIo: io });
    await setup(store, 32 * MiB);
    const a = alignedBuffer(4 * MiB).fill(0x51); // aligned memory: written as it is
    const b = Buffer.alloc(MiB + 16, 0x52).subarray(16); // memory off by 16: staged through an aligned copy
    const c = pages(3, 0x53); // 1536 bytes at a 4 KiB offset: not a 4 KiB length, buffered
    await store.fillPages(ref, extentsOf([[0, a], [8 * MiB, b], [16 * MiB, c]]));
    expect(io.writes).toEqual({ direct: 2, buffered: 1 });
    await store.close();
    const reopened = await LocalPageStore.open(dir); // what is on disk, through a fresh page cache view
    for (const [offset, length, byte] of [[0, 4 * MiB, 0x51], [8 * MiB, MiB, 0x52], [16 * MiB, 3 * PAGE_SIZE, 0x53]] as const) {
      expect((await reopened.readPages(ref, offset, length)).data.every((x) => x === byte)).toBe(true);
    }
    expect(await reopened.listRanges(ref)).toEqual([
      { start: 0, end: 4 * MiB - 1, tag: 1 }, { start: 8 * MiB, end: 9 * MiB - 1, tag: 1 },
      { start: 16 * MiB, end: 16 * MiB + 3 * PAGE_SIZE - 1, tag: 1 },
    ]);
    await reopened.close();
  });

  it('a file system without O_DIRECT, or a direct write refused with EINVAL, falls back to buffered writes', async () => {
    const refusing = countingIo(async () => { throw Object.assign(new Error('EINVAL: no O_DIRECT here'), { code: 'EINVAL' }); });
    const rejecting = countingIo(async (path) => {
      const h = await nodeFileIo().open(path, 'open');
      return { ...h, read: h.read.bind(h), datasync: h.datasync.bind(h), truncate: h.truncate.bind(h), size: h.size.bind(h),
        allocated: h.allocated.bind(h), close: h.close.bind(h),
        write: async () => { throw Object.assign(new Error('EINVAL: misaligned for this device'), { code: 'EINVAL' }); } };
    });
    for (const io of [refusing, rejecting]) {
      const store = await LocalPageStore.open(tempDir(), { fileIo: io });
      await setup(store, 16 * MiB);
      const data = alignedBuffer(4 * MiB).fill(0x61);
      await store.fillPages(ref, extentsOf([[0, data], [4 * MiB, data]]));
      const attempts = io.writes.direct;
      // Refused attempts: none without O_DIRECT; with it, the writes already in flight when the first failed.
      if (io === refusing) expect(attempts).toBe(0);
      else expect(attempts === 1 || attempts === 2).toBe(true);
      expect(io.writes.buffered).toBe(2); // every extent, once
      await store.fillPages(ref, extentsOf([[8 * MiB, data]]));
      expect(io.writes.direct).toBe(attempts); // direct I/O stays off
      expect(io.writes.buffered).toBe(3);
      expect((await store.readPages(ref, 0, 12 * MiB)).data.every((x) => x === 0x61)).toBe(true);
      await store.close();
    }
  });

  it.runIf(directIoWorks(newTempDir()))('EIO on a direct write: the fill rejects, its batch is gone after recovery, earlier batches stay', async () => {
    const dir = tempDir();
    let armed = false;
    const store = await LocalPageStore.open(dir, {
      fileIo: faultyIo((o, path) => (armed && o === 'write' && path.endsWith('.dat') ? 'EIO' : undefined)),
    });
    await setup(store, 32 * MiB);
    const data = alignedBuffer(4 * MiB).fill(0x71);
    async function* twoBatches(): AsyncGenerator<FillExtent> {
      yield { offset: 0, data, tag: 1 };
      yield { offset: 4 * MiB, data, tag: 1 };
      armed = true; // the second batch fails
      yield { offset: 8 * MiB, data, tag: 1 };
    }
    const acked: number[] = [];
    const failed = await store.fillPages(ref, twoBatches(), { batchBytes: 8 * MiB, onBatch: (p) => { acked.push(p.lastOffset); } })
      .catch((e: unknown) => e);
    expect((failed as StoreError).code).toBe('StoreIoFailed');
    expect(((failed as StoreError).cause as { code: string }).code).toBe('EIO');
    expect(acked).toEqual([8 * MiB]);
    await store.close();
    const reopened = await LocalPageStore.open(dir);
    expect(await reopened.listRanges(ref)).toEqual([{ start: 0, end: 8 * MiB - 1, tag: 1 }]);
    expect((await reopened.readPages(ref, 0, 8 * MiB)).data.every((x) => x === 0x71)).toBe(true);
    await reopened.close();
  });
});

describe('LocalPageStore opening', () => {
  it('refuses a second open of the same directory', async () => {
    const f = await localFixture();
    try {
      await expectStoreError(LocalPageStore.open(f.dir), 'StoreLocked', 409);
    } finally {
      await f.dispose();
    }
  });

  it('keeps everything across close and reopen', async () => {
    const dir = tempDir();
    const store = await LocalPageStore.open(dir);
    await setup(store);
    await store.writePages(ref, 0, pages(3, 4), 9);
    const snap = await store.createSnapshot(ref);
    await store.writePages(ref, 0, pages(1, 5), 8);
    await store.setSequenceNumber(ref, 'update', 42);
    await store.close();
    const again = await LocalPageStore.open(dir);
    expect(await again.listRanges(ref)).toEqual([{ start: 0, end: 511, tag: 8 }, { start: 512, end: 1535, tag: 9 }]);
    expect(await again.listRanges({ ...ref, snapshot: snap })).toEqual([{ start: 0, end: 1535, tag: 9 }]);
    expect((await again.getBlob(ref)).sequenceNumber).toBe(42);
    expect(await again.diffRanges(ref, snap)).toEqual({ updated: [{ start: 0, end: 511 }], cleared: [] });
    await again.close();
  });
});
