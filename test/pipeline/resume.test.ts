/**
 * Cancel and resume on LocalPageStore: an aborted import keeps a checkpoint in the blob's metadata; resuming
 * sends only what was not durable yet (counted with a spy on the extents PageBlobService.fillPages pulls) and
 * ends exact; a checkpoint of another source, mode or blob is refused with a typed error.
 */
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import {
  CHECKPOINT_DONE_KEY, CHECKPOINT_SOURCE_KEY, exportBlob, importImage, PipelineError,
} from '../../lib/pipeline/index.js';
import type { BlobRef } from '../../lib/store/index.js';
import { FOOTER_SIZE, openImage } from '../../lib/vhd/index.js';
import { expectCode } from '../keys/helpers.js';
import { type Fixture, fixture, makeImage, MiB, readBlob, tempDir } from './helpers.js';

let f: Fixture;
let tmp: { dir: string; cleanup(): Promise<void> };
const ref: BlobRef = { account: 'acct', container: 'disks', blob: 'disk.vhd' };
const SIZE = 48 * MiB;
// Dynamic image: 2 MiB blocks, data in 40 MiB of them, so the extents are 4 MiB and 2 MiB pieces.
const REGIONS: Array<[number, number]> = [[0, 16 * MiB], [18 * MiB, 2 * MiB], [24 * MiB, 22 * MiB]];
let vhd: string;

beforeEach(async () => {
  f = await fixture('local');
  tmp = await tempDir('vdcrypt-pipeline-resume-');
  await f.accounts.createAccount('acct', { region: 'westus' });
  await f.blobs.createContainer('acct', 'disks');
  vhd = join(tmp.dir, 'disk.vhd');
  await makeImage(vhd, 'dynamic', SIZE, REGIONS);
});
afterEach(async () => {
  vi.restoreAllMocks();
  await f.close();
  await tmp.cleanup();
});

/**
 * Record the offset of every write the import hands over: extents as the bulk fill pulls them, and putPages
 * calls (the footer). `abortAt`: abort `controller` when that write is handed over; `failAt`: the stream of
 * extents throws there instead (a read failing mid-import).
 */
function spyWrites(options: { controller?: AbortController; abortAt?: number; failAt?: number } = {}): number[] {
  const offsets: number[] = [];
  const handOver = (offset: number): void => {
    offsets.push(offset);
    if (offsets.length === options.failAt) throw new Error('lost connection');
    if (offsets.length === options.abortAt) options.controller?.abort();
  };
  const fill = f.blobs.fillPages.bind(f.blobs);
  vi.spyOn(f.blobs, 'fillPages').mockImplementation((r, extents, fillOptions) => {
    async function* watched(): AsyncGenerator<{ offset: number; data: Uint8Array }> {
      for await (const extent of extents) {
        handOver(extent.offset);
        yield extent;
      }
    }
    return fill(r, watched(), fillOptions);
  });
  const put = f.blobs.putPages.bind(f.blobs);
  vi.spyOn(f.blobs, 'putPages').mockImplementation(async (r, offset, data, putOptions) => {
    handOver(offset);
    return put(r, offset, data, putOptions);
  });
  return offsets;
}

async function abortedImport(abortAt: number): Promise<{ sent: number[]; done: number }> {
  const controller = new AbortController();
  const sent = spyWrites({ controller, abortAt });
  await expectCode(importImage(f.blobs, vhd, ref, { signal: controller.signal, concurrency: 3, checkpointInterval: 0 }),
    'OperationAborted', 499);
  vi.restoreAllMocks();
  const { metadata } = await f.blobs.getBlob(ref);
  expect(metadata[CHECKPOINT_SOURCE_KEY]).toBeDefined();
  return { sent, done: Number(metadata[CHECKPOINT_DONE_KEY]) };
}

async function imageBytes(): Promise<Buffer> {
  const image = await openImage(vhd);
  try {
    return Buffer.from(await image.read(0, image.virtualSize));
  } finally {
    await image.close();
  }
}

describe('cancel and resume', () => {
  it('resumes without re-sending finished ranges and ends exact', async () => {
    const { sent, done } = await abortedImport(4);
    // Every extent handed over before the abort landed and is covered by the checkpoint (the batch cut short
    // by the abort is committed and reported); the footer was not sent.
    expect(sent).toEqual([0, 4 * MiB, 8 * MiB, 12 * MiB]);
    expect(done).toBe(16 * MiB);

    const resent = spyWrites();
    const result = await importImage(f.blobs, vhd, ref, { resume: true });
    expect(resent.every((o) => o >= done)).toBe(true);
    expect(resent.filter((o) => sent.includes(o))).toEqual([]);
    expect(resent[resent.length - 1]).toBe(SIZE); // the footer, last
    const data = REGIONS.reduce((n, [, l]) => n + l, 0);
    expect(result.bytesResumed).toBe(done);
    expect(result.bytesWritten).toBe(data - 16 * MiB + FOOTER_SIZE);
    expect(resent).toHaveLength(8); // 18, 24, 28, 32, 36, 40, 44 MiB and the footer
    // Exact: the whole disk as the image reads, the footer in place, no checkpoint left.
    expect((await readBlob(f.blobs, ref, 0, SIZE)).equals(await imageBytes())).toBe(true);
    const info = await f.blobs.getBlob(ref);
    expect(info.size).toBe(SIZE + FOOTER_SIZE);
    expect(info.metadata).toEqual({});
    const out = join(tmp.dir, 'back.vhd');
    expect((await exportBlob(f.blobs, ref, out, { format: 'vhd-dynamic' })).footerFromBlob).toBe(true);
  });

  it('a failing read stops the import with the checkpoint before it, and resume completes', async () => {
    spyWrites({ failAt: 3 });
    await expect(importImage(f.blobs, vhd, ref, { concurrency: 3, checkpointInterval: 0 })).rejects.toThrow('lost connection');
    vi.restoreAllMocks();
    expect(Number((await f.blobs.getBlob(ref)).metadata[CHECKPOINT_DONE_KEY])).toBe(8 * MiB);
    const result = await importImage(f.blobs, vhd, ref, { resume: true });
    expect(result.bytesResumed).toBe(8 * MiB);
    expect((await readBlob(f.blobs, ref, 0, SIZE)).equals(await imageBytes())).toBe(true);
  });

  it('a resumed import onto a blob never started begins afresh', async () => {
    const result = await importImage(f.blobs, vhd, ref, { resume: true });
    expect(result.bytesResumed).toBe(0);
    expect((await readBlob(f.blobs, ref, 0, SIZE)).equals(await imageBytes())).toBe(true);
  });

  it('refuses to resume from a changed source, another mode, or onto a finished blob', async () => {
    await abortedImport(2);
    // Same path, touched file: the identity (mtime) differs.
    const later = new Date(Date.now() + 60_000);
    await utimes(vhd, later, later);
    const changed = await expectCode(importImage(f.blobs, vhd, ref, { resume: true }), 'ImportSourceChanged', 409);
    expect(changed).toBeInstanceOf(PipelineError);
    expect(changed.message).toContain('mtimeNs');

    const other = join(tmp.dir, 'other.vhd');
    await makeImage(other, 'dynamic', SIZE, REGIONS);
    expect((await expectCode(importImage(f.blobs, other, ref, { resume: true }), 'ImportSourceChanged')).message).toContain('path');

    await f.blobs.deleteBlob(ref);
    await abortedImport(2);
    expect((await expectCode(importImage(f.blobs, vhd, ref, { resume: true, baseImage: true }), 'ImportSourceChanged')).message)
      .toContain('mode');
    // The refusals touched nothing: the real resume still works, and then there is nothing left to resume.
    await importImage(f.blobs, vhd, ref, { resume: true });
    expect((await readBlob(f.blobs, ref, 0, SIZE)).equals(await imageBytes())).toBe(true);
    await expectCode(importImage(f.blobs, vhd, ref, { resume: true }), 'NoImportToResume', 409);
  });
});
