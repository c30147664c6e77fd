// Child process of the store benchmark: fill a new page blob sequentially through the page-blob layer on the
// local store (encryption on or off), then print one JSON line with the time and this process's peak RSS.
//   node bench/store-fill.js <home> <bytes> <encrypt:0|1> [inFlight]
import { randomFillSync } from 'node:crypto';
import { join } from 'node:path';

import { AccountService } from '../dist/lib/account/index.js';
import { PageBlobService } from '../dist/lib/blob/index.js';
import { LocalPageStore } from '../dist/lib/store/index.js';

const [home, bytesArg, encryptArg, inFlightArg] = process.argv.slice(2);
const bytes = Number(bytesArg);
const inFlight = Number(inFlightArg ?? 4);
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
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await store.close();
await accounts.close();
process.stdout.write(`${JSON.stringify({ seconds, bytes, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
