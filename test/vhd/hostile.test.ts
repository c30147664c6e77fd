/**
 * One case per hostile class of the VHD reference: each must be refused with a VhdFormatError carrying the
 * exact code and field, without crashing, hanging or allocating much more than the file.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { VdcryptError } from '../../lib/errors.js';
import { azureFixedSize, encodeFooter, inspectImage, openImage, VhdFormatError, type OpenImageOptions } from '../../lib/vhd/index.js';
import { FOOTER, FOOTER_SIZE, HEADER, LOCATOR, setU32, setU64 } from '../../lib/vhd/layout.js';
import { buildSparseVhd, fixChecksums, utf16le, type GenLayout, type GenLocator } from './gen.js';

const BLOCK = 4096;
const SIZE = 16 * BLOCK;
let dir: string;
let n = 0;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'vhd-hostile-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

function dynamicBase(): GenLayout {
  const data = new Uint8Array(BLOCK).fill(0x5a);
  return buildSparseVhd({ virtualSize: SIZE, blockSize: BLOCK, blocks: [{ index: 0, data }, { index: 3, data }, { index: 7, data }] });
}

function fixedBase(size = 8192): Uint8Array {
  const bytes = new Uint8Array(size + FOOTER_SIZE).fill(0x11, 0, size);
  bytes.set(encodeFooter({ diskType: 'fixed', virtualSize: size }), size);
  return bytes;
}

async function save(bytes: Uint8Array, name = `h${n++}.vhd`): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

async function expectRefused(bytesOrPath: Uint8Array | string, code: string, field: string | RegExp, options?: OpenImageOptions): Promise<void> {
  const path = typeof bytesOrPath === 'string' ? bytesOrPath : await save(bytesOrPath);
  const before = process.memoryUsage().arrayBuffers;
  let caught: unknown;
  try {
    const image = await openImage(path, options);
    await image.close();
  } catch (error) {
    caught = error;
  }
  expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 1024 * 1024);
  expect(caught, `expected ${code}`).toBeInstanceOf(VhdFormatError);
  const e = caught as VhdFormatError;
  expect(e).toBeInstanceOf(VdcryptError);
  expect(e.code).toBe(code);
  expect(e.status).toBe(400);
  if (typeof field === 'string') expect(e.field).toBe(field);
  else expect(e.field).toMatch(field);
  const report = await inspectImage(path, options);
  expect(report.valid).toBe(false);
  expect(report.error?.code).toBe(code);
}

/** Overwrite a dynamic header u32/u64 field and fix both checksums and the footer copy. */
function withHeader(edit: (header: Uint8Array) => void, base = dynamicBase()): Uint8Array {
  edit(base.bytes.subarray(base.headerOffset, base.headerOffset + 1024));
  fixChecksums(base.bytes, base.headerOffset);
  return base.bytes;
}

function withFooter(bytes: Uint8Array, edit: (footer: Uint8Array) => void, copy = true): Uint8Array {
  edit(bytes.subarray(bytes.length - FOOTER_SIZE));
  fixChecksums(bytes, FOOTER_SIZE, copy);
  return bytes;
}

function withBat(index: number, value: number): Uint8Array {
  const base = dynamicBase();
  new DataView(base.bytes.buffer).setUint32(base.tableOffset + index * 4, value, false);
  return base.bytes;
}

describe('footer and header integrity', () => {
  it('bad footer checksum', async () => {
    const b = dynamicBase().bytes;
    const at = b.length - FOOTER_SIZE + FOOTER.timestamp.offset;
    b[at] = (b[at] ?? 0) ^ 1;
    await expectRefused(b, 'VhdBadFooterChecksum', 'footer.checksum');
  });
  it('bad header checksum', async () => {
    const g = dynamicBase();
    g.bytes[g.headerOffset + HEADER.reserved2.offset] = 1;
    await expectRefused(g.bytes, 'VhdBadHeaderChecksum', 'header.checksum');
  });
  it('the two footer copies disagree', async () => {
    const b = withFooter(dynamicBase().bytes, (f) => setU32(f, FOOTER.timestamp, 12345), false);
    await expectRefused(b, 'VhdFooterMismatch', 'footerCopy');
  });
  it('bad footer cookie (format vhd)', async () => {
    const b = fixedBase();
    b[b.length - FOOTER_SIZE] = 0x58;
    await expectRefused(b, 'VhdBadCookie', 'footer.cookie', { format: 'vhd' });
  });
  it('bad header cookie', async () => {
    await expectRefused(withHeader((h) => { h[0] = 0x58; }), 'VhdBadCookie', 'header.cookie');
  });
  it('bad format and header versions', async () => {
    await expectRefused(withFooter(dynamicBase().bytes, (f) => setU32(f, FOOTER.fileFormatVersion, 0x0002_0000)), 'VhdBadVersion', 'footer.fileFormatVersion');
    await expectRefused(withHeader((h) => setU32(h, HEADER.headerVersion, 0)), 'VhdBadVersion', 'header.headerVersion');
  });
  it('unknown disk type (7 is not dynamic, nor 0, 1, 5)', async () => {
    for (const type of [7, 0, 1, 5, 0xffffffff]) {
      await expectRefused(withFooter(dynamicBase().bytes, (f) => setU32(f, FOOTER.diskType, type)), 'VhdUnknownDiskType', 'footer.diskType');
    }
  });
});

describe('sizes', () => {
  for (const [label, size] of [['2^62', 2n ** 62n], ['not sector-aligned', 1000n], ['0', 0n], ['2^53', 2n ** 53n], ['all ones', 2n ** 64n - 1n]] as const) {
    it(`current size ${label} (dynamic and fixed)`, async () => {
      await expectRefused(withFooter(dynamicBase().bytes, (f) => setU64(f, FOOTER.currentSize, size)), 'VhdBadSize', 'footer.currentSize');
      await expectRefused(withFooter(fixedBase(), (f) => setU64(f, FOOTER.currentSize, size), false), 'VhdBadSize', 'footer.currentSize');
    });
  }
  it('fixed disk whose footer claims more data than the file holds', async () => {
    await expectRefused(withFooter(fixedBase(), (f) => setU64(f, FOOTER.currentSize, 16384n), false), 'VhdTruncated', 'footer.currentSize');
  });
  it('fixed disk with bytes between data and footer', async () => {
    await expectRefused(withFooter(fixedBase(), (f) => setU64(f, FOOTER.currentSize, 4096n), false), 'VhdBadSize', 'footer.currentSize');
  });
  it('raw image not a multiple of 512', async () => {
    await expectRefused(new Uint8Array(1000), 'VhdBadSize', 'fileSize');
    await expectRefused(new Uint8Array(0), 'VhdBadSize', 'fileSize');
  });
  it('truncated files', async () => {
    const b = dynamicBase().bytes;
    await expectRefused(b.subarray(0, b.length - 512), 'VhdTruncated', 'footer');
    await expectRefused(b.subarray(0, 3000), 'VhdTruncated', 'footer');
    await expectRefused(b.subarray(0, 100), 'VhdTruncated', 'footer', { format: 'vhd' });
    await expectRefused(b.subarray(b.length - 1024), 'VhdTruncated', 'file'); // footer copy + footer only
  });
  it('azureFixedSize refuses a size that is not a multiple of 1 MiB', () => {
    expect(() => azureFixedSize(3 * 1024 * 1024 + 512, 'refuse')).toThrow(VhdFormatError);
    try { azureFixedSize(512, 'refuse'); } catch (e) {
      expect((e as VhdFormatError).code).toBe('VhdNotAzureAligned');
      expect((e as VhdFormatError).field).toBe('footer.currentSize');
    }
    expect(azureFixedSize(3 * 1024 * 1024 + 512, 'round-up')).toBe(4 * 1024 * 1024);
  });
});

describe('dynamic header fields', () => {
  for (const bs of [0, 0x80, 0x12345678, 3 * 512, 0x8000_0000, 511]) {
    it(`block size 0x${bs.toString(16)}`, async () => {
      await expectRefused(withHeader((h) => setU32(h, HEADER.blockSize, bs)), 'VhdBadBlockSize', 'header.blockSize');
    });
  }
  it('max table entries huge (0xFFFFFFF0) or too small for the size', async () => {
    await expectRefused(withHeader((h) => setU32(h, HEADER.maxTableEntries, 0xffff_fff0)), 'VhdBadTableEntries', 'header.maxTableEntries');
    await expectRefused(withHeader((h) => setU32(h, HEADER.maxTableEntries, 3)), 'VhdBadTableEntries', 'header.maxTableEntries');
  });
  it('header offset inside the footer copy, past the end, or >= 2^53', async () => {
    for (const off of [0n, 100n, 2n ** 53n, 2n ** 63n, 0xffff_ffff_ffff_ffffn]) {
      await expectRefused(withFooter(dynamicBase().bytes, (f) => setU64(f, FOOTER.dataOffset, off)), 'VhdBadHeaderOffset', 'footer.dataOffset');
    }
  });
  it('BAT offset >= 2^53, past the end, inside the header', async () => {
    for (const off of [2n ** 53n, 2n ** 62n, 1_000_000n, 1024n, 0n]) {
      await expectRefused(withHeader((h) => setU64(h, HEADER.tableOffset, off)), 'VhdBadTableOffset', 'header.tableOffset');
    }
  });
});

describe('BAT entries', () => {
  it('past the end of the file (incl. 0x400000, whose << 9 is negative in JS, and overflowing u32 sums)', async () => {
    for (const entry of [100_000, 0x40_0000, 0xffff_fffe, 0xffff_ff00, 0x8000_0000]) {
      await expectRefused(withBat(3, entry), 'VhdBatEntryOutOfRange', 'bat[3]');
    }
  });
  it('inside the footer copy, the header, the BAT and the end footer', async () => {
    const g = dynamicBase();
    const lastSector = g.bytes.length / 512 - 1;
    for (const entry of [0, 1, 2, 3, lastSector - 1]) {
      await expectRefused(withBat(7, entry), 'VhdBatEntryOutOfRange', 'bat[7]');
    }
  });
  it('duplicated, and overlapping another block', async () => {
    const g = dynamicBase();
    const view = new DataView(g.bytes.buffer);
    const block0 = view.getUint32(g.tableOffset, false);
    await expectRefused(withBat(7, block0), 'VhdBatEntryOverlap', 'bat[7]');
    await expectRefused(withBat(7, block0 + 1), 'VhdBatEntryOverlap', 'bat[7]');
  });
});

describe('differencing chains', () => {
  async function chainDir(): Promise<string> {
    const d = join(dir, `c${n++}`);
    await mkdir(join(d, 'child'), { recursive: true });
    return d;
  }
  function child(parentId: Uint8Array, locators: GenLocator[], uniqueId?: Uint8Array): GenLayout {
    return buildSparseVhd({ virtualSize: SIZE, blockSize: BLOCK, blocks: [{ index: 1, data: new Uint8Array(BLOCK).fill(7) }],
      parent: { uniqueId: parentId, name: 'parent.vhd', locators }, ...(uniqueId === undefined ? {} : { uniqueId }) });
  }

  it('resolves a relative locator against the child directory, not the working directory', async () => {
    const d = await chainDir();
    const parent = dynamicBase();
    await save(parent.bytes, `${d.slice(dir.length + 1)}/parent.vhd`);
    const c = await save(child(parent.uniqueId, [{ code: 'W2ru', path: '..\\parent.vhd' }]).bytes, `${d.slice(dir.length + 1)}/child/c.vhd`);
    const image = await openImage(c);
    expect(image.chain.length).toBe(2);
    expect((await image.read(0, 512))[0]).toBe(0x5a);
    expect((await image.read(BLOCK, 512))[0]).toBe(7);
    await image.close();
  });
  it('self-parent', async () => {
    const d = await chainDir();
    const id = new Uint8Array(16).fill(9);
    const g = child(id, [{ code: 'W2ru', path: '.\\self.vhd' }], id);
    await expectRefused(await save(g.bytes, `${d.slice(dir.length + 1)}/child/self.vhd`), 'VhdParentLoop', 'header.parentLocators');
  });
  it('A <-> B loop', async () => {
    const d = await chainDir();
    const idA = new Uint8Array(16).fill(1);
    const idB = new Uint8Array(16).fill(2);
    const rel = d.slice(dir.length + 1);
    await save(child(idB, [{ code: 'W2ru', path: 'b.vhd' }], idA).bytes, `${rel}/a.vhd`);
    await save(child(idA, [{ code: 'W2ku', path: join(d, 'a.vhd') }], idB).bytes, `${rel}/b.vhd`);
    await expectRefused(join(d, 'a.vhd'), 'VhdParentLoop', 'header.parentLocators');
  });
  it('wrong parent unique id', async () => {
    const d = await chainDir();
    const parent = dynamicBase();
    await save(parent.bytes, `${d.slice(dir.length + 1)}/parent.vhd`);
    const c = await save(child(new Uint8Array(16).fill(3), [{ code: 'W2ku', path: join(d, 'parent.vhd') }]).bytes, `${d.slice(dir.length + 1)}/c.vhd`);
    await expectRefused(c, 'VhdParentIdMismatch', 'header.parentUniqueId');
  });
  it('parent not found', async () => {
    await expectRefused(child(new Uint8Array(16), [{ code: 'W2ru', path: 'missing.vhd' }, { code: 'W2ku', path: 'C:\\x\\missing.vhd' }]).bytes,
      'VhdParentNotFound', 'header.parentLocators');
  });
  it('bad UTF-16 in a locator (unpaired surrogate, odd length, embedded NUL)', async () => {
    for (const bad of [new Uint8Array([0x00, 0xd8, 0x41, 0x00]), new Uint8Array([0x41, 0x00, 0x42]), new Uint8Array([0x41, 0, 0, 0, 0x42, 0])]) {
      const g = child(new Uint8Array(16), [{ code: 'W2ru', path: 'xx' }]);
      const loc = g.bytes.subarray(g.headerOffset + HEADER.parentLocators.offset);
      setU32(loc, LOCATOR.platformDataLength, bad.length);
      g.bytes.set(bad, g.locatorOffsets[0] ?? 0);
      fixChecksums(g.bytes);
      await expectRefused(g.bytes, 'VhdBadUtf16', 'header.parentLocator[0].data');
    }
  });
  it('bad UTF-16 in the parent unicode name', async () => {
    const g = child(new Uint8Array(16), [{ code: 'W2ru', path: 'p.vhd' }]);
    g.bytes.set([0xdc, 0x00], g.headerOffset + HEADER.parentUnicodeName.offset);
    fixChecksums(g.bytes);
    await expectRefused(g.bytes, 'VhdBadUtf16', 'header.parentUnicodeName');
  });
  it('locator length > data space, data space past the file, offset >= 2^53, overlapping the BAT', async () => {
    const cases: Array<[(loc: Uint8Array) => void, string]> = [
      [(loc) => setU32(loc, LOCATOR.platformDataLength, 4096), 'header.parentLocator[0].platformDataLength'],
      [(loc) => setU32(loc, LOCATOR.platformDataSpace, 0x1000_0000), 'header.parentLocator[0].platformDataSpace'],
      [(loc) => setU32(loc, LOCATOR.platformDataSpace, 400), 'header.parentLocator[0].platformDataSpace'], // 400 sectors
      [(loc) => setU64(loc, LOCATOR.platformDataOffset, 2n ** 53n), 'header.parentLocator[0].platformDataOffset'],
      [(loc) => setU64(loc, LOCATOR.platformDataOffset, 1536n), 'header.parentLocator[0].platformDataOffset'],
      [(loc) => setU32(loc, LOCATOR.platformDataLength, 0), 'header.parentLocator[0].platformDataLength'],
    ];
    for (const [edit, field] of cases) {
      const g = child(new Uint8Array(16), [{ code: 'W2ru', path: 'p.vhd' }]);
      edit(g.bytes.subarray(g.headerOffset + HEADER.parentLocators.offset));
      fixChecksums(g.bytes);
      await expectRefused(g.bytes, 'VhdBadLocator', field);
    }
  });
  it('a block inside the locator data', async () => {
    const g = child(new Uint8Array(16), [{ code: 'W2ru', path: 'p.vhd' }]);
    new DataView(g.bytes.buffer).setUint32(g.tableOffset + 4, (g.locatorOffsets[0] ?? 0) / 512, false);
    await expectRefused(g.bytes, 'VhdBatEntryOutOfRange', 'bat[1]');
  });
  it('excessive depth: 34 layers against the default 32, and 4 against maxChainDepth 3', async () => {
    const d = await chainDir();
    const rel = d.slice(dir.length + 1);
    let parent = dynamicBase();
    await save(parent.bytes, `${rel}/l0.vhd`);
    for (let level = 1; level < 34; level++) {
      const g = buildSparseVhd({ virtualSize: SIZE, blockSize: BLOCK, blocks: [],
        parent: { uniqueId: parent.uniqueId, name: `l${level - 1}.vhd`, locators: [{ code: 'W2ru', path: `l${level - 1}.vhd` }] } });
      await save(g.bytes, `${rel}/l${level}.vhd`);
      parent = g;
    }
    await expectRefused(join(d, 'l33.vhd'), 'VhdChainTooDeep', 'header.parentLocators');
    await expectRefused(join(d, 'l3.vhd'), 'VhdChainTooDeep', 'header.parentLocators', { maxChainDepth: 3 });
    const ok = await openImage(join(d, 'l31.vhd'));
    expect(ok.chain.length).toBe(32);
    expect((await ok.read(0, 512))[0]).toBe(0x5a);
    await ok.close();
  });
  it('a malformed parent is reported with its own path', async () => {
    const d = await chainDir();
    const parent = dynamicBase();
    const p = parent.bytes;
    p[p.length - FOOTER_SIZE + FOOTER.reserved.offset] = 1;
    // keep the unique id readable: the id check reads the footer leniently, the full open refuses it
    await save(p, `${d.slice(dir.length + 1)}/parent.vhd`);
    const c = await save(child(parent.uniqueId, [{ code: 'W2ru', path: 'parent.vhd' }]).bytes, `${d.slice(dir.length + 1)}/c.vhd`);
    let caught: unknown;
    try { await openImage(c); } catch (e) { caught = e; }
    expect((caught as VhdFormatError).code).toBe('VhdBadFooterChecksum');
    expect((caught as VhdFormatError).file).toBe(join(d, 'parent.vhd'));
  });
});

it('utf16le helper round-trips (sanity for the generator)', () => {
  expect(Buffer.from(utf16le('a\\b')).toString('utf16le')).toBe('a\\b');
});
