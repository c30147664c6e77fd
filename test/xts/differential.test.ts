/**
 * Differential tests against node:crypto `aes-256-xts` (OpenSSL) called once per sector: random keys, batch
 * lengths of 1 to 2,000 sectors, first sectors below and above 2^32 and near 2^64, both sector sizes, in place
 * and out of place, sync and async, on every implementation that runs here.
 */
import { randomBytes } from 'node:crypto';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { availableImplementations, MAX_SECTOR, XtsCipher } from '../../lib/index.js';
import { referenceXts } from './reference.js';

function randomKey(): Buffer {
  for (;;) {
    const key = randomBytes(64);
    if (!key.subarray(0, 32).equals(key.subarray(32))) return key;
  }
}

const sectorNumber = (sectors: number): fc.Arbitrary<bigint> =>
  fc.oneof(
    fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }),
    fc.bigInt({ min: 1n << 32n, max: 1n << 62n }),
    fc.bigInt({ min: 0n, max: 4096n }).map((back) => MAX_SECTOR - BigInt(sectors) + 1n - back),
  ).filter((s) => s >= 0n && s + BigInt(sectors) - 1n <= MAX_SECTOR);

const caseArb = fc.record({
  sectorSize: fc.constantFrom(512 as const, 4096 as const),
  sectors: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 2000 })),
  inPlace: fc.boolean(),
  async: fc.boolean(),
}).chain((c) => sectorNumber(c.sectors).map((first) => ({ ...c, first })));

describe.each(availableImplementations())('XTS matches node:crypto per sector (%s)', (impl) => {
  it('random keys, lengths, sector numbers, modes', async () => {
    await fc.assert(fc.asyncProperty(caseArb, async ({ sectorSize, sectors, inPlace, async, first }) => {
      // Keep 4096-byte cases to a few MiB.
      const count = sectorSize === 4096 ? Math.min(sectors, 512) : sectors;
      const key = randomKey();
      const plain = randomBytes(count * sectorSize);
      const cipher = new XtsCipher(key, { impl, sectorSize });
      const firstArg = first <= BigInt(Number.MAX_SAFE_INTEGER) && (count & 1) === 0 ? Number(first) : first;
      const expected = referenceXts(true, key, plain, first, sectorSize);
      const work = Buffer.from(plain);
      const enc = async
        ? await cipher.encryptAsync(work, firstArg, inPlace ? work : undefined)
        : cipher.encrypt(work, firstArg, inPlace ? work : undefined);
      expect(Buffer.from(enc).equals(expected)).toBe(true);
      const dec = async
        ? await cipher.decryptAsync(enc, firstArg, inPlace ? enc : undefined)
        : cipher.decrypt(enc, firstArg, inPlace ? enc : undefined);
      expect(Buffer.from(dec).equals(plain)).toBe(true);
      expect(referenceXts(false, key, expected, first, sectorSize).equals(plain)).toBe(true);
      cipher.dispose();
    }), { numRuns: 40 });
  });

  it('large async inputs split across threads give the same bytes as one sync call', async () => {
    const key = randomKey();
    const cipher = new XtsCipher(key, { impl });
    const plain = randomBytes(8 * 1024 * 1024 + 512 * 3); // odd sector count: uneven chunks
    const first = (1n << 40n) + 7n;
    const sync = cipher.encrypt(plain, first);
    const viaPool = await cipher.encryptAsync(plain, first);
    expect(Buffer.from(viaPool).equals(Buffer.from(sync))).toBe(true);
    // Spot-check a sector in the middle of a chunk against the oracle.
    const k = 9000;
    const one = referenceXts(true, key, plain.subarray(k * 512, (k + 1) * 512), first + BigInt(k), 512);
    expect(Buffer.from(sync.subarray(k * 512, (k + 1) * 512)).equals(one)).toBe(true);
    const back = await cipher.decryptAsync(viaPool, first, viaPool);
    expect(Buffer.from(back).equals(plain)).toBe(true);
    cipher.dispose();
  });

  it('works on views at odd offsets inside a larger buffer', () => {
    const key = randomKey();
    const cipher = new XtsCipher(key, { impl });
    const backing = randomBytes(512 * 5 + 3);
    const view = backing.subarray(3, 3 + 512 * 5);
    const expected = referenceXts(true, key, view, 77n, 512);
    cipher.encrypt(view, 77, view);
    expect(Buffer.from(view).equals(expected)).toBe(true);
    cipher.dispose();
  });
});

it('every implementation agrees with every other on the same input', () => {
  const key = randomKey();
  const plain = randomBytes(4096 * 9);
  const outputs = availableImplementations().map((impl) => {
    const c = new XtsCipher(key, { impl, sectorSize: 4096 });
    const out = Buffer.from(c.encrypt(plain, 123456789012n));
    c.dispose();
    return out;
  });
  for (const out of outputs) expect(out.equals(outputs[0] as Buffer)).toBe(true);
});
