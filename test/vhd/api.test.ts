/** The format layer's API: argument errors, footer encoding, geometry, Azure helpers, writer ordering, stats. */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  azureFixedSize, chsGeometry, createImageWriter, encodeFooter, inspectImage, MAX_VIRTUAL_SIZE, openImage, parseFooter,
  toAzureFixedFooter, VHD_ERROR_CODES, VhdFormatError,
} from '../../lib/vhd/index.js';
import { buildSparseVhd } from './gen.js';

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'vhd-api-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });
const MiB = 1024 * 1024;

describe('footer', () => {
  it('encodes and parses back, with the spec geometry and a valid checksum', () => {
    const id = new Uint8Array(16).fill(0xab);
    const when = new Date('2024-01-02T03:04:05Z');
    const f = parseFooter(encodeFooter({ diskType: 'fixed', virtualSize: 1024 * MiB, uniqueId: id, timestamp: when }));
    expect(f.diskType).toBe('fixed');
    expect(f.currentSize).toBe(1024 * MiB);
    expect(f.geometry).toEqual({ cylinders: 2080, heads: 16, sectorsPerTrack: 63 });
    expect(f.creatorApplication).toBe('win ');
    expect(f.dataOffset).toBe(0xffff_ffff_ffff_ffffn);
    expect(f.timestamp).toBe((when.getTime() - Date.UTC(2000, 0, 1)) / 1000);
    expect(Buffer.from(f.uniqueId).equals(Buffer.from(id))).toBe(true);
    expect(f.features).toBe(2);
  });
  it('geometry of the spec examples and the CHS cap', () => {
    expect(chsGeometry(512)).toEqual({ cylinders: 0, heads: 4, sectorsPerTrack: 17 });
    expect(chsGeometry(MAX_VIRTUAL_SIZE)).toEqual({ cylinders: 65535, heads: 16, sectorsPerTrack: 255 });
  });
  it('refuses bad arguments with TypeError/RangeError', () => {
    expect(() => encodeFooter({ diskType: 'fixed', virtualSize: 1000 })).toThrow(RangeError);
    expect(() => encodeFooter({ diskType: 'fixed', virtualSize: '1' as unknown as number })).toThrow(TypeError);
    expect(() => encodeFooter({ diskType: 'dynamic', virtualSize: 512 })).toThrow(/headerOffset/);
    expect(() => encodeFooter({ diskType: 'fixed', virtualSize: 512, uniqueId: new Uint8Array(3) })).toThrow(RangeError);
    expect(() => encodeFooter({ diskType: 'fixed', virtualSize: 512, creatorApplication: 'toolong' })).toThrow(RangeError);
    expect(() => parseFooter(new Uint8Array(100))).toThrow(RangeError);
  });
  it('azureFixedSize keeps aligned sizes and rounds up or refuses the others', () => {
    expect(azureFixedSize(MiB, 'refuse')).toBe(MiB);
    expect(azureFixedSize(MiB + 512, 'round-up')).toBe(2 * MiB);
    expect(() => azureFixedSize(MiB + 512, 'refuse')).toThrow(/multiple of 1 MiB/);
    expect(() => azureFixedSize(MiB, 'nearest' as 'refuse')).toThrow(RangeError);
  });
  it('toAzureFixedFooter rewrites type, data offset and checksum, and can resize', () => {
    const dyn = encodeFooter({ diskType: 'dynamic', virtualSize: 3 * MiB + 512, headerOffset: 512 });
    const fixed = parseFooter(toAzureFixedFooter(dyn));
    expect(fixed.diskType).toBe('fixed');
    expect(fixed.dataOffset).toBe(0xffff_ffff_ffff_ffffn);
    expect(fixed.currentSize).toBe(3 * MiB + 512);
    const resized = parseFooter(toAzureFixedFooter(dyn, { virtualSize: azureFixedSize(3 * MiB + 512, 'round-up') }));
    expect(resized.currentSize).toBe(4 * MiB);
    expect(resized.geometry).toEqual(chsGeometry(4 * MiB));
  });
  it('error codes are unique and carry status 400 and the field', () => {
    expect(new Set(VHD_ERROR_CODES).size).toBe(VHD_ERROR_CODES.length);
    const e = new VhdFormatError('VhdBadSize', 'footer.currentSize', 'x');
    expect(e.toJSON()).toEqual({ code: 'VhdBadSize', status: 400, message: 'x', field: 'footer.currentSize' });
  });
});

describe('reading', () => {
  it('skips zero runs of a fixed image and reports the bytes skipped', async () => {
    const size = 4 * MiB;
    const data = new Uint8Array(size);
    data.fill(1, 0, 4096);
    data.fill(2, 2 * MiB, 2 * MiB + 512);
    const path = join(dir, 'z.vhd');
    await writeFile(path, Buffer.concat([data, encodeFooter({ diskType: 'fixed', virtualSize: size })]));
    const image = await openImage(path);
    const extents = [];
    for await (const e of image.extents()) extents.push([e.offset, e.length]);
    expect(extents).toEqual([[0, 4096], [2 * MiB, 512]]);
    expect(image.stats).toMatchObject({ bytesRead: size, bytesYielded: 4608, bytesSkipped: size - 4608, bytesUnallocated: 0 });
    const all = [];
    for await (const e of image.extents({ skipZeroRuns: false, chunkSize: MiB })) all.push([e.offset, e.length]);
    expect(all).toEqual([[0, MiB], [MiB, MiB], [2 * MiB, MiB], [3 * MiB, MiB]]);
    await expect(image.read(size - 512, 1024)).rejects.toThrow(RangeError);
    await expect(image.read(-1, 1)).rejects.toThrow(RangeError);
    await expect(image.read('0' as unknown as number, 1)).rejects.toThrow(TypeError);
    await expect(image.extents({ chunkSize: 1000 })[Symbol.asyncIterator]().next()).rejects.toThrow(RangeError);
    await expect(image.extents({ chunkSize: 8 * MiB })[Symbol.asyncIterator]().next()).rejects.toThrow(RangeError);
    await image.close();
  });
  it('reuseBuffers: the same extents from a few reused buffers, each back in use only once every extent cut from it is released', async () => {
    const size = 8 * MiB;
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i += 4096) data[i] = (i / 4096) % 251 + 1; // every sector-run non-zero, each distinct
    data.fill(0, 3.5 * MiB, 3.5 * MiB + 256 * 1024); // a zero run mid-chunk: two extents cut from one buffer
    const path = join(dir, 'reuse.vhd');
    await writeFile(path, Buffer.concat([data, encodeFooter({ diskType: 'fixed', virtualSize: size })]));
    const image = await openImage(path);
    // Each extent as offset:length:sha256, so that comparisons stay cheap.
    const digest = (e: { offset: number; data: Uint8Array }): string =>
      `${e.offset}:${e.data.length}:${createHash('sha256').update(e.data).digest('hex')}`;
    const plain: string[] = [];
    for await (const e of image.extents({ chunkSize: MiB })) {
      expect(e.release).toBeUndefined();
      plain.push(digest(e));
    }
    expect(plain.length).toBe(9);
    // Released at once: a handful of buffers carry the whole pass, and every extent holds its own bytes when seen.
    const backings = new Set<ArrayBufferLike>();
    const reused: string[] = [];
    for await (const e of image.extents({ chunkSize: MiB, reuseBuffers: true })) {
      reused.push(digest(e));
      backings.add(e.data.buffer);
      e.release?.();
      e.release?.(); // a second call changes nothing
    }
    expect(reused).toEqual(plain);
    expect(backings.size).toBeLessThanOrEqual(2);
    // Never released: still right, each extent on memory of its own while it is held.
    const held: Array<{ offset: number; data: Uint8Array }> = [];
    for await (const e of image.extents({ chunkSize: MiB, reuseBuffers: true })) held.push(e);
    expect(held.map(digest)).toEqual(plain);
    // The two extents around the zero run share a buffer: it is read into again only after both are released.
    const pair = held.filter((e) => e.offset >= 3 * MiB && e.offset < 4 * MiB);
    expect(new Set(held.map((e) => e.data.buffer)).size).toBe(8); // 8 chunks, 8 buffers while all are held
    expect(pair.length).toBe(2);
    expect((pair[0] as { data: Uint8Array }).data.buffer).toBe((pair[1] as { data: Uint8Array }).data.buffer);
    await expect(image.extents({ reuseBuffers: 'yes' as unknown as boolean })[Symbol.asyncIterator]().next()).rejects.toThrow(TypeError);
    await image.close();
  });
  it('reads a raw file as raw, and a VHD forced to raw as raw', async () => {
    const path = join(dir, 'r.img');
    await writeFile(path, new Uint8Array(8192).fill(3));
    const image = await openImage(path);
    expect(image.format).toBe('raw');
    expect(image.virtualSize).toBe(8192);
    await image.close();
    const g = buildSparseVhd({ virtualSize: 65536, blockSize: 4096, blocks: [] });
    await writeFile(join(dir, 'd.vhd'), g.bytes);
    const forced = await openImage(join(dir, 'd.vhd'), { format: 'raw' });
    expect(forced.format).toBe('raw');
    await forced.close();
    await expect(openImage(path, { format: 'qcow2' as 'raw' })).rejects.toThrow(RangeError);
    await expect(openImage(path, { maxChainDepth: 0 })).rejects.toThrow(RangeError);
  });
  it('inspectImage reports a valid dynamic disk', async () => {
    const g = buildSparseVhd({ virtualSize: 65536, blockSize: 4096, blocks: [{ index: 2, data: new Uint8Array(4096).fill(1) }] });
    const path = join(dir, 'i.vhd');
    await writeFile(path, g.bytes);
    const report = await inspectImage(path);
    expect(report).toMatchObject({ valid: true, format: 'dynamic', virtualSize: 65536, allocatedSize: 4096 });
    expect(report.header?.blockSize).toBe(4096);
    expect(report.chain?.length).toBe(1);
    expect(report.error).toBeUndefined();
  });
});

describe('writing', () => {
  it('refuses unordered, overlapping, unaligned or out-of-range writes, and bad options', async () => {
    const w = await createImageWriter(join(dir, 'w.vhd'), { format: 'dynamic', virtualSize: 4 * MiB, blockSize: 65536 });
    await w.write(MiB, new Uint8Array(1024));
    await expect(w.write(MiB + 512, new Uint8Array(512))).rejects.toThrow(/ascend/);
    await expect(w.write(2 * MiB + 1, new Uint8Array(512))).rejects.toThrow(RangeError);
    await expect(w.write(2 * MiB, new Uint8Array(100))).rejects.toThrow(RangeError);
    await expect(w.write(4 * MiB, new Uint8Array(512))).rejects.toThrow(/virtual size/);
    await expect(w.write(3 * MiB, 'x' as unknown as Uint8Array)).rejects.toThrow(TypeError);
    await w.finish();
    await expect(w.write(3 * MiB, new Uint8Array(512))).rejects.toThrow(/finished/);
    const image = await openImage(join(dir, 'w.vhd'));
    expect(image.allocatedSize).toBe(65536);
    await image.close();
    await expect(createImageWriter(join(dir, 'x.vhd'), { format: 'vhdx' as 'raw', virtualSize: 512 })).rejects.toThrow(RangeError);
    await expect(createImageWriter(join(dir, 'x.vhd'), { format: 'fixed', virtualSize: 100 })).rejects.toThrow(RangeError);
    await expect(createImageWriter(join(dir, 'x.vhd'), { format: 'dynamic', virtualSize: 512, blockSize: 1000 })).rejects.toThrow(RangeError);
  });
  it('a dynamic BAT is sized exactly and only written blocks are stored', async () => {
    const path = join(dir, 'exact.vhd');
    const w = await createImageWriter(path, { format: 'dynamic', virtualSize: 10 * MiB + 512 });
    await w.write(5 * MiB, new Uint8Array(512).fill(9));
    await w.finish();
    const bytes = await readFile(path);
    const image = await openImage(path);
    expect(image.header?.maxTableEntries).toBe(6);
    // footer copy + header + one BAT sector + one block (bitmap sector + 2 MiB) + footer
    expect(bytes.length).toBe(512 + 1024 + 512 + 512 + 2 * MiB + 512);
    expect((await image.read(5 * MiB, 512))[0]).toBe(9);
    expect((await image.read(4 * MiB, 512))[0]).toBe(0);
    await image.close();
  });
});
