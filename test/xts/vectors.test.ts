/**
 * Known-answer tests for every XTS implementation that runs on this machine. Sources (see
 * test/fixtures/xts/SOURCES.md):
 * - IEEE Std 1619-2007 Annex B, vectors 10-14 (AES-256, 512-byte data units): through the sector API;
 * - NIST CAVP XTSGenAES256, both tweak formats, whole-byte data units only (256 and 384 bits);
 * - C2SP Wycheproof aes_xts_test.json, AES-256 groups (lengths 16-136 bytes: ciphertext stealing).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { availableImplementations, sectorTweak, XtsCipher } from '../../lib/index.js';
import { hex } from './reference.js';

const fixture = (name: string): string =>
  readFileSync(fileURLToPath(new URL(`../fixtures/xts/${name}`, import.meta.url)), 'utf8');

interface IeeeVector {
  vector: number;
  key1: string;
  key2: string;
  dataUnitSeqNumber: string;
  dataUnitLength: number;
  plaintext: string;
  ciphertext: string;
}

interface CavpCase {
  direction: 'ENCRYPT' | 'DECRYPT';
  count: number;
  bits: number;
  key: string;
  tweak: Uint8Array;
  pt: string;
  ct: string;
}

function parseCavp(text: string, tweakField: 'DataUnitSeqNumber' | 'i'): CavpCase[] {
  const cases: CavpCase[] = [];
  let direction: CavpCase['direction'] = 'ENCRYPT';
  let current: Record<string, string> = {};
  const flush = (): void => {
    if (current['COUNT'] === undefined) return;
    const tweakValue = current[tweakField] ?? '';
    cases.push({
      direction,
      count: Number(current['COUNT']),
      bits: Number(current['DataUnitLen']),
      key: current['Key'] ?? '',
      tweak: tweakField === 'i' ? hex(tweakValue) : sectorTweak(BigInt(tweakValue)),
      pt: current['PT'] ?? '',
      ct: current['CT'] ?? '',
    });
    current = {};
  };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '[ENCRYPT]' || line === '[DECRYPT]') {
      flush();
      direction = line === '[ENCRYPT]' ? 'ENCRYPT' : 'DECRYPT';
      continue;
    }
    const m = /^(\w+) = (.*)$/.exec(line);
    if (m === null) continue;
    if (m[1] === 'COUNT') flush();
    current[m[1] ?? ''] = m[2] ?? '';
  }
  flush();
  return cases;
}

const impls = availableImplementations();

describe.each(impls)('XTS known answers (%s)', (impl) => {
  it('IEEE 1619 Annex B vectors 10-14 through the sector API', () => {
    const { vectors } = JSON.parse(fixture('ieee1619-aes256-512.json')) as { vectors: IeeeVector[] };
    expect(vectors.map((v) => v.vector)).toEqual([10, 11, 12, 13, 14]);
    for (const v of vectors) {
      const key = Buffer.concat([hex(v.key1), hex(v.key2)]);
      const cipher = new XtsCipher(key, { impl, sectorSize: 512 });
      const sector = BigInt(v.dataUnitSeqNumber);
      expect(v.dataUnitLength).toBe(512);
      expect(Buffer.from(cipher.encrypt(hex(v.plaintext), sector)).toString('hex')).toBe(v.ciphertext);
      expect(Buffer.from(cipher.decrypt(hex(v.ciphertext), sector)).toString('hex')).toBe(v.plaintext);
      // The same vector through the general data-unit function.
      expect(Buffer.from(cipher.encryptDataUnit(hex(v.plaintext), sectorTweak(sector))).toString('hex'))
        .toBe(v.ciphertext);
      cipher.dispose();
    }
  });

  for (const [file, field] of [
    ['nist-cavp-XTSGenAES256-dataunitseqno.rsp', 'DataUnitSeqNumber'],
    ['nist-cavp-XTSGenAES256-hextweak.rsp', 'i'],
  ] as const) {
    it(`NIST CAVP ${field === 'i' ? 'hex-tweak' : 'sequence-number'} whole-byte cases`, () => {
      const all = parseCavp(fixture(file), field);
      expect(all).toHaveLength(1000);
      const whole = all.filter((c) => c.bits % 8 === 0);
      expect(whole).toHaveLength(600); // 256- and 384-bit units; the 140/250-bit ones are for bit-level code
      for (const c of whole) {
        const cipher = new XtsCipher(hex(c.key), { impl });
        const [input, expected] = c.direction === 'ENCRYPT' ? [c.pt, c.ct] : [c.ct, c.pt];
        const out = c.direction === 'ENCRYPT'
          ? cipher.encryptDataUnit(hex(input), c.tweak)
          : cipher.decryptDataUnit(hex(input), c.tweak);
        expect(Buffer.from(out).toString('hex'), `${c.direction} COUNT ${c.count}`).toBe(expected);
        cipher.dispose();
      }
    });
  }

  it('Wycheproof AES-256 cases, including ciphertext stealing', () => {
    const doc = JSON.parse(fixture('wycheproof-aes_xts_test.json')) as {
      testGroups: { keySize: number; tests: { tcId: number; key: string; iv: string; msg: string; ct: string; result: string }[] }[];
    };
    const cases = doc.testGroups.filter((g) => g.keySize === 512).flatMap((g) => g.tests);
    expect(cases).toHaveLength(41);
    let stealing = 0;
    for (const t of cases) {
      const tweak = Buffer.alloc(16);
      hex(t.iv).copy(tweak); // shorter IVs are zero-padded on the right
      const cipher = new XtsCipher(hex(t.key), { impl });
      const msg = hex(t.msg);
      if (msg.length % 16 !== 0) stealing++;
      expect(t.result).toBe('valid');
      expect(Buffer.from(cipher.encryptDataUnit(msg, tweak)).toString('hex'), `tcId ${t.tcId}`).toBe(t.ct);
      expect(Buffer.from(cipher.decryptDataUnit(hex(t.ct), tweak)).toString('hex'), `tcId ${t.tcId}`).toBe(t.msg);
      cipher.dispose();
    }
    expect(stealing).toBeGreaterThan(10);
  });
});

it('runs at least the AES-NI-free portable path and reports the selected one', () => {
  expect(impls).toContain('portable');
  const cipher = new XtsCipher(Buffer.alloc(64).fill(1, 32));
  expect(cipher.implementation).toBe(impls[0]);
  cipher.dispose();
});
