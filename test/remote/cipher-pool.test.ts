/**
 * The upload's ciphertext buffers (lib/remote/cipher-pool.ts): aligned, reused across uploads, capped, and
 * given back after a quiet period.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

import { CipherPool, sharedCipherPool, STREAM_ALIGNMENT } from '../../lib/remote/cipher-pool.js';
import { sealExtents, type UploadExtent } from '../../lib/remote/index.js';
import { MAX_WRITE_BYTES } from '../../lib/store/index.js';
import { native } from '../../lib/xts/native.js';
import { fixture, pattern } from '../blob/helpers.js';

const aligned = (b: Uint8Array): boolean => native.addressAlignment(b) >= STREAM_ALIGNMENT;

describe('CipherPool', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('hands out aligned views of the asked length and reuses a returned buffer', () => {
    const pool = new CipherPool({ keep: 4, idleMs: 60_000 });
    const a = pool.take(MAX_WRITE_BYTES);
    expect(a.buffer.length).toBe(MAX_WRITE_BYTES);
    expect(aligned(a.buffer)).toBe(true);
    a.buffer[0] = 0x5a;
    a.release?.();
    const b = pool.take(4096);
    expect(b.buffer.length).toBe(4096);
    expect(aligned(b.buffer)).toBe(true);
    expect(b.buffer.buffer).toBe(a.buffer.buffer); // the same memory, not a new allocation
    expect(b.buffer[0]).toBe(0x5a); // uninitialised: whoever takes it writes what it hands out
    expect(pool.made).toBe(1);
    pool.drain();
  });

  it('never hands out one buffer twice, even when released twice', () => {
    const pool = new CipherPool({ keep: 4, idleMs: 60_000 });
    const a = pool.take(512);
    a.release?.();
    a.release?.();
    expect(pool.free).toBe(1);
    const b = pool.take(512);
    const c = pool.take(512);
    expect(c.buffer.buffer).not.toBe(b.buffer.buffer);
    expect(pool.made).toBe(2);
    pool.drain();
  });

  it('keeps at most `keep` free buffers', () => {
    const pool = new CipherPool({ keep: 2, idleMs: 60_000 });
    const taken = [pool.take(512), pool.take(512), pool.take(512)];
    for (const t of taken) t.release?.();
    expect(pool.free).toBe(2);
    pool.drain();
    expect(pool.free).toBe(0);
  });

  it('gives longer requests a buffer of their own, outside the pool', () => {
    const pool = new CipherPool({ keep: 2, idleMs: 60_000 });
    const big = pool.take(MAX_WRITE_BYTES + 512);
    expect(big.buffer.length).toBe(MAX_WRITE_BYTES + 512);
    expect(big.release).toBeUndefined();
    expect(pool.made).toBe(0);
  });

  it('drops its free buffers after idleMs without use, and not before', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const pool = new CipherPool({ keep: 4, idleMs: 1000 });
    const a = pool.take(512);
    a.release?.();
    // Used again every 600 ms: never idle for 1000 ms, so the buffer stays.
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(600);
      expect(pool.free).toBe(1);
      pool.take(512).release?.();
    }
    expect(pool.made).toBe(1);
    vi.advanceTimersByTime(999);
    expect(pool.free).toBe(1);
    vi.advanceTimersByTime(2);
    expect(pool.free).toBe(0);
    // A buffer still out when the pool went idle is kept when it comes back, and the clock starts again.
    const out = pool.take(512);
    expect(pool.made).toBe(2);
    vi.advanceTimersByTime(5000);
    out.release?.();
    expect(pool.free).toBe(1);
    vi.advanceTimersByTime(1001);
    expect(pool.free).toBe(0);
  });

  it('refuses bad lengths and options with a RangeError', () => {
    const pool = new CipherPool({ keep: 1, idleMs: 10 });
    for (const bad of [-1, 1.5, Number.NaN, '512' as unknown as number]) expect(() => pool.take(bad)).toThrow(RangeError);
    expect(() => new CipherPool({ keep: -1, idleMs: 10 })).toThrow(/keep must be/);
    expect(() => new CipherPool({ keep: 1, idleMs: 0 })).toThrow(/idleMs must be/);
  });

  it('the shared pool hands out aligned buffers and keeps them when given back', () => {
    const t = sharedCipherPool.take(512);
    expect(aligned(t.buffer)).toBe(true);
    t.release?.();
    expect(sharedCipherPool.free).toBeGreaterThan(0);
  });
});

describe('sealExtents and the shared pool', () => {
  it('a second upload in the process reuses the first one\'s buffers, and its ciphertext is still right', async () => {
    const f = await fixture();
    try {
      await f.accounts.createAccount('acct', { region: 'westus' });
      const pages = MAX_WRITE_BYTES / 512;
      const source = [0, 1, 2, 3].map((i) => ({ offset: i * MAX_WRITE_BYTES, data: pattern(pages, i * pages, 7 + i) }));
      const seal = async (): Promise<{ extents: UploadExtent[]; copies: Buffer[] }> => {
        const extents: UploadExtent[] = [];
        const copies: Buffer[] = [];
        for await (const e of sealExtents(f.blobs, 'acct', source)) {
          extents.push(e);
          copies.push(Buffer.from(e.data));
          e.release?.(); // as the upload does once the Put Page is settled
        }
        return { extents, copies };
      };
      const first = await seal();
      const made = sharedCipherPool.made;
      const second = await seal();
      expect(sharedCipherPool.made).toBe(made); // no new buffer for the second pass
      const firstMemory = new Set(first.extents.map((e) => e.data.buffer));
      expect(second.extents.every((e) => firstMemory.has(e.data.buffer))).toBe(true); // it wrote into the first pass's memory
      // Same key and sectors: the same ciphertext, written afresh into reused buffers.
      expect(second.copies.map((c, i) => c.equals(first.copies[i] as Buffer))).toEqual([true, true, true, true]);
      const { cipher } = await f.blobs.gate('acct');
      for (const [i, e] of second.extents.entries()) {
        expect(aligned(e.data)).toBe(true);
        expect(Buffer.from(cipher.decrypt(second.copies[i] as Buffer, e.offset / 512)).equals(source[i]?.data as Buffer)).toBe(true);
      }
    } finally {
      await f.close();
    }
  });
});

