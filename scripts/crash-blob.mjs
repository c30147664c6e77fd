#!/usr/bin/env node
// Blob-level crash suite (issue 4): page blobs with SSE on the local store, killed with SIGKILL at random
// moments while a child (scripts/crash-blob-child.mjs) puts pages (encrypted or base-image plaintext), clears,
// toggles the account's encryption, rolls its AEK and rewrites the blob. After each kill this process reopens
// the home and checks:
//   - the account and the store open by themselves (recovery included);
//   - every allocated page decrypts, with the AEK generation its state names, to exactly the plaintext some
//     operation wrote to that page (bytes and encryption state never disagree, no torn page);
//   - the blob and the account equal the model of acknowledged operations, the one in flight at the kill
//     either applied or not (an interrupted rewrite may have converted any subset of its pages);
//   - encryption states follow the rules: writes while enabled are encrypted under the generation current at
//     the time, base-image writes and writes while disabled are plaintext.
// Compiled code comes from dist/ (run `npx tsc -p tsconfig.build.json` first).
//
// usage: VDCRYPT_CRASH_CYCLES=500 node scripts/crash-blob.mjs
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ACCOUNT, BLOB_PAGES, REF, pagePlaintext, rng } from './crash-blob-model.mjs';
import { runKilledChild } from './crash-child.mjs';

const CHILD = fileURLToPath(new URL('./crash-blob-child.mjs', import.meta.url));
const PAGE = 512;

function apply(model, op) {
  const next = { enabled: model.enabled, generation: model.generation, pages: new Map(model.pages) };
  if (op.kind === 'put') {
    const tag = op.baseImage || !model.enabled ? 0 : model.generation;
    for (let p = op.start; p < op.start + op.count; p++) next.pages.set(p, { id: op.id, tag });
  } else if (op.kind === 'clear') {
    for (let p = op.start; p < op.start + op.count; p++) next.pages.delete(p);
  } else if (op.kind === 'toggle') {
    next.enabled = op.enabled;
  } else if (op.kind === 'roll') {
    next.generation = model.generation + 1;
  } else if (op.kind === 'encrypt' && model.enabled) {
    for (const [p, c] of next.pages) {
      if (c.tag === 0 || (op.allGenerations && c.tag !== model.generation)) next.pages.set(p, { id: c.id, tag: model.generation });
    }
  }
  return next;
}

function same(a, b) {
  if (a.enabled !== b.enabled || a.generation !== b.generation || a.pages.size !== b.pages.size) return false;
  for (const [p, c] of a.pages) {
    const d = b.pages.get(p);
    if (d === undefined || d.id !== c.id || d.tag !== c.tag) return false;
  }
  return true;
}

/** An interrupted rewrite: each page holds the same content, in its old state or the rewrite's target. */
function partialRewrite(model, target, actual) {
  if (actual.enabled !== model.enabled || actual.generation !== model.generation) return false;
  if (actual.pages.size !== model.pages.size) return false;
  for (const [p, c] of model.pages) {
    const d = actual.pages.get(p);
    const t = target.pages.get(p);
    if (d === undefined || t === undefined || d.id !== c.id || (d.tag !== c.tag && d.tag !== t.tag)) return false;
  }
  return true;
}

async function readActual(home, violations, where) {
  const dist = (p) => new URL(`../dist/lib/${p}`, import.meta.url).href;
  const { AccountService } = await import(dist('account/index.js'));
  const { PageBlobService } = await import(dist('blob/index.js'));
  const { LocalPageStore } = await import(dist('store/index.js'));
  const accounts = await AccountService.open(home, { env: {} });
  const store = await LocalPageStore.open(join(home, 'store'));
  try {
    const blobs = new PageBlobService(store, accounts);
    const props = await accounts.getAccount(ACCOUNT);
    const status = await blobs.getEncryptionStatus(REF);
    const data = await blobs.readRange(REF, 0, BLOB_PAGES * PAGE);
    const pages = new Map();
    for (const r of status.ranges) {
      for (let p = r.start / PAGE; p <= (r.end + 1) / PAGE - 1; p++) {
        const bytes = Buffer.from(data.subarray(p * PAGE, (p + 1) * PAGE));
        const id = bytes.readUInt32BE(4);
        if (!bytes.equals(pagePlaintext(id, p))) {
          violations.push(`${where}: page ${p} (${r.state}, generation ${r.generation}) does not decrypt to any written plaintext`);
        }
        pages.set(p, { id, tag: r.generation ?? 0 });
      }
    }
    for (let p = 0; p < BLOB_PAGES; p++) {
      if (!pages.has(p) && data.subarray(p * PAGE, (p + 1) * PAGE).some((b) => b !== 0)) {
        violations.push(`${where}: unallocated page ${p} reads non-zero`);
      }
    }
    return { enabled: props.encryption.services.blob.enabled, generation: props.currentGeneration, pages };
  } finally {
    await store.close();
    await accounts.close();
  }
}

function runChild(home, seed, firstId, killAfterMs) {
  return runKilledChild(process.execPath, [CHILD, home, String(seed), String(firstId)], killAfterMs);
}

export async function runBlobCrashSuite({ cycles, seed = Date.now() >>> 0, maxKillMs = 400, log = () => {} }) {
  const home = mkdtempSync(join(tmpdir(), 'vdcrypt-crash-blob-'));
  const random = rng(seed);
  const violations = [];
  const started = Date.now();
  const totals = { acked: 0, inFlightApplied: 0, inFlightDropped: 0, inFlightPartial: 0, encryptedPagesSeen: 0, plaintextPagesSeen: 0 };
  let model = { enabled: true, generation: 1, pages: new Map() };
  let nextId = 1;
  try {
    for (let cycle = 0; cycle < cycles && violations.length === 0; cycle++) {
      const res = await runChild(home, Math.floor(random() * 2 ** 32), nextId, Math.floor(random() * maxKillMs));
      let pending = null;
      for (const line of res.lines) {
        if (line.startsWith('B ')) {
          pending = JSON.parse(line.slice(2));
        } else if (line.startsWith('A ') && pending !== null && Number(line.slice(2)) === pending.id) {
          model = apply(model, pending);
          totals.acked++;
          pending = null;
        } else if (line.startsWith('F ')) {
          violations.push(`cycle ${cycle}: an operation failed: ${line}`);
        }
      }
      nextId += res.lines.length + 2;
      if (res.signal !== 'SIGKILL') {
        violations.push(`cycle ${cycle}: the child exited by itself (${res.code}): ${res.stderr.slice(-2000)}`);
        break;
      }
      const where = `cycle ${cycle} (seed ${seed})`;
      let actual;
      try {
        actual = await readActual(home, violations, where);
      } catch (e) {
        violations.push(`${where}: reopening failed: ${e.code ?? ''} ${e.message}`);
        break;
      }
      for (const c of actual.pages.values()) {
        if (c.tag === 0) totals.plaintextPagesSeen++;
        else totals.encryptedPagesSeen++;
      }
      const withOp = pending === null ? model : apply(model, pending);
      if (same(actual, model)) {
        if (pending !== null) totals.inFlightDropped++;
      } else if (pending !== null && same(actual, withOp)) {
        totals.inFlightApplied++;
        model = withOp;
      } else if (pending?.kind === 'encrypt' && partialRewrite(model, withOp, actual)) {
        totals.inFlightPartial++;
        model = actual;
      } else {
        violations.push(`${where}: state after the kill matches neither the acknowledged model nor the in-flight ` +
          `operation ${JSON.stringify(pending)} (enabled ${actual.enabled}/${model.enabled}, generation ` +
          `${actual.generation}/${model.generation}, pages ${actual.pages.size}/${model.pages.size})`);
      }
      if (cycle % 50 === 49) log(`${cycle + 1} cycles, ${totals.acked} acknowledged operations, ${violations.length} violations`);
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
  return { cycles, seed, violations, seconds: (Date.now() - started) / 1000, ...totals };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const cycles = Number(process.env.VDCRYPT_CRASH_CYCLES ?? 500);
  const result = await runBlobCrashSuite({ cycles, log: (l) => process.stderr.write(`${l}\n`) });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  process.exitCode = result.violations.length === 0 ? 0 : 1;
}
