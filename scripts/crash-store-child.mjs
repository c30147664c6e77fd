// Crash-suite worker: opens a LocalPageStore (compiled, from dist/) and performs random page writes, clears,
// resizes, snapshots and bulk fills (fillPages, small batches) on one blob, one at a time, forever. Before each
// call it prints `B <json>`, after the promise resolves `A <id>`, for each durable batch of a fill
// `K <id> <page>`; on a rejection `F <id> <code>`. The parent (scripts/crash-store.mjs) SIGKILLs it.
//
// usage: node scripts/crash-store-child.mjs <dir> <seed> <firstOpId> [maxOps]
import { pageBytes, rng, BLOB, REF, MIN_PAGES, MAX_PAGES, MAX_TAG_USED } from './crash-store-model.mjs';

const [dir, seedArg, firstArg, maxArg] = process.argv.slice(2);
const { LocalPageStore } = await import(new URL('../dist/lib/store/index.js', import.meta.url).href);
const { alignedBuffer } = await import(new URL('../dist/lib/xts/index.js', import.meta.url).href);
const out = (line) => process.stdout.write(`${line}\n`);

let store;
try {
  store = await LocalPageStore.open(dir);
} catch (e) {
  out(`O ${e.code ?? e.message}`);
  process.exit(3);
}
try {
  await store.createContainer(REF.account, REF.container);
} catch (e) { if (e.code !== 'ContainerAlreadyExists') { out(`O ${e.code}`); process.exit(3); } }
let info;
try {
  info = await store.getBlob(REF);
} catch (e) {
  if (e.code !== 'BlobNotFound') { out(`O ${e.code}`); process.exit(3); }
  // Creating the blob is an operation like the others: acknowledged once it resolves.
  out(`B ${JSON.stringify({ id: Number(firstArg) - 1, kind: 'create', pages: BLOB.initialPages })}`);
  try {
    info = await store.createBlob(REF, BLOB.initialPages * 512);
  } catch (e2) { out(`F ${Number(firstArg) - 1} ${e2.code}`); process.exit(4); }
  out(`A ${Number(firstArg) - 1}`);
}
out('R');

const random = rng(Number(seedArg));
let pages = info.size / 512;
let id = Number(firstArg);
const maxOps = maxArg === undefined ? Infinity : Number(maxArg);

/** Ascending extents with gaps over a window of the blob: [startPage, pages, tag] each. */
function fillExtents() {
  const out = [];
  // Half the fills keep to 4 KiB (8 pages) in offset and length, so that LocalPageStore writes them with O_DIRECT.
  const grain = random() < 0.5 ? 8 : 1;
  const up = (n) => Math.ceil(n / grain) * grain;
  let at = up(Math.floor(random() * pages * 0.8));
  const stop = Math.min(pages, at + 64 + Math.floor(random() * 640));
  while (at < stop && out.length < 40) {
    at = up(at + (random() < 0.5 ? 0 : Math.floor(random() * 16)));
    let count = Math.min(stop - at, 1 + Math.floor(random() * 48));
    if (grain > 1 && count >= grain) count -= count % grain;
    if (count <= 0) break;
    out.push([at, count, Math.floor(random() * (MAX_TAG_USED + 1))]);
    at += count;
  }
  return out;
}

/** The operations of one step: usually one; a fill may first drop the snapshots and clear its window. */
function nextOps() {
  const roll = random() * 100;
  if (roll < 62) {
    const count = 1 + Math.floor(random() * (random() < 0.1 ? 512 : 48));
    const start = Math.floor(random() * Math.max(1, pages - count));
    return [{ kind: 'write', start, count: Math.min(count, pages - start), tag: Math.floor(random() * (MAX_TAG_USED + 1)) }];
  }
  if (roll < 78) {
    const count = 1 + Math.floor(random() * 96);
    const start = Math.floor(random() * Math.max(1, pages - count));
    return [{ kind: 'clear', start, count: Math.min(count, pages - start) }];
  }
  if (roll < 85) return [{ kind: 'resize', pages: MIN_PAGES + Math.floor(random() * (MAX_PAGES - MIN_PAGES)) }];
  if (roll < 90) return [{ kind: 'snapshot' }];
  // A bulk fill in small batches. Its fresh pages take the batch path only without snapshots and over
  // unallocated pages, so it often drops the snapshots and clears its window first (ops of their own).
  const extents = fillExtents();
  if (extents.length === 0) return [];
  const ops = [];
  if (random() < 0.6) ops.push({ kind: 'unsnap' });
  const first = extents[0][0];
  const last = extents[extents.length - 1];
  if (random() < 0.6) ops.push({ kind: 'clear', start: first, count: last[0] + last[1] - first });
  ops.push({ kind: 'fill', extents, batchBytes: 512 * (4 + Math.floor(random() * 60)) });
  return ops;
}

async function* fillStream(op) {
  for (const [k, [start, count, tag]] of op.extents.entries()) {
    // Aligned memory (written as it is) or ordinary memory (staged); released extents are scribbled over at
    // once, so a store that read one after releasing it would leave wrong bytes for the parent to find.
    const data = k % 2 === 0 ? alignedBuffer(count * 512) : new Uint8Array(count * 512);
    for (let i = 0; i < count; i++) data.set(pageBytes(op.id, start + i, tag), i * 512);
    yield { offset: start * 512, data, tag, release: () => data.fill(0x5a) };
  }
}

for (let n = 0; n < maxOps; n++) {
  for (const step of nextOps()) {
    const op = { id: id++, ...step };
    out(`B ${JSON.stringify(op)}`);
    try {
      if (op.kind === 'write') {
        const data = new Uint8Array(op.count * 512);
        for (let i = 0; i < op.count; i++) data.set(pageBytes(op.id, op.start + i, op.tag), i * 512);
        await store.writePages(REF, op.start * 512, data, op.tag);
      } else if (op.kind === 'clear') {
        await store.clearPages(REF, op.start * 512, op.count * 512);
      } else if (op.kind === 'resize') {
        await store.resizeBlob(REF, op.pages * 512);
        pages = op.pages;
      } else if (op.kind === 'snapshot') {
        const snaps = (await store.getBlob(REF)).snapshots;
        if (snaps.length >= 2) await store.deleteSnapshot({ ...REF, snapshot: snaps[0] });
        await store.createSnapshot(REF);
      } else if (op.kind === 'unsnap') {
        for (const snapshot of (await store.getBlob(REF)).snapshots) await store.deleteSnapshot({ ...REF, snapshot });
      } else {
        // Each durable batch is acknowledged: `K <id> <pages>`, every extent ending at or before that page.
        await store.fillPages(REF, fillStream(op), {
          batchBytes: op.batchBytes, onBatch: ({ lastOffset }) => out(`K ${op.id} ${lastOffset / 512}`),
        });
      }
    } catch (e) {
      out(`F ${op.id} ${e.code ?? e.message}`);
      // After an I/O failure the store must refuse every call until reopened.
      try {
        await store.getBlob(REF);
        out('P open');
      } catch (e2) {
        out(`P ${e2.code}`);
      }
      process.exit(5);
    }
    out(`A ${op.id}`);
  }
}
await store.close();
out('C');
