/**
 * Page blobs with SSE (shared/reference/azure-sse.md): encryption decided per write, toggles that never touch
 * stored data, base images kept plaintext, per-range state, rewrite and copy that encrypt old data and keep
 * sparseness, revocation that blocks everything, and concurrent writers.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { BlobError, copyBlob, encryptBlob, type Progress } from '../../lib/blob/index.js';
import { StoreError, type BlobRef } from '../../lib/store/index.js';
import { expectCode } from '../keys/helpers.js';
import { type Fixture, fixture, PAGE, pattern, useCustomerKey } from './helpers.js';

const MiB = 1024 * 1024;
const ref: BlobRef = { account: 'acct1', container: 'disks', blob: 'os.vhd' };
let f: Fixture;

beforeEach(async () => {
  f = await fixture('memory');
  await f.accounts.createAccount('acct1', { region: 'westus' });
  await f.blobs.createContainer('acct1', 'disks');
  await f.blobs.createBlob(ref, 8 * MiB);
});
afterEach(async () => f.close());

/** The raw stored bytes and tags, bypassing decryption. */
async function raw(offset: number, length: number): Promise<{ data: Uint8Array; tags: number[] }> {
  const r = await f.store.readPages(ref, offset, length);
  const tags: number[] = [];
  for (let p = offset; p < offset + length; p += PAGE) {
    const run = r.ranges.find((x) => x.start <= p && p <= x.end);
    tags.push(run === undefined ? -1 : run.tag);
  }
  return { data: r.data, tags };
}

describe('encryption decided per write', () => {
  it('stores ciphertext under the current generation when encryption is on, and reads it back', async () => {
    const plain = pattern(8, 16, 1);
    expect(await f.blobs.putPages(ref, 16 * PAGE, plain)).toBe(true);
    const stored = await raw(16 * PAGE, plain.length);
    expect(stored.tags).toEqual(new Array(8).fill(1));
    expect(Buffer.from(stored.data).equals(plain)).toBe(false);
    // The stored bytes are exactly XTS under generation 1 with tweak = page index.
    const { cipher } = await f.accounts.getCipher('acct1', 1);
    expect(Buffer.from(cipher.decrypt(stored.data, 16)).equals(plain)).toBe(true);
    expect(Buffer.from(await f.blobs.readRange(ref, 16 * PAGE, plain.length)).equals(plain)).toBe(true);
  });

  it('reads unaligned windows and zeros for unallocated bytes', async () => {
    const plain = pattern(4, 2, 7);
    await f.blobs.putPages(ref, 2 * PAGE, plain);
    const got = await f.blobs.readRange(ref, 2 * PAGE - 100, 4 * PAGE + 300);
    const expected = Buffer.concat([Buffer.alloc(100), plain, Buffer.alloc(200)]);
    expect(Buffer.from(got).equals(expected)).toBe(true);
    expect(Buffer.from(await f.blobs.readRange(ref, 7 * MiB + 5, 1000)).equals(Buffer.alloc(1000))).toBe(true);
  });

  it('toggling changes only new writes; stored pages keep their state', async () => {
    const a = pattern(2, 0, 1);
    const b = pattern(2, 4, 2);
    await f.blobs.putPages(ref, 0, a); // encrypted
    await f.accounts.updateAccount('acct1', { encryption: false });
    expect(await f.blobs.putPages(ref, 4 * PAGE, b)).toBe(false); // plaintext
    expect((await raw(0, 6 * PAGE)).tags).toEqual([1, 1, -1, -1, 0, 0]);
    expect(Buffer.from((await raw(4 * PAGE, 2 * PAGE)).data).equals(b)).toBe(true);
    await f.accounts.updateAccount('acct1', { encryption: true });
    expect((await raw(0, 6 * PAGE)).tags).toEqual([1, 1, -1, -1, 0, 0]); // still untouched
    const both = await f.blobs.readRange(ref, 0, 6 * PAGE);
    expect(Buffer.from(both).equals(Buffer.concat([a, Buffer.alloc(2 * PAGE), b]))).toBe(true);
  });

  it('keeps a base image plaintext in an encrypted account; writes after boot are encrypted', async () => {
    const image = pattern(16, 0, 3);
    expect(await f.blobs.putPages(ref, 0, image, { mode: 'base-image' })).toBe(false);
    const boot = pattern(2, 4, 4);
    expect(await f.blobs.putPages(ref, 4 * PAGE, boot)).toBe(true);
    const status = await f.blobs.getEncryptionStatus(ref);
    expect(status).toMatchObject({
      blob: 'acct1/disks/os.vhd', size: 8 * MiB, serverEncrypted: false,
      allocatedBytes: 16 * PAGE, encryptedBytes: 2 * PAGE, plaintextBytes: 14 * PAGE, unallocatedBytes: 8 * MiB - 16 * PAGE,
    });
    expect(status.ranges).toEqual([
      { start: 0, end: 4 * PAGE - 1, state: 'plaintext', generation: null },
      { start: 4 * PAGE, end: 6 * PAGE - 1, state: 'encrypted', generation: 1 },
      { start: 6 * PAGE, end: 16 * PAGE - 1, state: 'plaintext', generation: null },
    ]);
    const expected = Buffer.from(image);
    boot.copy(expected, 4 * PAGE);
    expect(Buffer.from(await f.blobs.readRange(ref, 0, 16 * PAGE)).equals(expected)).toBe(true);
  });

  it('reads pages of several AEK generations, each with its own key', async () => {
    const g1 = pattern(2, 0, 5);
    await f.blobs.putPages(ref, 0, g1);
    await f.accounts.rollDataKey('acct1');
    const g2 = pattern(2, 2, 6);
    await f.blobs.putPages(ref, 2 * PAGE, g2);
    expect((await raw(0, 4 * PAGE)).tags).toEqual([1, 1, 2, 2]);
    expect(Buffer.from(await f.blobs.readRange(ref, 0, 4 * PAGE)).equals(Buffer.concat([g1, g2]))).toBe(true);
    const ranges = (await f.blobs.getEncryptionStatus(ref)).ranges.map((r) => r.generation);
    expect(ranges).toEqual([1, 2]);
  });

  it('rejects misaligned writes and writes past the end with typed errors', async () => {
    await expect(f.blobs.putPages(ref, 100, pattern(1, 0, 1))).rejects.toThrow(RangeError);
    await expect(f.blobs.putPages(ref, 0, Buffer.alloc(700))).rejects.toThrow(RangeError);
    await expect(f.blobs.putPages(ref, 0, 'x' as unknown as Uint8Array)).rejects.toThrow(TypeError);
    await expectCode(f.blobs.putPages(ref, 8 * MiB, pattern(1, 0, 1)), 'InvalidPageRange', 416);
    await expectCode(f.blobs.readRange({ ...ref, blob: 'missing' }, 0, 512), 'BlobNotFound', 404);
    await expectCode(f.blobs.putPages({ ...ref, account: 'nosuch' }, 0, pattern(1, 0, 1)), 'StorageAccountNotFound', 404);
  });
});

describe('rewrite and copy encrypt old data', () => {
  it('encrypt converts plaintext pages in place, keeps sparseness, reports progress, and can resume', async () => {
    await f.blobs.putPages(ref, 0, pattern(64, 0, 1), { mode: 'base-image' });
    await f.blobs.putPages(ref, 4 * MiB, pattern(32, 8192, 2), { mode: 'base-image' });
    await f.blobs.putPages(ref, 64 * PAGE, pattern(8, 64, 3)); // already encrypted
    const before = await f.blobs.readRange(ref, 0, 8 * MiB);
    const ranges = await f.blobs.getPageRanges(ref);

    const stop = new AbortController();
    const seen: Progress[] = [];
    // Stop after the first chunk: the finished chunk stays encrypted, the rest is still plaintext.
    await expectCode(encryptBlob(f.blobs, ref, {
      signal: stop.signal,
      onProgress: (p) => {
        seen.push(p);
        if (p.bytesDone > 0) stop.abort();
      },
    }), 'OperationAborted');
    const midway = await f.blobs.getEncryptionStatus(ref);
    expect(midway.encryptedBytes).toBeGreaterThan(8 * PAGE);
    expect(midway.plaintextBytes).toBeGreaterThan(0);

    const result = await encryptBlob(f.blobs, ref, { onProgress: (p) => seen.push(p) });
    expect(result.bytesDone).toBe(midway.plaintextBytes);
    expect(result.bytesTotal).toBe(midway.plaintextBytes);
    const after = await f.blobs.getEncryptionStatus(ref);
    expect(after).toMatchObject({ serverEncrypted: true, plaintextBytes: 0, encryptedBytes: 104 * PAGE });
    expect(await f.blobs.getPageRanges(ref)).toEqual(ranges);
    expect(Buffer.from(await f.blobs.readRange(ref, 0, 8 * MiB)).equals(Buffer.from(before))).toBe(true);
    expect(seen.every((p, i) => i === 0 || p.bytesDone >= (seen[i - 1]?.bytesDone ?? 0) || p.bytesDone === 0)).toBe(true);
  });

  it('encrypt --all-generations moves older generations to the current one', async () => {
    await f.blobs.putPages(ref, 0, pattern(4, 0, 1));
    await f.accounts.rollDataKey('acct1');
    const plain = await f.blobs.readRange(ref, 0, 4 * PAGE);
    expect((await encryptBlob(f.blobs, ref)).bytesDone).toBe(0); // nothing plaintext
    const r = await encryptBlob(f.blobs, ref, { allGenerations: true });
    expect(r).toMatchObject({ bytesDone: 4 * PAGE, generation: 2 });
    expect((await f.blobs.getEncryptionStatus(ref)).ranges).toEqual([{ start: 0, end: 4 * PAGE - 1, state: 'encrypted', generation: 2 }]);
    expect(Buffer.from(await f.blobs.readRange(ref, 0, 4 * PAGE)).equals(Buffer.from(plain))).toBe(true);
  });

  it('encrypt is refused while the account has encryption disabled', async () => {
    await f.accounts.updateAccount('acct1', { encryption: false });
    const e = await expectCode(encryptBlob(f.blobs, ref), 'AccountEncryptionDisabled', 409);
    expect(e).toBeInstanceOf(BlobError);
  });

  it('copy into an encryption-enabled account encrypts the copy and keeps sparseness', async () => {
    await f.accounts.createAccount('acct2', { region: 'westus', encryption: false });
    await f.blobs.createContainer('acct2', 'plain');
    const src: BlobRef = { account: 'acct2', container: 'plain', blob: 'base' };
    await f.blobs.createBlob(src, 2 * MiB);
    await f.blobs.putPages(src, 0, pattern(8, 0, 9));
    await f.blobs.putPages(src, MiB, pattern(8, 2048, 10));
    expect((await f.blobs.getEncryptionStatus(src)).serverEncrypted).toBe(false);

    const dst: BlobRef = { account: 'acct1', container: 'disks', blob: 'copy' };
    const progress = await copyBlob(f.blobs, src, dst);
    expect(progress).toMatchObject({ bytesDone: 16 * PAGE, bytesTotal: 16 * PAGE, bytesSkipped: 2 * MiB - 16 * PAGE });
    const status = await f.blobs.getEncryptionStatus(dst);
    expect(status).toMatchObject({ size: 2 * MiB, serverEncrypted: true, encryptedBytes: 16 * PAGE, unallocatedBytes: 2 * MiB - 16 * PAGE });
    expect(await f.blobs.getPageRanges(dst)).toEqual(await f.blobs.getPageRanges(src));
    expect(Buffer.from(await f.blobs.readRange(dst, 0, 2 * MiB)).equals(Buffer.from(await f.blobs.readRange(src, 0, 2 * MiB)))).toBe(true);

    // And back into the plaintext account: the copy follows the destination's setting.
    const back: BlobRef = { account: 'acct2', container: 'plain', blob: 'back' };
    await copyBlob(f.blobs, dst, back);
    expect((await f.blobs.getEncryptionStatus(back)).plaintextBytes).toBe(16 * PAGE);
  });

  it('snapshots keep their own encryption state and diff against the blob', async () => {
    await f.blobs.putPages(ref, 0, pattern(4, 0, 1), { mode: 'base-image' });
    const snap = await f.blobs.createSnapshot(ref);
    await encryptBlob(f.blobs, ref);
    await f.blobs.putPages(ref, 8 * PAGE, pattern(2, 8, 2));
    const snapRef = { ...ref, snapshot: snap };
    expect((await f.blobs.getEncryptionStatus(snapRef))).toMatchObject({ blob: `acct1/disks/os.vhd@${snap}`, plaintextBytes: 4 * PAGE, encryptedBytes: 0 });
    expect((await f.blobs.getEncryptionStatus(ref))).toMatchObject({ plaintextBytes: 0, encryptedBytes: 6 * PAGE });
    const diff = await f.blobs.diffRanges(ref, snap);
    expect(diff.updated).toEqual([{ start: 0, end: 4 * PAGE - 1 }, { start: 8 * PAGE, end: 10 * PAGE - 1 }]);
    expect(Buffer.from(await f.blobs.readRange(snapRef, 0, 4 * PAGE)).equals(pattern(4, 0, 1))).toBe(true);
    await expect(f.blobs.putPages(snapRef as BlobRef, 0, pattern(1, 0, 1))).rejects.toBeInstanceOf(Error);
  });
});

describe('revocation blocks everything', () => {
  it('a disabled customer key refuses every read and write, plaintext pages too; re-enabling restores them', async () => {
    const base = pattern(4, 0, 1);
    await f.blobs.putPages(ref, 0, base, { mode: 'base-image' });
    const { vault, key } = await useCustomerKey(f, 'acct1');
    const secret = pattern(4, 8, 2);
    await f.blobs.putPages(ref, 8 * PAGE, secret);

    await vault.setKeyEnabled(key, false);
    const refused = [
      () => f.blobs.readRange(ref, 0, 4 * PAGE), // plaintext base pages
      () => f.blobs.readRange(ref, 8 * PAGE, 4 * PAGE),
      () => f.blobs.putPages(ref, 0, base),
      () => f.blobs.putPages(ref, 0, base, { mode: 'base-image' }),
      () => f.blobs.clearPages(ref, 0, PAGE),
      () => f.blobs.getEncryptionStatus(ref),
      () => f.blobs.getPageRanges(ref),
      () => f.blobs.createBlob({ ...ref, blob: 'new' }, MiB),
      () => f.blobs.createSnapshot(ref),
      () => encryptBlob(f.blobs, ref),
    ];
    for (const op of refused) {
      const e = await expectCode(op, 'KeyVaultEncryptionKeyDisabled', 403);
      expect(e.message).not.toMatch(/[0-9a-f]{64}/);
    }

    await vault.setKeyEnabled(key, true);
    expect(Buffer.from(await f.blobs.readRange(ref, 0, 4 * PAGE)).equals(base)).toBe(true);
    expect(Buffer.from(await f.blobs.readRange(ref, 8 * PAGE, 4 * PAGE)).equals(secret)).toBe(true);
  });

  it('revoking the account access to the key refuses with an access error until granted again', async () => {
    const { vault, key } = await useCustomerKey(f, 'acct1');
    await f.blobs.putPages(ref, 0, pattern(2, 0, 3));
    const identity = (await import('../../lib/account/index.js')).accountIdentity('acct1');
    await vault.revokeAccess(key, identity);
    const e = await expectCode(f.blobs.readRange(ref, 0, PAGE), 'KeyVaultAccessDenied', 403);
    expect(e.status).toBe(403);
    await vault.grantAccess(key, identity, ['get', 'wrapKey', 'unwrapKey']);
    expect(Buffer.from(await f.blobs.readRange(ref, 0, 2 * PAGE)).equals(pattern(2, 0, 3))).toBe(true);
  });
});

describe('concurrency', () => {
  it('many concurrent writes and reads on one blob: no torn page, no lost update', async () => {
    const writes: Promise<unknown>[] = [];
    const last = new Map<number, number>(); // page -> seed of the write issued last
    for (let i = 0; i < 200; i++) {
      const page = (i * 7919) % 64;
      const seed = i + 1;
      last.set(page, seed);
      writes.push(f.blobs.putPages(ref, page * PAGE, pattern(1, page, seed), { mode: i % 3 === 0 ? 'base-image' : 'account' }));
      if (i % 10 === 0) writes.push(f.blobs.readRange(ref, 0, 64 * PAGE));
    }
    await Promise.all(writes);
    const all = Buffer.from(await f.blobs.readRange(ref, 0, 64 * PAGE));
    for (const [page, seed] of last) {
      const got = all.subarray(page * PAGE, (page + 1) * PAGE);
      // Writes to one page are applied in call order: the page holds the last write issued, whole.
      expect(got.equals(pattern(1, page, seed)), `page ${page}`).toBe(true);
    }
  });

  it('a rewrite never overwrites a concurrent write with stale data', async () => {
    await f.blobs.putPages(ref, 0, pattern(64, 0, 1), { mode: 'base-image' });
    const pending = encryptBlob(f.blobs, ref);
    const fresh = pattern(1, 5, 99);
    await f.blobs.putPages(ref, 5 * PAGE, fresh, { mode: 'base-image' });
    await pending;
    expect(Buffer.from(await f.blobs.readRange(ref, 5 * PAGE, PAGE)).equals(fresh)).toBe(true);
    expect(StoreError).toBeDefined();
  });
});
