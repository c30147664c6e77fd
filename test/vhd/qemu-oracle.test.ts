/**
 * Differential tests against qemu-img (Debian qemu-utils): images qemu makes read as qemu reads them, our
 * allocation agrees with `qemu-img map`, and the images we write open in `qemu-img info` and compare
 * identical with `qemu-img compare`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { chsGeometry, createImageWriter, openImage, toAzureFixedFooter, type DiskImage } from '../../lib/vhd/index.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'vhd-qemu-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

async function qemuImg(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run('qemu-img', args, { maxBuffer: 64 * MiB });
    return { code: 0, stdout };
  } catch (error) {
    const e = error as { code?: number; stdout?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '' };
  }
}

interface MapEntry { start: number; length: number; data: boolean }

async function qemuDataRanges(path: string): Promise<Array<[number, number]>> {
  const { code, stdout } = await qemuImg('map', '-f', 'vpc', '--output=json', path);
  expect(code).toBe(0);
  return mergeRanges((JSON.parse(stdout) as MapEntry[]).filter((m) => m.data).map((m) => [m.start, m.start + m.length]));
}

function mergeRanges(ranges: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [s, e] of ranges) {
    const last = out[out.length - 1];
    if (last !== undefined && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

async function extentRanges(image: DiskImage): Promise<Array<[number, number]>> {
  const ranges: Array<[number, number]> = [];
  for await (const e of image.extents({ skipZeroRuns: false })) ranges.push([e.offset, e.offset + e.length]);
  return mergeRanges(ranges);
}

async function readViaExtents(image: DiskImage): Promise<Buffer> {
  const out = Buffer.alloc(image.virtualSize);
  for await (const e of image.extents()) out.set(e.data, e.offset);
  return out;
}

/** A sparse raw file: a few random-data runs, zeros elsewhere. */
async function makeRaw(name: string, size: number): Promise<Buffer> {
  const content = Buffer.alloc(size);
  const runs: Array<[number, number]> = [[0, 4096], [Math.floor(size / 3 / 512) * 512, 70_000 - (70_000 % 512)], [size - 1024, 1024]];
  for (const [off, len] of runs) randomBytes(Math.min(len, size - off)).copy(content, off);
  await writeFile(join(dir, name), content);
  return content;
}

// Sizes: MiB-aligned, not MiB-aligned, not a multiple of the 2 MiB block size, and not CHS-exact.
const SIZES = [1 * MiB, 3 * MiB + 7 * 512, 10 * MiB + 4096, 5 * MiB];

describe('qemu-made images read as qemu reads them', () => {
  for (const size of SIZES) {
    for (const subformat of ['fixed', 'dynamic'] as const) {
      it(`${subformat}, ${size} bytes`, async () => {
        const raw = await makeRaw(`src-${size}.raw`, size);
        const vhd = join(dir, `q-${subformat}-${size}.vhd`);
        const conv = await qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', `subformat=${subformat},force_size=on`, join(dir, `src-${size}.raw`), vhd);
        expect(conv.code).toBe(0);
        const image = await openImage(vhd);
        try {
          expect(image.format).toBe(subformat);
          expect(image.virtualSize).toBe(size);
          expect((await readViaExtents(image)).equals(raw)).toBe(true);
          expect(Buffer.from(await image.read(0, size)).equals(raw)).toBe(true);
          if (subformat === 'dynamic') expect(await extentRanges(image)).toEqual(await qemuDataRanges(vhd));
          else expect(image.stats.bytesSkipped).toBeGreaterThan(0); // fixed: the zero runs were skipped
        } finally {
          await image.close();
        }
      });
    }
  }

  it('a 5 GiB sparse dynamic disk: allocation as qemu-img map, data as written by qemu-io', async () => {
    const vhd = join(dir, 'big.vhd');
    expect((await qemuImg('create', '-f', 'vpc', '-o', 'subformat=dynamic,force_size=on', vhd, '5G')).code).toBe(0);
    await run('qemu-io', ['-f', 'vpc', '-c', 'write -P 0x42 4G 1M', '-c', 'write -P 0x17 100M 64k', '-c', 'write -P 0x99 5119M 1M', vhd]);
    const image = await openImage(vhd);
    try {
      expect(image.virtualSize).toBe(5 * GiB);
      expect(await extentRanges(image)).toEqual(await qemuDataRanges(vhd));
      let yielded = 0;
      for await (const e of image.extents()) {
        const expected = e.offset >= 4 * GiB && e.offset < 4 * GiB + MiB ? 0x42 : e.offset >= 5119 * MiB ? 0x99 : 0x17;
        expect(e.data.every((b) => b === expected)).toBe(true);
        yielded += e.length;
      }
      expect(yielded).toBe(MiB + 64 * 1024 + MiB);
      expect(image.stats.bytesSkipped).toBe(5 * GiB - yielded);
      const around = await image.read(4 * GiB - 512, 1024);
      expect([...around.subarray(0, 512)].every((b) => b === 0)).toBe(true);
      expect([...around.subarray(512)].every((b) => b === 0x42)).toBe(true);
    } finally {
      await image.close();
    }
  });
});

describe('images we write are what qemu-img expects', () => {
  for (const size of SIZES) {
    for (const format of ['fixed', 'dynamic', 'raw'] as const) {
      it(`${format}, ${size} bytes: qemu-img info and compare`, async () => {
        const raw = await makeRaw(`w-${size}.raw`, size);
        const out = join(dir, `ours-${format}-${size}.img`);
        const source = await openImage(join(dir, `w-${size}.raw`), { format: 'raw' });
        const writer = await createImageWriter(out, { format, virtualSize: size, blockSize: format === 'dynamic' && size === 5 * MiB ? 512 * 1024 : undefined });
        try {
          for await (const e of source.extents()) await writer.write(e.offset, e.data);
          await writer.finish();
        } finally {
          await source.close();
        }
        const fmt = format === 'raw' ? 'raw' : 'vpc';
        const info = JSON.parse((await qemuImg('info', '-f', fmt, '--output=json', out)).stdout) as { 'virtual-size': number };
        expect(info['virtual-size']).toBe(size);
        expect((await qemuImg('compare', '-f', fmt, '-F', 'raw', out, join(dir, `w-${size}.raw`))).code).toBe(0);
        const back = await openImage(out, { format: format === 'raw' ? 'raw' : 'vhd' });
        try {
          expect(back.format).toBe(format);
          expect((await readViaExtents(back)).equals(raw)).toBe(true);
          if (format === 'dynamic') {
            // We set bitmap bits per sector written; qemu reports allocation per block.
            const block = back.header?.blockSize ?? 0;
            const blocks = (await extentRanges(back)).map(([s, e]): [number, number] =>
              [Math.floor(s / block) * block, Math.min(size, Math.ceil(e / block) * block)]);
            expect(mergeRanges(blocks)).toEqual(await qemuDataRanges(out));
          }
        } finally {
          await back.close();
        }
        if (format === 'fixed') expect((await readFile(out)).length).toBe(size + 512);
      });
    }
  }

  it('a 6 GiB sparse dynamic disk written by us reads back in qemu-io', async () => {
    const out = join(dir, 'ours-big.vhd');
    const writer = await createImageWriter(out, { format: 'dynamic', virtualSize: 6 * GiB });
    await writer.write(512, Buffer.alloc(4096, 0x11));
    await writer.write(4 * GiB + 2 * MiB - 512, Buffer.alloc(MiB, 0x22)); // crosses a block boundary
    await writer.write(6 * GiB - MiB, Buffer.alloc(MiB, 0x33));
    await writer.finish();
    const info = JSON.parse((await qemuImg('info', '-f', 'vpc', '--output=json', out)).stdout) as { 'virtual-size': number };
    expect(info['virtual-size']).toBe(6 * GiB);
    await run('qemu-io', ['-f', 'vpc', '-r', '-c', 'read -P 0x11 512 4096', '-c', 'read -P 0 0 512', '-c', `read -P 0x22 ${4 * GiB + 2 * MiB - 512} ${MiB}`,
      '-c', `read -P 0x33 ${6 * GiB - MiB} ${MiB}`, '-c', `read -P 0 ${2 * GiB} ${MiB}`, out]).then(({ stdout }) => {
      expect(stdout).not.toMatch(/Pattern verification failed/);
    });
    const fh = await open(out);
    expect((await fh.stat()).size).toBeLessThan(16 * MiB); // only 4 blocks allocated
    await fh.close();
  });

  it('a dynamic footer rewritten by toAzureFixedFooter makes a fixed VHD qemu compares identical', async () => {
    const size = 3 * MiB;
    const raw = await makeRaw('az.raw', size);
    const dyn = join(dir, 'az-dyn.vhd');
    expect((await qemuImg('convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=dynamic,force_size=on', join(dir, 'az.raw'), dyn)).code).toBe(0);
    const image = await openImage(dyn);
    const footer = image.footer;
    await image.close();
    expect(footer).toBeDefined();
    const fixed = join(dir, 'az-fixed.vhd');
    await writeFile(fixed, Buffer.concat([raw, toAzureFixedFooter(footer ?? new Uint8Array(512))]));
    expect((await qemuImg('compare', '-f', 'vpc', '-F', 'vpc', fixed, dyn)).code).toBe(0);
    const reopened = await openImage(fixed);
    expect(reopened.format).toBe('fixed');
    expect(Buffer.from(reopened.footer?.uniqueId ?? []).equals(Buffer.from(footer?.uniqueId ?? [1]))).toBe(true);
    await reopened.close();
  });
});

describe('CHS geometry', () => {
  it('matches the geometry qemu-img writes (creator qemu, no force_size) for small to 300 GiB disks', async () => {
    for (const size of ['1M', '3149312', '10489856', '1G', '127G', '300G']) {
      const vhd = join(dir, `chs-${size}.vhd`);
      expect((await qemuImg('create', '-q', '-f', 'vpc', '-o', 'subformat=dynamic', vhd, size)).code).toBe(0);
      const image = await openImage(vhd);
      expect(image.footer?.creatorApplication).toBe('qemu');
      expect(chsGeometry(image.virtualSize)).toEqual(image.footer?.geometry);
      await image.close();
    }
  });
});
