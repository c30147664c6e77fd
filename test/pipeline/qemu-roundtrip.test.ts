/**
 * Round trips against qemu-img (Debian qemu-utils) on the default store (LocalPageStore): images qemu makes
 * import to exactly the bytes `qemu-img convert -O raw` reads from them, with the fixed footer in the last page;
 * every export opens in qemu and `qemu-img compare` finds it identical to the original; a fixed VHD comes back
 * byte for byte; the allocation of a dynamic export is the blob's, as `qemu-img map` sees it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exportBlob, importImage, type ExportFormat } from '../../lib/pipeline/index.js';
import type { BlobRef } from '../../lib/store/index.js';
import { DEFAULT_BLOCK_SIZE, FOOTER_SIZE, openImage, parseFooter } from '../../lib/vhd/index.js';
import {
  blobRanges, type Fixture, fixture, GiB, KiB, makeRaw, mergeRanges, MiB, qemuImg, qemuIo, readBlob, tempDir,
} from './helpers.js';

let f: Fixture;
let tmp: { dir: string; cleanup(): Promise<void> };
beforeAll(async () => {
  f = await fixture('local');
  tmp = await tempDir('vdcrypt-pipeline-qemu-');
  await f.accounts.createAccount('acct', { region: 'westus' });
  await f.blobs.createContainer('acct', 'disks');
});
afterAll(async () => {
  await f.close();
  await tmp.cleanup();
});

interface MapEntry { start: number; length: number; data: boolean }

async function qemuDataRanges(path: string): Promise<Array<[number, number]>> {
  const { code, stdout } = await qemuImg('map', '-f', 'vpc', '--output=json', path);
  expect(code).toBe(0);
  return mergeRanges((JSON.parse(stdout) as MapEntry[]).filter((m) => m.data).map((m): [number, number] => [m.start, m.start + m.length]));
}

async function qemuVirtualSize(path: string, format: string): Promise<number> {
  const { code, stdout } = await qemuImg('info', '-f', format, '--output=json', path);
  expect(code).toBe(0);
  return (JSON.parse(stdout) as { 'virtual-size': number })['virtual-size'];
}

/** Allocation of `ranges` as whole dynamic-VHD blocks, clipped to `size` (qemu reports allocation per block). */
function asBlocks(ranges: Array<[number, number]>, size: number): Array<[number, number]> {
  return mergeRanges(ranges.map(([s, e]): [number, number] => [
    Math.floor(s / DEFAULT_BLOCK_SIZE) * DEFAULT_BLOCK_SIZE, Math.min(size, Math.ceil(e / DEFAULT_BLOCK_SIZE) * DEFAULT_BLOCK_SIZE),
  ]));
}

/** Export `ref` to every format and check each against the original image with qemu-img. */
async function checkExports(ref: BlobRef, original: string, name: string, size: number): Promise<void> {
  const formats: Record<ExportFormat, string> = { vhd: 'vpc', 'vhd-dynamic': 'vpc', raw: 'raw' };
  for (const [format, qemuFormat] of Object.entries(formats) as Array<[ExportFormat, string]>) {
    const out = join(tmp.dir, `${name}.export.${format}`);
    const result = await exportBlob(f.blobs, ref, out, { format });
    expect(result.virtualSize).toBe(size);
    expect(result.footerFromBlob).toBe(true);
    expect(await qemuVirtualSize(out, qemuFormat)).toBe(size);
    const cmp = await qemuImg('compare', '-f', 'vpc', '-F', qemuFormat, original, out);
    expect(cmp.code, `${format}: ${cmp.stdout}${cmp.stderr}`).toBe(0);
    if (format === 'vhd-dynamic') {
      expect(await qemuDataRanges(out)).toEqual(asBlocks(await blobRanges(f.blobs, { ...ref }), size));
    }
  }
}

describe('qemu-made images import exactly and export identically', () => {
  const sizes = [8 * MiB, 5 * MiB + 37 * 512, 3 * MiB + 64 * KiB];
  for (const subformat of ['fixed', 'dynamic'] as const) {
    for (const size of sizes) {
      it(`${subformat} ${size} bytes`, async () => {
        const name = `${subformat}-${size}`;
        const raw = join(tmp.dir, `${name}.src.raw`);
        const vhd = join(tmp.dir, `${name}.vhd`);
        const oracle = join(tmp.dir, `${name}.oracle.raw`);
        // Data at the start, in the middle across a MiB boundary, and in the last sectors; zeros between.
        await makeRaw(raw, size, [[0, 64 * KiB], [2 * MiB - 4 * KiB, 1 * MiB + 8 * KiB], [size - 3 * 512, 3 * 512]]);
        expect((await qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', `subformat=${subformat},force_size=on`, raw, vhd)).code).toBe(0);
        expect((await qemuImg('convert', '-f', 'vpc', '-O', 'raw', vhd, oracle)).code).toBe(0);

        const ref: BlobRef = { account: 'acct', container: 'disks', blob: `${name}.vhd` };
        const result = await importImage(f.blobs, vhd, ref);
        expect(result).toMatchObject({ virtualSize: size, blobSize: size + FOOTER_SIZE, footer: true, imageFormat: subformat, mode: 'archive' });
        expect(result.bytesWritten + result.bytesSkipped).toBe(size + FOOTER_SIZE);
        expect((await f.blobs.getBlob(ref)).size).toBe(size + FOOTER_SIZE);
        expect((await readBlob(f.blobs, ref, 0, size)).equals(await readFile(oracle))).toBe(true);

        // The last page is the image's footer as a fixed footer: same unique id, same size.
        const image = await openImage(vhd);
        const footer = parseFooter(await f.blobs.readRange(ref, size, FOOTER_SIZE));
        await image.close();
        expect(footer).toMatchObject({ diskType: 'fixed', currentSize: size, dataOffset: 0xffff_ffff_ffff_ffffn });
        expect(Buffer.from(footer.uniqueId).equals(Buffer.from(image.footer?.uniqueId ?? []))).toBe(true);
        // Nothing but data was sent: the blob holds only allocated, non-zero ranges plus the footer page.
        expect(result.bytesWritten).toBe((await blobRanges(f.blobs, ref)).reduce((n, [s, e]) => n + e - s, 0));

        await checkExports(ref, vhd, name, size);
        if (subformat === 'fixed') {
          const back = await readFile(join(tmp.dir, `${name}.export.vhd`));
          expect(back.equals(await readFile(vhd))).toBe(true);
        }
      });
    }
  }

  it('a 5 GiB sparse dynamic image: only its data is sent, and it comes back identical', async () => {
    const size = 5 * GiB;
    const vhd = join(tmp.dir, 'big.vhd');
    expect((await qemuImg('create', '-f', 'vpc', '-o', 'subformat=dynamic,force_size=on', vhd, String(size))).code).toBe(0);
    const writes: Array<[number, number, number]> = [[1 * MiB, 1 * MiB, 0x33], [4 * GiB + 512 * MiB, 3 * MiB, 0x5a], [size - 2 * MiB, 2 * MiB, 0x77]];
    for (const [offset, length, pattern] of writes) {
      const { code, stderr } = await qemuIo('-f', 'vpc', '-c', `write -P ${pattern} ${offset} ${length}`, vhd);
      expect(code, stderr).toBe(0);
    }
    const ref: BlobRef = { account: 'acct', container: 'disks', blob: 'big.vhd' };
    const result = await importImage(f.blobs, vhd, ref);
    const data = writes.reduce((n, [, length]) => n + length, 0);
    expect(result.bytesWritten).toBe(data + FOOTER_SIZE);
    expect(result.bytesSkipped).toBe(size - data);
    expect(await blobRanges(f.blobs, ref)).toEqual(mergeRanges([
      ...writes.map(([o, l]): [number, number] => [o, o + l]), [size, size + FOOTER_SIZE],
    ]));
    for (const [offset, length, pattern] of writes) {
      expect((await readBlob(f.blobs, ref, offset, length)).equals(Buffer.alloc(length, pattern))).toBe(true);
    }
    await checkExports(ref, vhd, 'big', size);
  });
});
