/**
 * The upload's one-pass extent work (native sealAsync through nonZeroRunsAsync and XtsCipher.encryptRunsAsync):
 * runs of pages that are not all zero, each at most maxRunPages long, their ciphertext, and the CRC64 of each
 * run's output. Oracles: a page-by-page scan written here, XtsCipher.encrypt of each run, and crc64 (itself
 * checked against the Azure SDK in checksum.test.ts).
 */
import { createCipheriv, randomBytes } from 'node:crypto';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { alignedBuffer, availableImplementations, crc64, nonZeroRunsAsync, XtsCipher } from '../../lib/xts/index.js';

const PAGE = 512;

/** The expected runs, by a plain page-by-page scan. */
function expectedRuns(data: Uint8Array, maxRun: number): { start: number; end: number }[] {
  const pages = data.length / PAGE;
  const zero = (p: number) => data.subarray(p * PAGE, (p + 1) * PAGE).every((b) => b === 0);
  const runs: { start: number; end: number }[] = [];
  let p = 0;
  while (p < pages) {
    if (zero(p)) { p++; continue; }
    const start = p;
    while (p < pages && p - start < maxRun && !zero(p)) p++;
    runs.push({ start, end: p });
  }
  return runs;
}

/** Pages from a pattern: 'z' all zero, 'd' random, 't' zero but for its last byte, 'h' zero but for its first. */
function pagesOf(pattern: string): Buffer {
  const out = Buffer.alloc(pattern.length * PAGE);
  [...pattern].forEach((c, i) => {
    const page = out.subarray(i * PAGE, (i + 1) * PAGE);
    if (c === 'd') randomBytes(PAGE).copy(page);
    if (c === 't') page[PAGE - 1] = 1;
    if (c === 'h') page[0] = 1;
  });
  return out;
}

const key = randomBytes(64);

describe('nonZeroRunsAsync and encryptRunsAsync', () => {
  it('find the non-zero runs, split at maxRunPages, with the CRC64 of each output', async () => {
    const cipher = new XtsCipher(key);
    for (const [pattern, maxRun] of [['zzdddzztzhdz', 8192], ['dddddddddd', 3], ['zzzz', 4], ['', 1], ['t', 1], ['dzdzd', 1]] as const) {
      const data = pagesOf(pattern);
      const first = 1000;
      const want = expectedRuns(data, maxRun);
      const plain = await nonZeroRunsAsync(data, maxRun);
      expect(plain.map(({ start, end }) => ({ start, end }))).toEqual(want);
      for (const r of plain) expect(r.crc64.equals(crc64(data.subarray(r.start * PAGE, r.end * PAGE)))).toBe(true);

      const dst = Buffer.alloc(data.length, 0xee);
      const sealed = await cipher.encryptRunsAsync(data, first, dst, maxRun);
      expect(sealed.map(({ start, end }) => ({ start, end }))).toEqual(want);
      for (const r of sealed) {
        const expected = cipher.encrypt(data.subarray(r.start * PAGE, r.end * PAGE), first + r.start);
        const got = dst.subarray(r.start * PAGE, r.end * PAGE);
        expect(Buffer.from(got).equals(Buffer.from(expected))).toBe(true);
        expect(r.crc64.equals(crc64(got))).toBe(true);
      }
      // Zero pages are left out: their bytes in dst are untouched.
      [...pattern].forEach((c, i) => {
        if (c === 'z') expect(dst.subarray(i * PAGE, (i + 1) * PAGE).every((b) => b === 0xee)).toBe(true);
      });
    }
  });

  it('agree with the oracles on random layouts, run limits, odd offsets and 4 MiB extents (property)', async () => {
    const cipher = new XtsCipher(key);
    await fc.assert(fc.asyncProperty(
      fc.array(fc.constantFrom('z', 'd', 't', 'h'), { maxLength: 200 }), fc.integer({ min: 1, max: 100 }), fc.nat(7),
      async (pattern, maxRun, shift) => {
        const backing = Buffer.alloc(pattern.length * PAGE + shift);
        const data = backing.subarray(shift);
        pagesOf(pattern.join('')).copy(data);
        const want = expectedRuns(data, maxRun);
        const runs = await nonZeroRunsAsync(data, maxRun);
        expect(runs.map(({ start, end }) => ({ start, end }))).toEqual(want);
        const dst = Buffer.alloc(data.length);
        const sealed = await cipher.encryptRunsAsync(data, 77, dst, maxRun);
        expect(sealed.map(({ start, end }) => ({ start, end }))).toEqual(want);
        for (const r of sealed) {
          const expected = cipher.encrypt(data.subarray(r.start * PAGE, r.end * PAGE), 77 + r.start);
          expect(Buffer.from(expected).equals(dst.subarray(r.start * PAGE, r.end * PAGE))).toBe(true);
          expect(r.crc64.equals(crc64(expected))).toBe(true);
        }
      }), { numRuns: 60 });
    const big = randomBytes(4 * 1024 * 1024);
    big.fill(0, 512 * 100, 512 * 300);
    const dst = Buffer.alloc(big.length);
    const sealed = await cipher.encryptRunsAsync(big, 0, dst, 8192);
    expect(sealed.map(({ start, end }) => [start, end])).toEqual([[0, 100], [300, 8192]]);
    expect(sealed[1]?.crc64.equals(crc64(cipher.encrypt(big.subarray(300 * PAGE), 300)))).toBe(true);
  });

  it('agree with node:crypto on every implementation and destination alignment (one pass with non-temporal stores on a 64-byte aligned one)', async () => {
    // Runs longer than the native pass's 32-page blocks, cut at 50 pages, starting inside a block: the CRC64 is
    // carried across blocks and restarted per run.
    const data = pagesOf(`dd${'d'.repeat(40)}zz${'d'.repeat(70)}z${'d'.repeat(20)}t`);
    const first = 3_000_000_000;
    const want = expectedRuns(data, 50);
    expect(want.length).toBeGreaterThan(3);
    const oracle = (r: { start: number; end: number }) => {
      const out: Buffer[] = [];
      for (let p = r.start; p < r.end; p++) {
        const tweak = Buffer.alloc(16);
        tweak.writeBigUInt64LE(BigInt(first + p));
        out.push(createCipheriv('aes-256-xts', key, tweak).update(data.subarray(p * PAGE, (p + 1) * PAGE)));
      }
      return Buffer.concat(out);
    };
    const backing = alignedBuffer(data.length + 128);
    for (const impl of availableImplementations()) {
      const cipher = new XtsCipher(key, { impl });
      for (const shift of [0, 64, 16, 8, 1]) {
        const dst = backing.subarray(shift, shift + data.length).fill(0xee);
        const sealed = await cipher.encryptRunsAsync(data, first, dst, 50);
        expect(sealed.map(({ start, end }) => ({ start, end })), `${impl} +${shift}`).toEqual(want);
        for (const r of sealed) {
          const expected = oracle(r);
          expect(dst.subarray(r.start * PAGE, r.end * PAGE).equals(expected), `${impl} +${shift} pages ${r.start}..${r.end}`).toBe(true);
          expect(r.crc64.equals(crc64(expected)), `${impl} +${shift} crc64 of ${r.start}..${r.end}`).toBe(true);
        }
        for (let p = 0; p < data.length / PAGE; p++) {
          if (data.subarray(p * PAGE, (p + 1) * PAGE).every((b) => b === 0)) {
            expect(dst.subarray(p * PAGE, (p + 1) * PAGE).every((b) => b === 0xee)).toBe(true);
          }
        }
      }
      cipher.dispose();
    }
  });

  it('reject bad arguments with typed errors, and a disposed key', async () => {
    const cipher = new XtsCipher(key);
    await expect(nonZeroRunsAsync(Buffer.alloc(100), 8)).rejects.toThrow(RangeError);
    await expect(nonZeroRunsAsync('x' as unknown as Uint8Array, 8)).rejects.toThrow(TypeError);
    await expect(nonZeroRunsAsync(Buffer.alloc(512), 0)).rejects.toThrow(RangeError);
    await expect(nonZeroRunsAsync(Buffer.alloc(512), 1.5)).rejects.toThrow(RangeError);
    await expect(cipher.encryptRunsAsync(Buffer.alloc(1024), 0, Buffer.alloc(512), 8)).rejects.toThrow(RangeError);
    const shared = Buffer.alloc(2048);
    await expect(cipher.encryptRunsAsync(shared.subarray(0, 1024), 0, shared.subarray(512, 1536), 8)).rejects.toThrow(RangeError);
    await expect(cipher.encryptRunsAsync(Buffer.alloc(512), -1, Buffer.alloc(512), 8)).rejects.toThrow(RangeError);
    await expect(new XtsCipher(key, { sectorSize: 4096 }).encryptRunsAsync(Buffer.alloc(4096), 0, Buffer.alloc(4096), 8))
      .rejects.toThrow(RangeError);
    cipher.dispose();
    await expect(cipher.encryptRunsAsync(Buffer.alloc(512), 0, Buffer.alloc(512), 8)).rejects.toMatchObject({ code: 'KeyDisposed' });
  });
});
