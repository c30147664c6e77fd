/**
 * crc64 (lib/xts/checksum.ts, native/crc64*.cc): Azure Storage's CRC64 (CRC-64/NVME), checked against the
 * Azure SDK's own StorageCRC64Calculator on every length class the native code distinguishes: below the
 * folding thresholds (tables only), whole 128- and 256-byte folding blocks, and folding plus narrower tails;
 * views at odd offsets of larger buffers; and each native code path (tables, PCLMULQDQ, VPCLMULQDQ-512) on its
 * own, where this CPU runs it.
 */
import { randomBytes } from 'node:crypto';

import { StorageCRC64Calculator } from '@azure/storage-common';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';

import { crc64OnPath } from '../../lib/xts/checksum.js';
import { crc64 } from '../../lib/xts/index.js';

let azure: (data: Uint8Array) => string;
beforeAll(async () => {
  await StorageCRC64Calculator.init();
  azure = (data) => Buffer.from(new StorageCRC64Calculator().final(data, data.length)).toString('hex');
});

describe('crc64', () => {
  it('has the CRC-64/NVME check value and Azure byte order', () => {
    // Check value of "123456789": 0xAE8B14860A799888 (CRC-64/NVME), sent little-endian.
    expect(crc64(Buffer.from('123456789')).toString('hex')).toBe('8898790a86148bae');
    expect(crc64(new Uint8Array(0)).toString('hex')).toBe('0000000000000000');
    expect(crc64(Buffer.from('123456789')).length).toBe(8);
  });

  it('equals the Azure SDK at every length class, at odd offsets', () => {
    const pool = randomBytes(5 * 1024 * 1024 + 64);
    for (const n of [1, 7, 8, 9, 127, 128, 255, 256, 257, 383, 384, 385, 511, 512, 513, 640, 767, 768, 1000, 4096,
      65536 + 13, 4 * 1024 * 1024, 5 * 1024 * 1024 + 3]) {
      for (const at of [0, 1, 13, 61]) {
        const view = pool.subarray(at, at + n);
        expect(crc64(view).toString('hex')).toBe(azure(view));
      }
    }
  });

  it('equals the Azure SDK on random data and lengths (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(15), (bytes, at) => {
      const padded = new Uint8Array(bytes.length + at);
      padded.set(bytes, at);
      const view = padded.subarray(at);
      return crc64(view).toString('hex') === azure(view);
    }), { numRuns: 300 });
  });

  it('every native path this CPU runs equals the Azure SDK, and so does auto; a bad path is a typed error', () => {
    const pool = randomBytes(70_000);
    const ran: string[] = [];
    for (const path of ['tables', 'pclmul', 'vpclmul512'] as const) {
      if (crc64OnPath(pool.subarray(0, 1), path) === null) continue;
      ran.push(path);
      for (const n of [0, 1, 100, 255, 256, 511, 512, 767, 768, 1024 + 128 + 16 + 3, 65536, 69_999]) {
        const view = pool.subarray(1, 1 + n);
        expect(crc64OnPath(view, path)?.toString('hex'), `${path} on ${n} bytes`).toBe(azure(view));
      }
    }
    expect(ran).toContain('tables');
    expect(crc64OnPath(pool, 'auto')?.toString('hex')).toBe(azure(pool));
    expect(() => crc64OnPath(pool, 'sse9' as never)).toThrow(RangeError);
    expect(() => crc64OnPath(pool, 7 as never)).toThrow(TypeError);
  });

  it('catches single-bit changes, and refuses what is not a Uint8Array', () => {
    const data = randomBytes(8192);
    const before = crc64(data).toString('hex');
    for (const bit of [0, 7, 8 * 128, 8 * 4000 + 3, 8 * 8191 + 7]) {
      const flipped = Buffer.from(data);
      flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
      expect(crc64(flipped).toString('hex')).not.toBe(before);
    }
    expect(() => crc64('abc' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => crc64(new Uint32Array(4) as unknown as Uint8Array)).toThrow(TypeError);
  });
});
