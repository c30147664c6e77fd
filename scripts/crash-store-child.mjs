// Crash-suite worker: opens a LocalPageStore (compiled, from dist/) and performs random page writes, clears,
// resizes and snapshots on one blob, one at a time, forever. Before each call it prints `B <json>`, after the
// promise resolves `A <id>`; on a rejection `F <id> <code>`. The parent (scripts/crash-store.mjs) SIGKILLs it.
//
// usage: node scripts/crash-store-child.mjs <dir> <seed> <firstOpId> [maxOps]
import { pageBytes, rng, BLOB, REF, MIN_PAGES, MAX_PAGES, MAX_TAG_USED } from './crash-store-model.mjs';

const [dir, seedArg, firstArg, maxArg] = process.argv.slice(2);
const { LocalPageStore } = await import(new URL('../dist/lib/store/index.js', import.meta.url).href);
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
for (let n = 0; n < maxOps; n++, id++) {
  const roll = random() * 100;
  let op;
  if (roll < 70) {
    const count = 1 + Math.floor(random() * (random() < 0.1 ? 512 : 48));
    const start = Math.floor(random() * Math.max(1, pages - count));
    op = { id, kind: 'write', start, count: Math.min(count, pages - start), tag: Math.floor(random() * (MAX_TAG_USED + 1)) };
  } else if (roll < 88) {
    const count = 1 + Math.floor(random() * 96);
    const start = Math.floor(random() * Math.max(1, pages - count));
    op = { id, kind: 'clear', start, count: Math.min(count, pages - start) };
  } else if (roll < 95) {
    op = { id, kind: 'resize', pages: MIN_PAGES + Math.floor(random() * (MAX_PAGES - MIN_PAGES)) };
  } else {
    op = { id, kind: 'snapshot' };
  }
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
    } else {
      const snaps = (await store.getBlob(REF)).snapshots;
      if (snaps.length >= 2) await store.deleteSnapshot({ ...REF, snapshot: snaps[0] });
      await store.createSnapshot(REF);
    }
  } catch (e) {
    out(`F ${id} ${e.code ?? e.message}`);
    // After an I/O failure the store must refuse every call until reopened.
    try {
      await store.getBlob(REF);
      out('P open');
    } catch (e2) {
      out(`P ${e2.code}`);
    }
    process.exit(5);
  }
  out(`A ${id}`);
}
await store.close();
out('C');
