// Blob-level crash worker: page blobs with SSE on the local store (compiled code from dist/). One operation at
// a time, forever: put pages (account mode or base image), clear, toggle the account's encryption, roll its
// AEK, and rewrite (`encrypt`). Before each call it prints `B <json>`, after it resolves `A <id>`; `R` once
// ready. The parent (scripts/crash-blob.mjs) SIGKILLs it at a random moment.
//
// usage: node scripts/crash-blob-child.mjs <home> <seed> <firstOpId>
import { join } from 'node:path';

import { ACCOUNT, BLOB_PAGES, REF, pagePlaintext, rng } from './crash-blob-model.mjs';

const [home, seedArg, firstArg] = process.argv.slice(2);
const dist = (p) => new URL(`../dist/lib/${p}`, import.meta.url).href;
const { AccountService } = await import(dist('account/index.js'));
const { PageBlobService, encryptBlob } = await import(dist('blob/index.js'));
const { LocalPageStore } = await import(dist('store/index.js'));
const out = (line) => process.stdout.write(`${line}\n`);

const accounts = await AccountService.open(home, { env: {} });
const store = await LocalPageStore.open(join(home, 'store'));
const blobs = new PageBlobService(store, accounts);
if (!(await accounts.listAccounts()).includes(ACCOUNT)) {
  await accounts.createAccount(ACCOUNT, { region: 'westus' });
}
try {
  await blobs.createContainer(REF.account, REF.container);
} catch (e) { if (e.code !== 'ContainerAlreadyExists') throw e; }
try {
  await blobs.getBlob(REF);
} catch (e) {
  if (e.code !== 'BlobNotFound') throw e;
  await blobs.createBlob(REF, BLOB_PAGES * 512);
}
out('R');

const random = rng(Number(seedArg));
for (let id = Number(firstArg); ; id++) {
  const pick = random();
  let op;
  if (pick < 0.55) {
    const count = 1 + Math.floor(random() * 24);
    const start = Math.floor(random() * (BLOB_PAGES - count));
    op = { id, kind: 'put', start, count, baseImage: random() < 0.25 };
  } else if (pick < 0.7) {
    const count = 1 + Math.floor(random() * 24);
    op = { id, kind: 'clear', start: Math.floor(random() * (BLOB_PAGES - count)), count };
  } else if (pick < 0.82) {
    op = { id, kind: 'toggle', enabled: random() < 0.6 };
  } else if (pick < 0.9) {
    op = { id, kind: 'roll' };
  } else {
    op = { id, kind: 'encrypt', allGenerations: random() < 0.3 };
  }
  out(`B ${JSON.stringify(op)}`);
  try {
    if (op.kind === 'put') {
      const data = Buffer.concat(Array.from({ length: op.count }, (_, k) => pagePlaintext(id, op.start + k)));
      await blobs.putPages(REF, op.start * 512, data, { mode: op.baseImage ? 'base-image' : 'account' });
    } else if (op.kind === 'clear') {
      await blobs.clearPages(REF, op.start * 512, op.count * 512);
    } else if (op.kind === 'toggle') {
      await accounts.updateAccount(ACCOUNT, { encryption: op.enabled });
    } else if (op.kind === 'roll') {
      await accounts.rollDataKey(ACCOUNT);
    } else {
      await encryptBlob(blobs, REF, { allGenerations: op.allGenerations });
    }
  } catch (e) {
    // encrypt while disabled is refused by design; anything else is a real failure.
    if (!(op.kind === 'encrypt' && e.code === 'AccountEncryptionDisabled')) {
      out(`F ${id} ${e.code ?? e.message}`);
      process.exit(4);
    }
  }
  out(`A ${id}`);
}
