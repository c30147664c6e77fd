/**
 * Import modes and layouts: base images stay plaintext and archives follow the account's encryption; the
 * Azure 1 MiB rule; raw images with and without a footer; zero runs skipped; progress events; exports of
 * snapshots, of bare disks, refused layouts, and aborted exports that leave nothing behind.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { exportBlob, importImage, PipelineError, type PipelineProgress } from '../../lib/pipeline/index.js';
import { StoreError, type BlobRef } from '../../lib/store/index.js';
import { FOOTER_SIZE, openImage, parseFooter, VhdFormatError } from '../../lib/vhd/index.js';
import { expectCode } from '../keys/helpers.js';
import { type Fixture, fixture, KiB, makeImage, makeRaw, MiB, readBlob, tempDir } from './helpers.js';

let f: Fixture;
let tmp: { dir: string; cleanup(): Promise<void> };
const ref: BlobRef = { account: 'acct', container: 'disks', blob: 'disk.vhd' };

beforeEach(async () => {
  f = await fixture('memory');
  tmp = await tempDir('vdcrypt-pipeline-modes-');
  await f.accounts.createAccount('acct', { region: 'westus' }); // encryption enabled
  await f.blobs.createContainer('acct', 'disks');
});
afterEach(async () => {
  await f.close();
  await tmp.cleanup();
});

async function imageBytes(path: string): Promise<Buffer> {
  const image = await openImage(path);
  try {
    return Buffer.from(await image.read(0, image.virtualSize));
  } finally {
    await image.close();
  }
}

describe('modes', () => {
  it('a base image is stored plaintext in an encryption-enabled account; later writes are encrypted', async () => {
    const vhd = join(tmp.dir, 'base.vhd');
    await makeImage(vhd, 'dynamic', 8 * MiB, [[0, 1 * MiB], [5 * MiB, 512 * KiB]]);
    const result = await importImage(f.blobs, vhd, ref, { baseImage: true });
    expect(result.mode).toBe('base-image');
    const status = await f.blobs.getEncryptionStatus(ref);
    expect(status).toMatchObject({ serverEncrypted: false, encryptedBytes: 0, plaintextBytes: 1.5 * MiB + FOOTER_SIZE });
    // At rest the bytes are the image's own.
    const atRest = await f.store.readPages(ref, 0, 1 * MiB);
    expect(Buffer.from(atRest.data).equals((await imageBytes(vhd)).subarray(0, 1 * MiB))).toBe(true);
    // A VM writing to the disk later: encrypted.
    expect(await f.blobs.putPages(ref, 2 * MiB, Buffer.alloc(4 * KiB, 1))).toBe(true);
    expect((await f.blobs.getEncryptionStatus(ref)).encryptedBytes).toBe(4 * KiB);
  });

  it('an archive is encrypted in an encryption-enabled account and reads back decrypted', async () => {
    const vhd = join(tmp.dir, 'archive.vhd');
    await makeImage(vhd, 'fixed', 4 * MiB, [[512 * KiB, 1 * MiB]]);
    const result = await importImage(f.blobs, vhd, ref);
    expect(result.mode).toBe('archive');
    const status = await f.blobs.getEncryptionStatus(ref);
    expect(status).toMatchObject({ serverEncrypted: true, plaintextBytes: 0, encryptedBytes: 1 * MiB + FOOTER_SIZE });
    const atRest = await f.store.readPages(ref, 512 * KiB, 1 * MiB);
    const plain = (await imageBytes(vhd)).subarray(512 * KiB, 1536 * KiB);
    expect(Buffer.from(atRest.data).equals(plain)).toBe(false);
    expect((await readBlob(f.blobs, ref, 0, 4 * MiB)).equals(await imageBytes(vhd))).toBe(true);
  });

  it('an archive follows the account: plaintext when encryption is disabled', async () => {
    await f.accounts.updateAccount('acct', { encryption: false });
    const vhd = join(tmp.dir, 'archive.vhd');
    await makeImage(vhd, 'fixed', 2 * MiB, [[0, 64 * KiB]]);
    await importImage(f.blobs, vhd, ref);
    expect(await f.blobs.getEncryptionStatus(ref)).toMatchObject({ encryptedBytes: 0, plaintextBytes: 64 * KiB + FOOTER_SIZE });
  });
});

describe('sizes and layouts', () => {
  const odd = 3 * MiB + 5 * 512;

  it('keeps a size that is not a multiple of 1 MiB, rounds it up, or refuses it, as asked', async () => {
    const vhd = join(tmp.dir, 'odd.vhd');
    await makeImage(vhd, 'dynamic', odd, [[odd - 2 * 512, 2 * 512]]);
    const kept = await importImage(f.blobs, vhd, ref);
    expect(kept).toMatchObject({ virtualSize: odd, blobSize: odd + FOOTER_SIZE });

    const up = await importImage(f.blobs, vhd, ref, { azure: 'round-up', overwrite: true });
    expect(up).toMatchObject({ virtualSize: 4 * MiB, blobSize: 4 * MiB + FOOTER_SIZE });
    const footer = parseFooter(await f.blobs.readRange(ref, 4 * MiB, FOOTER_SIZE));
    expect(footer).toMatchObject({ currentSize: 4 * MiB, diskType: 'fixed', originalSize: BigInt(4 * MiB) });
    expect((await readBlob(f.blobs, ref, 0, odd)).equals(await imageBytes(vhd))).toBe(true);

    const other: BlobRef = { ...ref, blob: 'refused.vhd' };
    const refused = await importImage(f.blobs, vhd, other, { azure: 'refuse' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(VhdFormatError);
    expect((refused as VhdFormatError).code).toBe('VhdNotAzureAligned');
    await expectCode(f.blobs.getBlob(other), 'BlobNotFound', 404);
  });

  it('a raw image becomes a bare blob of its size, or an Azure fixed VHD with --azure', async () => {
    const raw = join(tmp.dir, 'disk.raw');
    await makeRaw(raw, odd, [[0, 8 * KiB], [2 * MiB, 4 * KiB]]);
    const bare = await importImage(f.blobs, raw, ref);
    expect(bare).toMatchObject({ imageFormat: 'raw', virtualSize: odd, blobSize: odd, footer: false, bytesWritten: 12 * KiB });
    expect((await readBlob(f.blobs, ref, 0, odd)).equals(await readFile(raw))).toBe(true);

    // Exported as a VHD, a bare disk gets a fresh footer; insisting on a fixed-VHD blob is refused.
    const out = join(tmp.dir, 'bare.vhd');
    const exported = await exportBlob(f.blobs, ref, out, { format: 'vhd' });
    expect(exported).toMatchObject({ footerFromBlob: false, virtualSize: odd, fileSize: odd + FOOTER_SIZE });
    expect((await imageBytes(out)).equals(await readFile(raw))).toBe(true);
    await expectCode(exportBlob(f.blobs, ref, join(tmp.dir, 'x.vhd'), { blobLayout: 'fixed-vhd' }), 'NotAFixedVhdBlob', 400);

    const azure = await importImage(f.blobs, raw, ref, { azure: 'round-up', overwrite: true });
    expect(azure).toMatchObject({ virtualSize: 4 * MiB, blobSize: 4 * MiB + FOOTER_SIZE, footer: true });
    expect(parseFooter(await f.blobs.readRange(ref, 4 * MiB, FOOTER_SIZE))).toMatchObject({ diskType: 'fixed', currentSize: 4 * MiB });
  });

  it('skips the zero runs of a fixed image and reports them', async () => {
    const vhd = join(tmp.dir, 'zeros.vhd');
    await makeImage(vhd, 'fixed', 16 * MiB, [[3 * MiB, 1 * MiB]]);
    const result = await importImage(f.blobs, vhd, ref);
    expect(result).toMatchObject({ bytesWritten: 1 * MiB + FOOTER_SIZE, bytesSkipped: 15 * MiB });
    expect(await f.blobs.getPageRanges(ref)).toEqual([
      { start: 3 * MiB, end: 4 * MiB - 1 }, { start: 16 * MiB, end: 16 * MiB + FOOTER_SIZE - 1 },
    ]);
  });

  it('refuses to replace an existing blob unless asked', async () => {
    const vhd = join(tmp.dir, 'a.vhd');
    await makeImage(vhd, 'fixed', 1 * MiB, [[0, 4 * KiB]]);
    await importImage(f.blobs, vhd, ref);
    const error = await importImage(f.blobs, vhd, ref).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('BlobAlreadyExists');
  });
});

describe('progress', () => {
  it('reports growing byte counts, throughput and an ETA, ending with the whole disk covered', async () => {
    const vhd = join(tmp.dir, 'p.vhd');
    await makeImage(vhd, 'dynamic', 32 * MiB, [[0, 8 * MiB], [20 * MiB, 8 * MiB]]);
    const events: PipelineProgress[] = [];
    await importImage(f.blobs, vhd, ref, { onProgress: (p) => events.push(p) });
    expect(events.length).toBeGreaterThan(1);
    for (let i = 1; i < events.length; i++) {
      const [a, b] = [events[i - 1] as PipelineProgress, events[i] as PipelineProgress];
      expect(b.bytesDone + b.bytesSkipped).toBeGreaterThanOrEqual(a.bytesDone + a.bytesSkipped);
    }
    const last = events[events.length - 1] as PipelineProgress;
    expect(last).toMatchObject({ bytesDone: 16 * MiB, bytesSkipped: 16 * MiB, bytesTotal: 32 * MiB, etaSeconds: 0 });
    expect(last.throughput).toBeGreaterThan(0);

    const exportEvents: PipelineProgress[] = [];
    await exportBlob(f.blobs, ref, join(tmp.dir, 'p.out.vhd'), { onProgress: (p) => exportEvents.push(p) });
    expect(exportEvents[exportEvents.length - 1]).toMatchObject({ bytesDone: 16 * MiB, bytesSkipped: 16 * MiB, bytesTotal: 32 * MiB });
  });
});

describe('export', () => {
  it('exports a snapshot as it was when taken', async () => {
    const vhd = join(tmp.dir, 's.vhd');
    await makeImage(vhd, 'fixed', 4 * MiB, [[0, 1 * MiB]]);
    await importImage(f.blobs, vhd, ref);
    const snapshot = await f.blobs.createSnapshot(ref);
    await f.blobs.putPages(ref, 0, Buffer.alloc(64 * KiB, 9));
    const out = join(tmp.dir, 's.out.vhd');
    await exportBlob(f.blobs, { ...ref, snapshot }, out);
    expect((await readFile(out)).equals(await readFile(vhd))).toBe(true);
  });

  it('an aborted export leaves no file behind and an existing output untouched', async () => {
    const vhd = join(tmp.dir, 'big.vhd');
    await makeImage(vhd, 'dynamic', 64 * MiB, [[0, 40 * MiB]]);
    await importImage(f.blobs, vhd, ref);
    const out = join(tmp.dir, 'out.vhd');
    await writeFile(out, 'previous');
    const controller = new AbortController();
    const error = await exportBlob(f.blobs, ref, out, {
      readAhead: 1,
      onProgress: (p) => { if (p.bytesDone > 0) controller.abort(); },
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PipelineError);
    expect((error as PipelineError).code).toBe('OperationAborted');
    expect(await readFile(out, 'utf8')).toBe('previous');
    expect((await readdir(tmp.dir)).sort()).toEqual(['big.vhd', 'out.vhd']);
  });

  it('a failing read leaves no file behind', async () => {
    const vhd = join(tmp.dir, 'f.vhd');
    await makeImage(vhd, 'fixed', 8 * MiB, [[0, 8 * MiB]]);
    await importImage(f.blobs, vhd, ref);
    let reads = 0;
    const original = f.blobs.readRange.bind(f.blobs);
    f.blobs.readRange = async (...args) => {
      if (++reads === 2) throw new Error('disk on fire');
      return original(...args);
    };
    await expect(exportBlob(f.blobs, ref, join(tmp.dir, 'f.out.raw'), { format: 'raw' })).rejects.toThrow('disk on fire');
    expect(await readdir(tmp.dir)).toEqual(['f.vhd']);
  });
});
