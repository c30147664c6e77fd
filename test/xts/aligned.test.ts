/**
 * Aligned buffers from native memory (lib/xts/aligned.ts): what the bulk fill paths hand to O_DIRECT writes.
 */
import { spawnSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { AlignedBufferPool, alignedBuffer, IO_ALIGNMENT, isIoAligned, poolBuffer } from '../../lib/xts/index.js';
import { native } from '../../lib/xts/native.js';

describe('alignedBuffer / isIoAligned', () => {
  it('hands out zero-filled buffers on a 4096-byte boundary, of exactly the size asked', () => {
    for (const bytes of [1, 511, 4096, 4097, 4 * 1024 * 1024 + 512]) {
      const b = alignedBuffer(bytes);
      expect(b.length).toBe(bytes);
      expect(isIoAligned(b)).toBe(true);
      expect(b.every((x) => x === 0)).toBe(true);
      b.fill(0xa5); // writable over its whole length
      expect(b[bytes - 1]).toBe(0xa5);
    }
  });

  it('tells views that are not on the boundary', () => {
    const b = alignedBuffer(3 * IO_ALIGNMENT);
    expect(isIoAligned(b.subarray(IO_ALIGNMENT))).toBe(true);
    for (const off of [1, 16, 512, 2048]) expect(isIoAligned(b.subarray(off))).toBe(false);
    expect(isIoAligned(new Uint8Array(b.buffer, 16, 64))).toBe(false);
  });

  it('rejects bad sizes and non-views', () => {
    for (const bad of [0, -1, 1.5, 2 ** 30 + 1, Number.NaN]) expect(() => alignedBuffer(bad)).toThrow(RangeError);
    expect(() => alignedBuffer('4096' as unknown as number)).toThrow(RangeError);
    expect(() => isIoAligned('x' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => isIoAligned(new Uint16Array(8) as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe('poolBuffer', () => {
  it('hands out a page-aligned buffer of exactly the size asked, all zero and writable', () => {
    for (const bytes of [1, 4096, 4097, 4 * 1024 * 1024]) {
      const b = poolBuffer(bytes);
      expect(b.length).toBe(bytes);
      expect(isIoAligned(b)).toBe(true);
      expect(b.equals(Buffer.alloc(bytes))).toBe(true);
      b.fill(0x5a);
      expect(b[0]).toBe(0x5a);
      expect(b[bytes - 1]).toBe(0x5a);
    }
  });

  it('rejects bad sizes', () => {
    for (const bad of [0, -1, 1.5, 2 ** 30 + 1, Number.NaN]) expect(() => poolBuffer(bad)).toThrow(RangeError);
    expect(() => poolBuffer('4096' as unknown as number)).toThrow(RangeError);
  });

  it('the native calls behind alignedBuffer and poolBuffer check their size too, naming themselves', () => {
    for (const name of ['alignedBuffer', 'poolBuffer'] as const) {
      const make = native[name] as (bytes: unknown) => Buffer;
      for (const bad of [0, -1, 1.5, 2 ** 30 + 1, Number.NaN]) {
        expect(() => make(bad)).toThrow(expect.objectContaining({ name: 'RangeError', message: `${name}(bytes) takes a whole number from 1 to 2^30` }));
      }
      expect(() => make('4096')).toThrow(expect.objectContaining({ name: 'TypeError', message: `${name}(bytes) expects a number` }));
      expect(make(4096).length).toBe(4096);
    }
  });

  // A spawn forks on Linux, which write-protects the parent's private pages: each 4 KiB page of ordinary memory
  // written after it takes a fault. The pool's buffers are not shared with the child, so they take none.
  it.runIf(process.platform === 'linux')('is not shared with a child process: writing it after a spawn takes no page faults', () => {
    const bytes = 4 * 1024 * 1024;
    const b = poolBuffer(bytes);
    b.fill(1); // fault every page in now
    const child = spawnSync(process.execPath, ['-e', '0']);
    expect(child.status).toBe(0);
    const before = process.resourceUsage().minorPageFault;
    b.fill(2);
    const faults = process.resourceUsage().minorPageFault - before;
    expect(b[bytes - 1]).toBe(2);
    expect(faults).toBeLessThan(bytes / 4096 / 4); // 1024 pages: ordinary memory takes about 1024 here
  });
});

describe('AlignedBufferPool', () => {
  it('reuses what is given back, and makes a new buffer only when none is free', () => {
    const pool = new AlignedBufferPool(64 * 1024, 2);
    const a = pool.take();
    const b = pool.take(4096);
    expect(pool.made).toBe(2);
    expect(b.length).toBe(4096);
    expect(isIoAligned(a) && isIoAligned(b)).toBe(true);
    pool.give(b);
    const c = pool.take(8192);
    expect(c.buffer).toBe(b.buffer); // the same memory again
    expect(pool.made).toBe(2);
    pool.give(a);
    pool.give(c);
    pool.take();
    pool.take();
    expect(pool.made).toBe(2);
    pool.take(); // none free: a new one, never a wait
    expect(pool.made).toBe(3);
  });

  it('ignores a second give, foreign buffers, and keeps at most `keep` free', () => {
    const pool = new AlignedBufferPool(4096, 1);
    const a = pool.take();
    const b = pool.take();
    pool.give(a);
    pool.give(a); // twice: once counts
    pool.give(b); // over `keep`: dropped
    pool.give(Buffer.alloc(4096)); // not the pool's
    pool.give(alignedBuffer(4096)); // aligned, the right size, still not the pool's
    const again = pool.take();
    expect(again.buffer).toBe(a.buffer);
    expect(pool.made).toBe(2);
    pool.take();
    expect(pool.made).toBe(3);
  });

  it('rejects bad sizes', () => {
    expect(() => new AlignedBufferPool(0, 1)).toThrow(RangeError);
    expect(() => new AlignedBufferPool(4096, -1)).toThrow(RangeError);
    const pool = new AlignedBufferPool(4096, 1);
    expect(() => pool.take(4097)).toThrow(RangeError);
    expect(() => pool.take(-1)).toThrow(RangeError);
  });
});
