/** Negative tests: every documented error of the XTS API, with its type and code. */
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';

import { describe, expect, it } from 'vitest';

import { availableImplementations, MAX_SECTOR, VdcryptError, XTS_IMPLEMENTATIONS, XtsCipher, XtsError }
  from '../../lib/index.js';

const key = (): Buffer => {
  const k = randomBytes(64);
  k[0] = (k[32] ?? 0) ^ 1; // halves differ
  return k;
};

function expectCode(fn: () => unknown, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(XtsError);
  expect(caught).toBeInstanceOf(VdcryptError);
  expect((caught as VdcryptError).code).toBe(code);
}

describe('XtsCipher construction', () => {
  it('refuses a key that is not bytes, or not 64 bytes', () => {
    expect(() => new XtsCipher('k'.repeat(64) as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => new XtsCipher(new Array(64).fill(1) as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => new XtsCipher(randomBytes(32))).toThrow(RangeError);
    expect(() => new XtsCipher(randomBytes(65))).toThrow(/64 bytes/);
  });

  it('refuses key1 == key2, for every implementation', () => {
    const half = randomBytes(32);
    for (const impl of availableImplementations()) {
      expectCode(() => new XtsCipher(Buffer.concat([half, half]), { impl }), 'XtsKeyHalvesEqual');
    }
  });

  it('refuses bad sector sizes and implementation names', () => {
    expect(() => new XtsCipher(key(), { sectorSize: 1024 as 512 })).toThrow(RangeError);
    expect(() => new XtsCipher(key(), { sectorSize: '512' as unknown as 512 })).toThrow(TypeError);
    expect(() => new XtsCipher(key(), { impl: 'avx9' as 'vaes' })).toThrow(RangeError);
    expect(() => new XtsCipher(key(), { impl: 7 as unknown as 'vaes' })).toThrow(TypeError);
    expect(() => new XtsCipher(key(), null as unknown as object)).toThrow(TypeError);
  });

  it('refuses an implementation the CPU lacks instead of falling back', () => {
    const missing = XTS_IMPLEMENTATIONS.filter((i) => !availableImplementations().includes(i));
    for (const impl of missing) expectCode(() => new XtsCipher(key(), { impl }), 'ImplementationUnavailable');
    // Every name is either available or refused: nothing silently falls back.
    for (const impl of availableImplementations()) expect(new XtsCipher(key(), { impl }).implementation).toBe(impl);
  });

  it('never shows key bytes in inspect or JSON', () => {
    const k = key();
    const c = new XtsCipher(k);
    const shown = inspect(c, { showHidden: true, depth: 5 }) + JSON.stringify(c);
    expect(shown).toContain(c.implementation);
    expect(shown).not.toContain(k.toString('hex').slice(0, 16));
    expect(shown).not.toMatch(/\b\d{1,3}, \d{1,3}, \d{1,3}/); // no byte arrays
  });
});

describe.each(availableImplementations())('XtsCipher calls (%s)', (impl) => {
  const c = new XtsCipher(key(), { impl });

  it('refuses src and dst of the wrong type or length', () => {
    expect(() => c.encrypt('x'.repeat(512) as unknown as Uint8Array, 0)).toThrow(TypeError);
    expect(() => c.encrypt(new Uint16Array(256) as unknown as Uint8Array, 0)).toThrow(TypeError);
    expect(() => c.encrypt(Buffer.alloc(511), 0)).toThrow(RangeError);
    expect(() => c.decrypt(Buffer.alloc(513), 0)).toThrow(RangeError);
    expect(() => c.encrypt(Buffer.alloc(512), 0, Buffer.alloc(1024))).toThrow(RangeError);
    expect(() => c.encrypt(Buffer.alloc(512), 0, {} as Uint8Array)).toThrow(TypeError);
  });

  it('refuses bad sector numbers', () => {
    const one = Buffer.alloc(512);
    expect(() => c.encrypt(one, -1)).toThrow(RangeError);
    expect(() => c.encrypt(one, -1n)).toThrow(RangeError);
    expect(() => c.encrypt(one, 1.5)).toThrow(RangeError);
    expect(() => c.encrypt(one, Number.MAX_SAFE_INTEGER + 1)).toThrow(RangeError);
    expect(() => c.encrypt(one, '3' as unknown as number)).toThrow(TypeError);
    expect(() => c.encrypt(one, MAX_SECTOR + 1n)).toThrow(RangeError);
    // The whole run must fit: two sectors starting at 2^64 - 1 pass the end.
    expect(() => c.encrypt(Buffer.alloc(1024), MAX_SECTOR)).toThrow(/2\^64 - 1/);
    expect(() => c.encrypt(Buffer.alloc(1024), MAX_SECTOR - 1n)).not.toThrow();
    expect(() => c.encrypt(one, MAX_SECTOR)).not.toThrow();
  });

  it('works in place and refuses partial overlap', async () => {
    const buf = randomBytes(4096);
    const whole = buf.subarray(0, 2048);
    expect(() => c.encrypt(whole, 0, buf.subarray(512, 2560))).toThrow(/overlap/);
    await expect(c.encryptAsync(whole, 0, buf.subarray(512, 2560))).rejects.toThrow(RangeError);
    expect(() => c.encrypt(whole, 0, buf.subarray(2048, 4096))).not.toThrow(); // adjacent, disjoint
    const copy = Buffer.from(whole);
    expect(c.encrypt(whole, 5, whole)).toBe(whole);
    expect(Buffer.from(c.decrypt(whole, 5, whole)).equals(copy)).toBe(true);
  });

  it('refuses bad data units and tweaks', () => {
    expect(() => c.encryptDataUnit(Buffer.alloc(15), Buffer.alloc(16))).toThrow(RangeError);
    expect(() => c.encryptDataUnit(Buffer.alloc(17), Buffer.alloc(8))).toThrow(RangeError);
    expect(() => c.decryptDataUnit(Buffer.alloc(17), 'tweak' as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('a disposed key throws KeyDisposed everywhere, also for async calls', async () => {
    const d = new XtsCipher(key(), { impl });
    d.dispose();
    d.dispose(); // twice is harmless
    expect(d.disposed).toBe(true);
    expectCode(() => d.encrypt(Buffer.alloc(512), 0), 'KeyDisposed');
    expectCode(() => d.decrypt(Buffer.alloc(512), 0), 'KeyDisposed');
    expectCode(() => d.encryptDataUnit(Buffer.alloc(16), Buffer.alloc(16)), 'KeyDisposed');
    await expect(d.encryptAsync(Buffer.alloc(512), 0)).rejects.toMatchObject({ code: 'KeyDisposed' });
    await expect(d.decryptAsync(Buffer.alloc(512), 0)).rejects.toMatchObject({ code: 'KeyDisposed' });
  });

  it('disposing while an async call runs does not disturb that call', async () => {
    const k = key();
    const d = new XtsCipher(k, { impl });
    const ref = new XtsCipher(k, { impl });
    const data = randomBytes(4 * 1024 * 1024);
    const pending = d.encryptAsync(data, 9);
    d.dispose();
    const out = await pending;
    expect(Buffer.from(out).equals(Buffer.from(ref.encrypt(data, 9)))).toBe(true);
  });
});

describe('native binding checks (release builds keep them)', () => {
  it('refuses anything but a live key handle, and bad buffers, without crashing', async () => {
    const { native } = await import('../../lib/xts/native.js');
    const buf = Buffer.alloc(512);
    for (const bad of [{}, null, 5, 'key', native.createKey]) {
      expect(() => native.crypt(bad as never, true, buf, buf, 512, 0)).toThrow(TypeError);
    }
    const handle = native.createKey(key(), 'auto');
    expect(() => native.crypt(handle, true, buf, Buffer.alloc(1024), 512, 0)).toThrow(RangeError);
    expect(() => native.crypt(handle, true, buf, buf.subarray(0, 256) as Buffer, 512, 0)).toThrow(RangeError);
    expect(() => native.crypt(handle, true, buf, buf, 1024, 0)).toThrow(RangeError);
    expect(() => native.crypt(handle, true, buf, buf, 512, -1)).toThrow(RangeError);
    expect(() => native.crypt(handle, true, buf, buf, 512, 2n ** 64n)).toThrow(RangeError);
    expect(() => native.createKey(Buffer.alloc(64, 7), 'auto')).toThrow(/differ/);
    native.disposeKey(handle);
    expect(() => native.crypt(handle, true, buf, buf, 512, 0)).toThrow(expect.objectContaining({ code: 'KeyDisposed' }));
  });
});
