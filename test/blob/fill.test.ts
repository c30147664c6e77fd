/**
 * PageBlobService.fillPages: the bulk path of imports. Encryption is decided per extent as putPages decides
 * it (setting and key gate at that moment, base-image mode plaintext); onBatch reports the durable prefix;
 * snapshots are refused; the fill is one mutation in the blob's order. Run on both stores and on a store
 * without fillPages, where the blob layer falls back to writePages calls.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { fillByWrites, PageBlobService } from '../../lib/blob/index.js';
import type { BlobRef, FillExtent, FillProgress, PageStore } from '../../lib/store/index.js';
import { expectCode } from '../keys/helpers.js';
import { type Fixture, fixture, PAGE, pattern, useCustomerKey } from './helpers.js';

const MiB = 1024 * 1024;
const ref: BlobRef = { account: 'acct1', container: 'disks', blob: 'disk' };

/** The same store with fillPages hidden, as a store that lacks it (an older or remote backend). */
function withoutFill(store: PageStore): PageStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'fillPages') return undefined;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Extents of `pages` pages each at the given page numbers, content pattern(pages, first, seed = index + 1). */
async function* extents(at: number[], pages: number, before?: (i: number) => void | Promise<void>):
  AsyncGenerator<{ offset: number; data: Uint8Array }> {
  for (const [i, first] of at.entries()) {
    await before?.(i);
    yield { offset: first * PAGE, data: pattern(pages, first, i + 1) };
  }
}

async function tagsOf(f: Fixture, pages: number): Promise<number[]> {
  const { ranges } = await f.store.readPages(ref, 0, pages * PAGE);
  return Array.from({ length: pages }, (_, p) => ranges.find((r) => r.start <= p * PAGE && p * PAGE <= r.end)?.tag ?? -1);
}

for (const kind of ['memory', 'local', 'fallback'] as const) {
  describe(`fillPages (${kind})`, () => {
    let f: Fixture;
    beforeEach(async () => {
      f = await fixture(kind === 'local' ? 'local' : 'memory');
      if (kind === 'fallback') f.blobs = new PageBlobService(withoutFill(f.store), f.accounts);
      await f.accounts.createAccount('acct1', { region: 'westus' });
      await f.blobs.createContainer('acct1', 'disks');
      await f.blobs.createBlob(ref, 4 * MiB);
    });
    afterEach(async () => f.close());

    it('encrypts each extent under the current generation; reads decrypt; onBatch reports the durable prefix', async () => {
      const seen: FillProgress[] = [];
      const at = [0, 16, 32, 64, 80];
      const result = await f.blobs.fillPages(ref, extents(at, 8), { batchBytes: 16 * PAGE, onBatch: (p) => { seen.push(p); } });
      expect(result.bytesWritten).toBe(40 * PAGE);
      expect(result.batches).toBe(seen.length);
      expect(seen.length).toBeGreaterThanOrEqual(2);
      expect(seen.at(-1)).toEqual({ durableBytes: 40 * PAGE, lastOffset: 88 * PAGE });
      const tags = await tagsOf(f, 96);
      for (const [i, first] of at.entries()) {
        expect(tags.slice(first, first + 8)).toEqual(Array(8).fill(1));
        const stored = (await f.store.readPages(ref, first * PAGE, 8 * PAGE)).data;
        expect(Buffer.from(stored).equals(pattern(8, first, i + 1))).toBe(false);
        expect(Buffer.from(await f.blobs.readRange(ref, first * PAGE, 8 * PAGE)).equals(pattern(8, first, i + 1))).toBe(true);
      }
      expect((await f.blobs.getEncryptionStatus(ref)).serverEncrypted).toBe(true);
    });

    it('release: a plaintext buffer goes back right after it is encrypted, or once the store wrote it (base image)', async () => {
      const at = [0, 8, 24];
      for (const mode of ['account', 'base-image'] as const) {
        await f.blobs.createBlob(ref, 4 * MiB, { overwrite: true });
        const released: number[] = [];
        let pulledAfterRelease = 0;
        async function* withRelease(): AsyncGenerator<{ offset: number; data: Uint8Array; release: () => void }> {
          for (const [i, first] of at.entries()) {
            if (released.includes(i - 1)) pulledAfterRelease++;
            const data = pattern(8, first, i + 1);
            // The producer reuses its buffer the moment it is released: nothing may read it after that.
            yield { offset: first * PAGE, data, release: () => { released.push(i); data.fill(0xee); } };
          }
        }
        await f.blobs.fillPages(ref, withRelease(), { mode, batchBytes: 64 * PAGE });
        expect([...released].sort()).toEqual([0, 1, 2]);
        // Encrypting releases each plaintext before the next extent is pulled; a plaintext write holds it longer.
        if (mode === 'account') expect(pulledAfterRelease).toBe(2);
        for (const [i, first] of at.entries()) {
          expect(Buffer.from(await f.blobs.readRange(ref, first * PAGE, 8 * PAGE)).equals(pattern(8, first, i + 1))).toBe(true);
        }
        expect(await tagsOf(f, 8)).toEqual(Array(8).fill(mode === 'account' ? 1 : 0));
      }
      const bad = (async function* () { yield { offset: 0, data: pattern(1, 0, 1), release: 42 as unknown as () => void }; })();
      await expect(f.blobs.fillPages(ref, bad)).rejects.toThrow(TypeError);
    });

    it('decides per extent: a toggle mid-stream changes the following extents; base-image mode stays plaintext', async () => {
      await f.blobs.fillPages(ref, extents([0, 8, 16, 24], 8, async (i) => {
        if (i === 2) await f.accounts.updateAccount('acct1', { encryption: false });
      }));
      expect(await tagsOf(f, 32)).toEqual([...Array(16).fill(1), ...Array(16).fill(0)]);
      await f.accounts.updateAccount('acct1', { encryption: true });
      await f.blobs.fillPages(ref, extents([40, 48], 8), { mode: 'base-image' });
      expect((await tagsOf(f, 56)).slice(40)).toEqual(Array(16).fill(0));
      expect(Buffer.from(await f.blobs.readRange(ref, 40 * PAGE, 8 * PAGE)).equals(pattern(8, 40, 1))).toBe(true);
      await expect(f.blobs.fillPages(ref, extents([0], 1), { mode: 'other' as 'account' })).rejects.toThrow(RangeError);
    });

    it('refuses snapshots; a disabled key refuses the fill, and stops one under way after what it wrote', async () => {
      const snapshot = await f.blobs.createSnapshot(ref);
      await expectCode(f.blobs.fillPages({ ...ref, snapshot } as BlobRef, extents([0], 1)), 'OperationNotAllowedOnSnapshot', 400);
      const { vault, key } = await useCustomerKey(f, 'acct1');
      await f.blobs.deleteSnapshot({ ...ref, snapshot });
      const seen: FillProgress[] = [];
      await expectCode(f.blobs.fillPages(ref, extents([0, 8, 16], 8, async (i) => {
        if (i === 2) await vault.setKeyEnabled(key, false);
      }), { onBatch: (p) => { seen.push(p); } }), 'KeyVaultEncryptionKeyDisabled', 403);
      await expectCode(f.blobs.fillPages(ref, extents([32], 1), { mode: 'base-image' }), 'KeyVaultEncryptionKeyDisabled', 403);
      await vault.setKeyEnabled(key, true);
      expect(seen).toEqual([{ durableBytes: 16 * PAGE, lastOffset: 16 * PAGE }]);
      expect((await tagsOf(f, 24)).map((t) => t > 0)).toEqual([...Array(16).fill(true), ...Array(8).fill(false)]);
      expect(Buffer.from(await f.blobs.readRange(ref, 8 * PAGE, 8 * PAGE)).equals(pattern(8, 8, 2))).toBe(true);
    });

    it('abort: what was handed over lands and is reported, then the fill rejects with the reason', async () => {
      const controller = new AbortController();
      const seen: FillProgress[] = [];
      const error = await f.blobs.fillPages(ref, extents([0, 8, 16, 24], 8, (i) => { if (i === 2) controller.abort(); }), {
        signal: controller.signal, onBatch: (p) => { seen.push(p); },
      }).catch((e: unknown) => e);
      expect((error as Error).name).toBe('AbortError');
      const tags = await tagsOf(f, 32);
      // The extent being produced when the abort came was handed over: the store path writes it; the fallback,
      // which checks before each write, may not. Nothing after it either way, and what is there was reported.
      const written = tags.filter((t) => t >= 0).length;
      expect([16, 24]).toContain(written);
      expect(seen.at(-1)).toEqual({ durableBytes: written * PAGE, lastOffset: written * PAGE });
    });

    it('is one mutation in the blob order: a putPages called during the fill lands after it', async () => {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => { release = resolve; });
      const fill = f.blobs.fillPages(ref, extents([0, 8], 8, async (i) => { if (i === 1) await gate; }));
      await new Promise((r) => setTimeout(r, 10));
      const later = f.blobs.putPages(ref, 8 * PAGE, pattern(4, 8, 99));
      await new Promise((r) => setTimeout(r, 10));
      release();
      await fill;
      await later;
      expect(Buffer.from(await f.blobs.readRange(ref, 8 * PAGE, 4 * PAGE)).equals(pattern(4, 8, 99))).toBe(true);
      expect(Buffer.from(await f.blobs.readRange(ref, 12 * PAGE, 4 * PAGE)).equals(pattern(8, 8, 2).subarray(4 * PAGE))).toBe(true);
    });
  });
}

describe('fillByWrites (the fallback, called directly)', () => {
  it('checks each extent as the stores do, and a release that throws does not undo the write', async () => {
    const f = await fixture('memory');
    try {
      await f.store.createContainer('acct1', 'disks');
      await f.store.createBlob(ref, MiB);
      const options = { batchBytes: 64 * PAGE };
      const one = async function* (extent: unknown) { yield extent as FillExtent; };
      const bad: Array<[unknown, new (...a: never[]) => Error]> = [
        [{ offset: 0, data: 'x', tag: 0 }, TypeError],
        [{ offset: 100, data: pattern(1, 0, 1), tag: 0 }, RangeError],
        [{ offset: 0, data: pattern(1, 0, 1), tag: -1 }, RangeError],
        [{ offset: 0, data: pattern(1, 0, 1), tag: 0, release: 7 }, TypeError],
        [null, TypeError],
      ];
      for (const [extent, type] of bad) await expect(fillByWrites(f.store, ref, one(extent), options, 2)).rejects.toThrow(type);
      async function* descending(): AsyncGenerator<FillExtent> {
        yield { offset: 8 * PAGE, data: pattern(1, 8, 1), tag: 0 };
        yield { offset: 0, data: pattern(1, 0, 1), tag: 0 };
      }
      await expect(fillByWrites(f.store, ref, descending(), options, 2)).rejects.toThrow(/ascend/);
      const throwing = { offset: 16 * PAGE, data: pattern(2, 16, 3), tag: 0, release: () => { throw new Error('producer'); } };
      expect(await fillByWrites(f.store, ref, one(throwing), options, 2)).toEqual({ bytesWritten: 2 * PAGE, batches: 1 });
      expect(Buffer.from((await f.store.readPages(ref, 16 * PAGE, 2 * PAGE)).data).equals(pattern(2, 16, 3))).toBe(true);
    } finally {
      await f.close();
    }
  });
});
