/**
 * AzurePageStore seen from outside: a plain `@azure/storage-blob` client that knows nothing of vdcrypt reads
 * the page blob written through PageBlobService (ciphertext where encrypted, the plaintext where base image),
 * a fixed VHD imported in base-image mode is byte-identical on Azure, uploads skip zeros, and the state blob
 * settles an interrupted write by its CRC64 (or the MD5 of older states).
 */
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { AccountService } from '../../lib/account/index.js';
import { PageBlobService } from '../../lib/blob/index.js';
import { AzurePageStore, sealExtents, STATE_SUFFIX, type UploadExtent } from '../../lib/remote/index.js';
import { type BlobRef, PAGE_SIZE, StoreError } from '../../lib/store/index.js';
import { createImageWriter, openImage } from '../../lib/vhd/index.js';
import { crc64 } from '../../lib/xts/index.js';
import { pattern } from '../blob/helpers.js';
import { type AzuriteServer, startAzurite } from './azurite.js';
import { azureStore, plainClient, TEST_RETRY, wipe } from './helpers.js';

const MiB = 1024 * 1024;
const ref: BlobRef = { account: 'acct', container: 'disks', blob: 'os.vhd' };

let server: AzuriteServer;
let home: string;
let accounts: AccountService;
let store: AzurePageStore;
let blobs: PageBlobService;

beforeAll(async () => { server = await startAzurite(); });
afterAll(async () => { await server.stop(); });
beforeEach(async () => {
  await wipe(server);
  home = await mkdtemp(join(tmpdir(), 'vdcrypt-remote-'));
  accounts = await AccountService.open(home, { env: {} });
  await accounts.createAccount('acct', { region: 'westus' });
  store = azureStore(server);
  blobs = new PageBlobService(store, accounts);
  await blobs.createContainer('acct', 'disks');
});
afterEach(async () => {
  await store.close();
  await accounts.close();
  await rm(home, { recursive: true, force: true });
});

function plainBlob(name = ref.blob) {
  return plainClient(server, 'acct').getContainerClient('disks').getPageBlobClient(name);
}

describe('a plain Azure client sees exactly the stored bytes', () => {
  it('encrypted pages are not the plaintext, base-image pages are; vdcrypt reads everything back', async () => {
    await blobs.createBlob(ref, 8 * MiB);
    const secret = pattern(2048, 0, 1); // 1 MiB
    const image = pattern(2048, 4096, 2);
    expect(await blobs.putPages(ref, 0, secret)).toBe(true);
    expect(await blobs.putPages(ref, 2 * MiB, image, { mode: 'base-image' })).toBe(false);

    const raw = await plainBlob().downloadToBuffer(0, 8 * MiB);
    const encrypted = raw.subarray(0, MiB);
    expect(encrypted.equals(secret)).toBe(false);
    for (let p = 0; p < 2048; p++) { // no encrypted page equals its plaintext
      expect(encrypted.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE).equals(secret.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE))).toBe(false);
    }
    expect(raw.subarray(2 * MiB, 3 * MiB).equals(image)).toBe(true);
    expect(raw.subarray(MiB, 2 * MiB).every((b) => b === 0) && raw.subarray(3 * MiB).every((b) => b === 0)).toBe(true);
    const ranges = (await plainBlob().getPageRanges()).pageRange ?? [];
    expect(ranges.reduce((n, r) => n + (r as { count: number }).count + 1, 0)).toBe(2 * MiB); // SDK: count = end - start // holes stay unallocated

    const back = await blobs.readRange(ref, 0, 8 * MiB);
    expect(Buffer.from(back.subarray(0, MiB)).equals(secret)).toBe(true);
    expect(Buffer.from(back.subarray(2 * MiB, 3 * MiB)).equals(image)).toBe(true);
    const status = await blobs.getEncryptionStatus(ref);
    expect(status).toMatchObject({ encryptedBytes: MiB, plaintextBytes: MiB, serverEncrypted: false });
  });

  it('bulk upload through sealExtents: ciphertext on Azure, zero pages skipped, vdcrypt reads it back', async () => {
    await blobs.createBlob(ref, 16 * MiB);
    const data = randomBytes(6 * MiB);
    data.fill(0, MiB, 3 * MiB); // 2 MiB of zeros inside an extent
    const extents = [{ offset: 0, data: data.subarray(0, 5 * MiB) }, { offset: 10 * MiB, data: data.subarray(5 * MiB) }];
    const progress: number[] = [];
    const sealed = { bytesSkipped: 0 };
    const result = await store.uploadExtents(ref, sealExtents(blobs, 'acct', extents, { stats: sealed }), {
      concurrency: 4, batchBytes: 4 * MiB, onProgress: (p) => progress.push(p.bytesSent),
    });
    expect(result).toMatchObject({ bytesSent: 4 * MiB, bytesSkipped: 0, bytesResumed: 0 });
    expect(sealed.bytesSkipped).toBe(2 * MiB);
    expect(progress[progress.length - 1]).toBe(4 * MiB);
    const raw = await plainBlob().downloadToBuffer(0, 16 * MiB);
    expect(raw.subarray(0, MiB).equals(data.subarray(0, MiB))).toBe(false);
    const back = Buffer.from(await blobs.readRange(ref, 0, 16 * MiB));
    expect(back.subarray(0, 5 * MiB).equals(data.subarray(0, 5 * MiB))).toBe(true);
    expect(back.subarray(10 * MiB, 11 * MiB).equals(data.subarray(5 * MiB))).toBe(true);
    expect(await store.listRanges(ref)).toEqual([
      { start: 0, end: MiB - 1, tag: 1 }, { start: 3 * MiB, end: 5 * MiB - 1, tag: 1 }, { start: 10 * MiB, end: 11 * MiB - 1, tag: 1 },
    ]);
    const listed = (await plainClient(server, 'acct').getContainerClient('disks').listBlobsFlat().byPage().next()).value;
    expect(listed.segment.blobItems.map((b: { name: string }) => b.name)).toEqual(['os.vhd', `os.vhd${STATE_SUFFIX}`]);
  });

  it('bulk upload: plaintext zero pages are skipped, ciphertext pages (tag >= 1) are sent even when all zero', async () => {
    await blobs.createBlob(ref, 8 * MiB);
    const zeros = Buffer.alloc(MiB);
    const result = await store.uploadExtents(ref, [
      { offset: 0, data: zeros, tag: 0 }, { offset: 2 * MiB, data: zeros, tag: 1 },
    ], { batchBytes: 4 * MiB });
    expect(result).toMatchObject({ bytesSent: MiB, bytesSkipped: MiB, requests: 1 });
    expect(await store.listRanges(ref)).toEqual([{ start: 2 * MiB, end: 3 * MiB - 1, tag: 1 }]);
  });

  it('bulk upload: an extent\'s own CRC64 and noZeroPages are used as given, and checked for shape', async () => {
    await blobs.createBlob(ref, 16 * MiB);
    const zeros = Buffer.alloc(MiB);
    // noZeroPages: the producer vouches there are none, so even these zeros are sent as one Put Page.
    const result = await store.uploadExtents(ref, [
      { offset: 0, data: zeros, tag: 0, noZeroPages: true, crc64: crc64(zeros) },
      { offset: 2 * MiB, data: zeros, tag: 0, crc64: crc64(zeros) }, // scanned: skipped, its CRC64 unused
    ], { batchBytes: 4 * MiB });
    expect(result).toMatchObject({ bytesSent: MiB, bytesSkipped: MiB, requests: 1 });
    expect(await store.listRanges(ref)).toEqual([{ start: 0, end: MiB - 1, tag: 0 }]);
    const bad = [
      [{ offset: 0, data: zeros, tag: 1, crc64: Buffer.alloc(7) }, TypeError],
      [{ offset: 0, data: zeros, tag: 1, crc64: 'AAAAAAAAAAA=' }, TypeError],
      [{ offset: 0, data: Buffer.alloc(8 * MiB), tag: 1, crc64: Buffer.alloc(8) }, RangeError],
      [{ offset: 0, data: zeros, tag: 0, noZeroPages: 'yes' }, TypeError],
    ] as const;
    for (const [extent, type] of bad) {
      await expect(store.uploadExtents(ref, [extent as unknown as UploadExtent])).rejects.toThrow(type);
    }
    expect(await store.listRanges(ref)).toEqual([{ start: 0, end: MiB - 1, tag: 0 }]);
  });
});

describe('bulk upload into empty pages (the fill intent) and over data (per-chunk intents)', () => {
  function stateClient() {
    return plainClient(server, 'acct').getContainerClient('disks').getBlockBlobClient(`os.vhd${STATE_SUFFIX}`);
  }

  /** The state blob as one GET (one version, even while the upload rewrites it). */
  async function readState(): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    for await (const chunk of (await stateClient().download()).readableStreamBody ?? []) chunks.push(Buffer.from(chunk as Buffer));
    return JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
  }

  it('fills empty pages under one intent and overwrites data under checksummed intents, with exact tags', async () => {
    await store.createBlob(ref, 16 * MiB);
    const old = randomBytes(2 * MiB);
    await store.uploadExtents(ref, [{ offset: 4 * MiB, data: old, tag: 2 }]);
    // 0-4 MiB empty (fill), 4-6 MiB over data (checked path), 6-12 MiB empty (fill), tag 3 throughout; then a
    // chunk with another tag (7) into empty pages goes the checked path too.
    const data = randomBytes(12 * MiB);
    let fillSeen: unknown;
    async function* extents(): AsyncGenerator<UploadExtent> {
      yield { offset: 0, data: data.subarray(0, 12 * MiB), tag: 3 };
      // The first chunk into empty pages has announced the fill: the empty spans, without the pages of data.
      fillSeen = (await readState()).fill;
      yield { offset: 14 * MiB, data: data.subarray(0, MiB), tag: 7 };
    }
    const result = await store.uploadExtents(ref, extents(), { concurrency: 3, batchBytes: 4 * MiB });
    const pages = MiB / PAGE_SIZE;
    expect(fillSeen).toEqual({ tag: 3, spans: [[0, 4 * pages], [6 * pages, 16 * pages]] });
    expect(result).toMatchObject({ bytesSent: 13 * MiB, bytesSkipped: 0 });
    expect(await store.listRanges(ref)).toEqual([
      { start: 0, end: 12 * MiB - 1, tag: 3 }, { start: 14 * MiB, end: 15 * MiB - 1, tag: 7 },
    ]);
    const raw = await plainBlob().downloadToBuffer(0, 16 * MiB);
    expect(raw.subarray(0, 12 * MiB).equals(data)).toBe(true);
    expect(raw.subarray(14 * MiB, 15 * MiB).equals(data.subarray(0, MiB))).toBe(true);
    const state = JSON.parse((await stateClient().downloadToBuffer()).toString()) as Record<string, unknown>;
    expect(state.pending).toEqual([]);
    expect(state.fill).toBeUndefined();
    expect(state.upload).toBeUndefined();
  });

  it('an upload into a new blob writes its state blob twice: the fill intent (with the checkpoint), then the end', async () => {
    const stateWrites: string[] = [];
    let firstPut = -1;
    const { store: viaProxy, close } = await recordingProxy((req, body) => {
      if (req.method !== 'PUT') return;
      if ((req.url ?? '').includes(STATE_SUFFIX)) {
        stateWrites.push(body.toString());
      } else if ((req.url ?? '').includes('comp=page') && firstPut < 0) {
        firstPut = stateWrites.length;
      }
    });
    try {
      await viaProxy.createBlob(ref, 16 * MiB);
      const before = stateWrites.length;
      let stateWhenPulled: Record<string, unknown> | undefined;
      async function* extents(): AsyncGenerator<UploadExtent> {
        // Pulled before anything is written for this upload: no separate checkpoint write comes first.
        stateWhenPulled = await readState();
        for (let at = 0; at < 12 * MiB; at += 4 * MiB) yield { offset: at, data: randomBytes(4 * MiB), tag: 1 };
      }
      await viaProxy.uploadExtents(ref, extents(), { concurrency: 2 });
      expect(stateWhenPulled?.upload).toBeUndefined();
      const writes = stateWrites.slice(before).map((w) => JSON.parse(w) as Record<string, unknown>);
      expect(writes).toHaveLength(2);
      expect(writes[0]).toMatchObject({ upload: { done: [] }, fill: { tag: 1 } });
      expect(firstPut).toBe(before + 1); // the first Put Page follows the fill intent
      expect(writes[1]?.upload).toBeUndefined();
      expect(writes[1]?.fill).toBeUndefined();
      expect(await viaProxy.listRanges(ref)).toEqual([{ start: 0, end: 12 * MiB - 1, tag: 1 }]);
    } finally {
      await close();
    }
  });

  it('an interrupted fill is settled by Get Page Ranges: what Azure holds is committed and counted done', async () => {
    await store.createBlob(ref, 8 * MiB);
    await store.writePages(ref, 0, pattern(8, 0, 1), 1);
    // A writer that died mid-upload: its fill intent over the empty pages 8..16383, its checkpoint, two of its
    // filled chunks on Azure (the rest never sent), and two chunks of other tags inside the fill's spans: one
    // announced as pending that landed, one already committed by the checked path. Both keep their own tag.
    const json = JSON.parse((await stateClient().downloadToBuffer()).toString()) as Record<string, unknown>;
    const { StorageCRC64Calculator } = await import('@azure/storage-common');
    await StorageCRC64Calculator.init();
    const azureCrc64 = (b: Buffer): string => Buffer.from(new StorageCRC64Calculator().final(b, b.length)).toString('base64');
    const filledA = pattern(2048, 8, 4); // pages 8..2055
    const filledB = pattern(2048, 4096, 5); // pages 4096..6143
    const other = pattern(16, 10000, 6); // pages 10000..10015, tag 9, pending
    const committed = pattern(16, 12000, 7); // pages 12000..12015, tag 8, committed by the checked path
    json.fill = { tag: 4, spans: [[8, 16384]] };
    json.upload = { id: 'interrupted', done: [] };
    json.pending = [{ start: 10000, end: 10016, tag: 9, crc64: azureCrc64(other), upload: true }];
    (json.runs as number[][]).push([12000, 12016, 8, 3]);
    const body = Buffer.from(JSON.stringify(json));
    await stateClient().upload(body, body.length);
    await plainBlob().uploadPages(filledA, 8 * PAGE_SIZE, filledA.length);
    await plainBlob().uploadPages(filledB, 4096 * PAGE_SIZE, filledB.length);
    await plainBlob().uploadPages(other, 10000 * PAGE_SIZE, other.length);
    await plainBlob().uploadPages(committed, 12000 * PAGE_SIZE, committed.length);

    const fresh = azureStore(server); // another process
    try {
      expect(await fresh.listRanges(ref)).toEqual([
        { start: 0, end: 8 * PAGE_SIZE - 1, tag: 1 },
        { start: 8 * PAGE_SIZE, end: 2056 * PAGE_SIZE - 1, tag: 4 },
        { start: 4096 * PAGE_SIZE, end: 6144 * PAGE_SIZE - 1, tag: 4 },
        { start: 10000 * PAGE_SIZE, end: 10016 * PAGE_SIZE - 1, tag: 9 },
        { start: 12000 * PAGE_SIZE, end: 12016 * PAGE_SIZE - 1, tag: 8 },
      ]);
      const settled = JSON.parse((await stateClient().downloadToBuffer()).toString()) as Record<string, unknown>;
      expect(settled.fill).toBeUndefined();
      expect(settled.pending).toEqual([]);
      expect(settled.upload).toEqual({ id: 'interrupted', done: [[8, 2056], [4096, 6144], [10000, 10016]] });
      const back = await fresh.readPages(ref, 8 * PAGE_SIZE, filledA.length);
      expect(Buffer.from(back.data).equals(filledA)).toBe(true);
    } finally {
      await fresh.close();
    }
  });

  it('a state blob with a malformed fill intent is refused as StoreCorrupt', async () => {
    await store.createBlob(ref, MiB);
    await store.writePages(ref, 0, pattern(8, 0, 1), 1);
    for (const fill of [{ tag: -1, spans: [[0, 8]] }, { tag: 1, spans: [[8, 4]] }, { tag: 1, spans: [[0, 8], [4, 12]] }, 'x']) {
      const json = JSON.parse((await stateClient().downloadToBuffer()).toString()) as Record<string, unknown>;
      json.fill = fill;
      const body = Buffer.from(JSON.stringify(json));
      await stateClient().upload(body, body.length);
      const fresh = azureStore(server);
      try {
        await expect(fresh.listRanges(ref)).rejects.toMatchObject({ code: 'StoreCorrupt' });
      } finally {
        await fresh.close();
      }
    }
  });
});

describe('integrity in transit', () => {
  it('every Put Page carries x-ms-content-crc64, equal to the Azure SDK\'s CRC64 of its body (Azurite does not check it)', async () => {
    const puts: Array<{ crc64: string | undefined; md5: string | undefined; body: Buffer }> = [];
    const { store: viaProxy, close } = await recordingProxy((req, body) => {
      if (req.method === 'PUT' && (req.url ?? '').includes('comp=page') && req.headers['x-ms-page-write'] === 'update') {
        const h = (name: string): string | undefined => req.headers[name] as string | undefined;
        puts.push({ crc64: h('x-ms-content-crc64'), md5: h('content-md5'), body });
      }
    });
    try {
      const proxied = new PageBlobService(viaProxy, accounts);
      await proxied.createBlob(ref, 16 * MiB);
      await proxied.putPages(ref, 0, randomBytes(64 * 1024));
      const data = randomBytes(6 * MiB);
      await viaProxy.uploadExtents(ref, sealExtents(proxied, 'acct', [{ offset: 4 * MiB, data }]), { batchBytes: 4 * MiB });
      const { StorageCRC64Calculator } = await import('@azure/storage-common');
      await StorageCRC64Calculator.init();
      expect(puts.length).toBe(3); // one Put Page, then 4 + 2 MiB
      for (const put of puts) {
        expect(put.md5).toBeUndefined();
        const expected = Buffer.from(new StorageCRC64Calculator().final(put.body, put.body.length)).toString('base64');
        expect(put.crc64).toBe(expected);
      }
      expect(Buffer.from(await proxied.readRange(ref, 4 * MiB, 6 * MiB)).equals(data)).toBe(true);
    } finally {
      await close();
    }
  });
});

/** An AzurePageStore that reaches Azurite through a proxy showing `see` every request with its body. */
async function recordingProxy(see: (req: IncomingMessage, body: Buffer) => void): Promise<{ store: AzurePageStore; close: () => Promise<void> }> {
  const proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      see(req, body);
      const upstream = httpRequest({ host: '127.0.0.1', port: server.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => { res.statusCode = 502; res.end(); });
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as { port: number };
  const config = server.configs()['acct'] as { connectionString: string };
  const viaProxy = new AzurePageStore({
    accounts: { acct: { connectionString: config.connectionString.replace(`:${server.port}/`, `:${port}/`) } }, retry: TEST_RETRY,
  });
  return {
    store: viaProxy,
    close: async () => {
      await viaProxy.close();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}

describe('VHD import in base-image mode', () => {
  it('a fixed VHD uploads to blob bytes identical to the file, sparsely', async () => {
    const path = join(home, 'disk.vhd');
    const virtualSize = 8 * MiB;
    const writer = await createImageWriter(path, { format: 'fixed', virtualSize });
    await writer.write(0, pattern(128, 0, 3));
    await writer.write(3 * MiB, pattern(2048, 6144, 4));
    await writer.write(7 * MiB + 512 * 10, pattern(4, 14346, 5));
    await writer.finish();
    const file = await readFile(path);
    expect(file.length).toBe(virtualSize + PAGE_SIZE);

    await blobs.createBlob(ref, file.length);
    const image = await openImage(path);
    async function* withFooter() {
      for await (const e of image.extents()) yield { offset: e.offset, data: e.data };
      yield { offset: virtualSize, data: file.subarray(virtualSize) }; // the footer in the last page, as Azure wants
    }
    const result = await store.uploadExtents(ref, sealExtents(blobs, 'acct', withFooter(), { mode: 'base-image' }));
    await image.close?.();
    expect(result.bytesSent).toBe(128 * PAGE_SIZE + MiB + 4 * PAGE_SIZE + PAGE_SIZE);
    const raw = await plainBlob().downloadToBuffer(0, file.length);
    expect(raw.equals(file)).toBe(true);
    expect(Buffer.from(await blobs.readRange(ref, 0, file.length)).equals(file)).toBe(true);
    expect((await blobs.getEncryptionStatus(ref)).encryptedBytes).toBe(0);
  });
});

describe('crash consistency of single writes', () => {
  it('an intent whose Put Page landed is committed on next access; one that did not is dropped', async () => {
    await store.createBlob(ref, MiB);
    await store.writePages(ref, 0, pattern(8, 0, 1), 1);
    // Simulate a writer that died: intents for two writes, only the first of which reached Azure.
    const state = plainClient(server, 'acct').getContainerClient('disks').getBlockBlobClient(`os.vhd${STATE_SUFFIX}`);
    const json = JSON.parse((await state.downloadToBuffer()).toString()) as { pending: unknown[] };
    const { createHash } = await import('node:crypto');
    // Checksums from the Azure SDK's own CRC64 (and MD5, as states written before CRC64 hold it).
    const { StorageCRC64Calculator } = await import('@azure/storage-common');
    await StorageCRC64Calculator.init();
    const azureCrc64 = (b: Buffer): string => Buffer.from(new StorageCRC64Calculator().final(b, b.length)).toString('base64');
    const landed = pattern(8, 16, 2);
    const lost = pattern(8, 32, 3);
    const landedLegacy = pattern(8, 40, 4);
    json.pending = [
      { start: 16, end: 24, tag: 5, crc64: azureCrc64(landed) },
      { start: 0, end: 8, tag: 6, crc64: azureCrc64(lost) },
      { start: 40, end: 48, tag: 7, md5: createHash('md5').update(landedLegacy).digest('base64') },
    ];
    const body = Buffer.from(JSON.stringify(json));
    await state.upload(body, body.length);
    await plainBlob().uploadPages(landed, 16 * PAGE_SIZE, landed.length);
    await plainBlob().uploadPages(landedLegacy, 40 * PAGE_SIZE, landedLegacy.length);

    const fresh = azureStore(server); // another process
    try {
      expect(await fresh.listRanges(ref)).toEqual([
        { start: 0, end: 4095, tag: 1 }, { start: 8192, end: 12287, tag: 5 }, { start: 20480, end: 24575, tag: 7 },
      ]);
      const back = await fresh.readPages(ref, 0, 24 * PAGE_SIZE);
      expect(Buffer.from(back.data.subarray(0, 4096)).equals(pattern(8, 0, 1))).toBe(true);
      expect(Buffer.from(back.data.subarray(8192)).equals(landed)).toBe(true);
      expect(JSON.parse((await state.downloadToBuffer()).toString()).pending).toEqual([]);
    } finally {
      await fresh.close();
    }
  });

  it('maps Azure errors onto StoreError codes', async () => {
    const e = await store.getBlob({ ...ref, blob: 'missing' }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(StoreError);
    expect((e as StoreError).code).toBe('BlobNotFound');
    await expect(store.createContainer('acct', 'Bad_Name')).rejects.toThrow(RangeError);
    await expect(store.createBlob({ ...ref, blob: `x${STATE_SUFFIX}` }, MiB)).rejects.toThrow(RangeError);
    await expect(store.listContainers('elsewhere')).rejects.toMatchObject({ code: 'AccountNotConfigured' });
  });
});
