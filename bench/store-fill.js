// Child process of the store benchmark: fill a new page blob sequentially through the page-blob layer on the
// local store (encryption on or off), then print one JSON line with the time and this process's peak RSS.
//   node bench/store-fill.js <home> <bytes> <encrypt:0|1> [inFlight] [path: fill|put]
// path `fill` (default): one PageBlobService.fillPages stream of 4 MiB extents from reused buffers (the bulk
// path: O_DIRECT writes, durable per 64 MiB batch).
// path `put`: 4 MiB putPages calls, `inFlight` at a time, each durable on its own.
import { randomFillSync } from 'node:crypto';
import { join } from 'node:path';

import { AccountService } from '../dist/lib/account/index.js';
import { PageBlobService } from '../dist/lib/blob/index.js';
import { LocalPageStore } from '../dist/lib/store/index.js';
import { AlignedBufferPool } from '../dist/lib/xts/index.js';

const [home, bytesArg, encryptArg, inFlightArg, pathArg] = process.argv.slice(2);
const bytes = Number(bytesArg);
const inFlight = Number(inFlightArg ?? 4);
const path = pathArg ?? 'fill';
const CHUNK = 4 * 1024 * 1024;

const accounts = await AccountService.open(home, { env: {} });
const store = await LocalPageStore.open(join(home, 'store'));
const blobs = new PageBlobService(store, accounts);
await accounts.createAccount('bench', { encryption: encryptArg === '1' });
await blobs.createContainer('bench', 'fill');
const ref = { account: 'bench', container: 'fill', blob: 'disk' };
await blobs.createBlob(ref, bytes);

// A small pool of source buffers, refreshed with random bytes: memory stays bounded whatever `bytes` is.
const pool = Array.from({ length: inFlight }, () => randomFillSync(Buffer.alloc(CHUNK)));
const started = process.hrtime.bigint();
if (path === 'fill') {
  // As the image reader feeds an import: a few reused page-aligned buffers, each taken back on release (the
  // blob layer releases a plaintext buffer as soon as it is encrypted).
  const buffers = new AlignedBufferPool(CHUNK, 8);
  async function* extents() {
    for (let offset = 0, i = 0; offset < bytes; offset += CHUNK, i++) {
      const src = pool[i % pool.length];
      const data = buffers.take(Math.min(CHUNK, bytes - offset));
      src.copy(data, 0, 0, data.length);
      data[0] = offset & 0xff; // vary the content cheaply
      yield { offset, data, release: () => buffers.give(data) };
    }
  }
  await blobs.fillPages(ref, extents());
} else {
  let next = 0;
  async function worker(slot) {
    for (;;) {
      const offset = next;
      if (offset >= bytes) return;
      next += CHUNK;
      const data = pool[slot].subarray(0, Math.min(CHUNK, bytes - offset));
      data[0] = offset & 0xff; // vary the content cheaply
      await blobs.putPages(ref, offset, data);
    }
  }
  await Promise.all(pool.map((_, slot) => worker(slot)));
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await store.close();
await accounts.close();
process.stdout.write(`${JSON.stringify({ path, seconds, bytes, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
