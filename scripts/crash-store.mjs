#!/usr/bin/env node
// Crash suite for LocalPageStore (issue 4). Each cycle starts scripts/crash-store-child.mjs on the same store
// directory, lets it write, clear, resize, snapshot and bulk-fill for a random moment, SIGKILLs it, reopens the
// store in this process and checks:
//   - the store opens (recovery runs by itself) and the blob equals the model of acknowledged operations,
//     with the one operation in flight at the kill either fully applied or not at all; for a fill in flight,
//     every batch acknowledged by onBatch is there and the rest is a prefix of its extents (no extent half
//     there, none without those before it);
//   - every allocated page's bytes carry its own page number and the tag the store reports (bytes and tag
//     never disagree, no torn page), snapshots included, and known snapshots still hold their content;
//   - unallocated pages are zeros in the raw data file (cleared pages and uncommitted writes were punched).
// Compiled code is loaded from dist/ (run `npx tsc -p tsconfig.build.json` first).
//
// usage: VDCRYPT_CRASH_CYCLES=500 node scripts/crash-store.mjs [dir]
//        VDCRYPT_CRASH_FIU=1 adds fault injection (fiu-run: fdatasync/fsync/pwrite fail at random)
import { mkdtempSync, openSync, readSync, closeSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { runKilledChild } from './crash-child.mjs';
import { pageBytes, REF, rng } from './crash-store-model.mjs';

const CHILD = fileURLToPath(new URL('./crash-store-child.mjs', import.meta.url));
const FIU_CONFIG = [
  '-c', 'enable_random name=posix/io/sync/fdatasync,probability=0.04',
  '-c', 'enable_random name=posix/io/sync/fsync,probability=0.04',
  '-c', 'enable_random name=posix/io/rw/pwrite,probability=0.01',
];

/** The model after `op`; a fill only up to page `cut` (its extents ending at or before it). */
function apply(state, op, cut = Infinity) {
  if (op.kind === 'create') return { pages: op.pages, content: new Map() };
  if (state === null) return null;
  const next = { pages: state.pages, content: new Map(state.content) };
  if (op.kind === 'write') for (let p = op.start; p < op.start + op.count; p++) next.content.set(p, { id: op.id, tag: op.tag });
  if (op.kind === 'fill') {
    for (const [start, count, tag] of op.extents) {
      if (start + count > cut) break;
      for (let p = start; p < start + count; p++) next.content.set(p, { id: op.id, tag });
    }
  }
  if (op.kind === 'clear') for (let p = op.start; p < op.start + op.count; p++) next.content.delete(p);
  if (op.kind === 'resize') {
    next.pages = op.pages;
    for (const p of next.content.keys()) if (p >= op.pages) next.content.delete(p);
  }
  return next;
}

function sameState(a, b) {
  if (a === null || b === null) return a === b;
  if (a.pages !== b.pages || a.content.size !== b.content.size) return false;
  for (const [p, c] of a.content) {
    const d = b.content.get(p);
    if (d === undefined || d.id !== c.id || d.tag !== c.tag) return false;
  }
  return true;
}

/** Read a blob or snapshot back as a model state, recording any self-inconsistent page as a violation. */
async function readState(store, ref, violations, where) {
  let info;
  try {
    info = await store.getBlob(ref);
  } catch (e) {
    if (e.code === 'BlobNotFound' || e.code === 'SnapshotNotFound' || e.code === 'ContainerNotFound') return null;
    throw e;
  }
  const content = new Map();
  const pages = info.size / 512;
  const CHUNK = 4096;
  for (let first = 0; first < pages; first += CHUNK) {
    const n = Math.min(CHUNK, pages - first);
    const { data, ranges } = await store.readPages(ref, first * 512, n * 512);
    const tagOf = new Map();
    for (const r of ranges) for (let p = r.start / 512; p <= (r.end - 511) / 512; p++) tagOf.set(p, r.tag);
    for (let i = 0; i < n; i++) {
      const p = first + i;
      const bytes = data.subarray(i * 512, (i + 1) * 512);
      const tag = tagOf.get(p);
      if (tag === undefined) {
        if (bytes.some((b) => b !== 0)) violations.push(`${where}: unallocated page ${p} reads non-zero`);
        continue;
      }
      const view = new DataView(bytes.buffer, bytes.byteOffset, 512);
      const id = view.getUint32(4);
      const expected = pageBytes(id, p, tag);
      if (!Buffer.from(bytes).equals(Buffer.from(expected))) {
        violations.push(`${where}: page ${p} (tag ${tag}) holds bytes that do not match its tag/page (torn or mixed: header id ${id} page ${view.getUint32(8)} tag ${view.getUint32(12)})`);
      }
      content.set(p, { id, tag });
    }
  }
  return { pages, content, snapshots: info.snapshots };
}

/** Unallocated pages must be zeros in the raw data file, not just through the API. */
function checkRawZeros(dir, state, violations) {
  const data = join(dir, 'data');
  const redo = readdirSync(data).find((n) => n.endsWith('.redo'));
  if (redo === undefined || state === null) return;
  const file = join(data, redo.replace(/\.redo$/, '.dat'));
  const size = statSync(file).size;
  if (size > state.pages * 512) violations.push(`data file is ${size} bytes, longer than the blob (${state.pages * 512})`);
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(512);
    for (let p = 0; p * 512 < size; p++) {
      if (state.content.has(p)) continue;
      readSync(fd, buf, 0, 512, p * 512);
      if (buf.some((b) => b !== 0)) {
        violations.push(`raw data file holds bytes at unallocated page ${p}`);
        break;
      }
    }
  } finally {
    closeSync(fd);
  }
}

function runChild(dir, seed, firstId, { killAfterMs, fiu }) {
  const args = [CHILD, dir, String(seed), String(firstId)];
  return fiu ? runKilledChild('fiu-run', ['-x', ...FIU_CONFIG, process.execPath, ...args], killAfterMs)
    : runKilledChild(process.execPath, args, killAfterMs);
}

export async function runCrashSuite({ cycles, dir, seed = Date.now() >>> 0, fiu = false, maxKillMs = 400, log = () => {} }) {
  const { LocalPageStore } = await import(new URL('../dist/lib/store/index.js', import.meta.url).href);
  const own = dir === undefined;
  dir ??= mkdtempSync(join(tmpdir(), 'vdcrypt-crash-'));
  const random = rng(seed);
  const violations = [];
  const started = Date.now();
  let model = null;
  const snapshots = new Map(); // id -> state at snapshot time
  let nextId = 1;
  const totals = {
    acked: 0, inFlightApplied: 0, inFlightDropped: 0, failures: 0, refusedAfterFailure: 0,
    fillsAcked: 0, fillBatchesAcked: 0, fillsCut: 0, fillsCutPastAck: 0,
  };
  for (let cycle = 0; cycle < cycles && violations.length === 0; cycle++) {
    const killAfterMs = Math.floor(random() * maxKillMs);
    const res = await runChild(dir, Math.floor(random() * 2 ** 32), nextId + 1, { killAfterMs, fiu });
    let pending = null;
    for (const line of res.lines) {
      const [kind, rest, extra] = [line[0], line.slice(2).split(' ')[0], line.slice(2).split(' ')[1]];
      if (kind === 'B') {
        pending = JSON.parse(line.slice(2));
        pending.ackedCut = 0;
      } else if (kind === 'K' && pending !== null && Number(rest) === pending.id) {
        // A durable batch of a fill: every extent ending at or before page `extra` must survive from now on.
        pending.ackedCut = Number(extra);
        totals.fillBatchesAcked++;
      } else if (kind === 'A' && pending !== null && Number(rest) === pending.id) {
        model = apply(model, pending);
        if (pending.kind === 'snapshot') {
          if (snapshots.size >= 2) snapshots.delete([...snapshots.keys()].sort()[0]);
          snapshots.set('?', model);
        }
        totals.acked++;
        if (pending.kind === 'fill') totals.fillsAcked++;
        pending = null;
      } else if (kind === 'F') {
        totals.failures++;
      } else if (kind === 'P') {
        if (rest === 'StoreIoFailed') totals.refusedAfterFailure++;
        else violations.push(`cycle ${cycle}: after a failed call the store answered '${rest}' instead of refusing`);
      }
      void extra;
    }
    nextId += res.lines.length + 2;
    if (!res.signal && res.code !== 5 && res.code !== 3 && !fiu) {
      violations.push(`cycle ${cycle}: child exited with ${res.code}: ${res.stderr.slice(-2000)}`);
      break;
    }
    let store;
    try {
      store = await LocalPageStore.open(dir);
    } catch (e) {
      violations.push(`cycle ${cycle}: the store did not open after the kill: ${e.code} ${e.cause ?? e.message}`);
      break;
    }
    try {
      const where = `cycle ${cycle}`;
      const actual = await readState(store, REF, violations, where);
      const withOp = pending === null ? model : apply(model, pending);
      const base = actual === null ? null : { pages: actual.pages, content: actual.content };
      // A fill cut by the kill: its acknowledged batches are there, and of the rest a prefix of its extents
      // (batches commit in stream order, all or nothing), never a page of a later extent without the earlier.
      const cuts = pending?.kind === 'fill'
        ? [pending.ackedCut, ...pending.extents.map(([start, count]) => start + count).filter((c) => c > pending.ackedCut)]
        : [];
      const fillCut = cuts.find((c) => sameState(base, apply(model, pending, c)));
      if (pending?.kind === 'fill' && fillCut !== undefined) {
        model = apply(model, pending, fillCut);
        totals.fillsCut++;
        if (fillCut > pending.ackedCut) totals.fillsCutPastAck++;
      } else if (pending?.kind !== 'fill' && sameState(base, model)) {
        if (pending !== null) totals.inFlightDropped++;
      } else if (pending !== null && pending.kind !== 'fill' && sameState(base, withOp)) {
        model = withOp;
        totals.inFlightApplied++;
      } else {
        const diffs = [];
        const all = new Set([...(model?.content.keys() ?? []), ...(base?.content.keys() ?? [])]);
        for (const p of all) {
          const m = model?.content.get(p);
          const a = base?.content.get(p);
          if (m?.id !== a?.id || m?.tag !== a?.tag) diffs.push(`page ${p}: expected ${JSON.stringify(m)} got ${JSON.stringify(a)}`);
          if (diffs.length > 5) break;
        }
        violations.push(`${where}: blob differs from every acknowledged history (pending ${JSON.stringify(pending)}; size ${base?.pages} vs ${model?.pages}): ${diffs.join('; ')}`);
      }
      // Snapshots: self-consistent pages (checked by readState); the newest acknowledged one equals the model then.
      for (const snap of actual?.snapshots ?? []) await readState(store, { ...REF, snapshot: snap }, violations, `${where} snapshot ${snap}`);
      checkRawZeros(dir, base, violations);
    } finally {
      await store.close();
    }
    log(`cycle ${cycle}: ${res.lines.filter((l) => l[0] === 'A').length} acks, killed after ${killAfterMs} ms, pending ${pending?.kind ?? '-'}`);
  }
  const result = { cycles, seed, dir, durationMs: Date.now() - started, violations, ...totals };
  if (own && violations.length === 0) rmSync(dir, { recursive: true, force: true });
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const cycles = Number(process.env.VDCRYPT_CRASH_CYCLES ?? 500);
  const fiu = process.env.VDCRYPT_CRASH_FIU === '1';
  const result = await runCrashSuite({
    cycles, dir: process.argv[2], fiu, seed: process.env.VDCRYPT_CRASH_SEED ? Number(process.env.VDCRYPT_CRASH_SEED) : undefined,
    log: process.env.VDCRYPT_CRASH_VERBOSE ? console.log : () => {},
  });
  console.log(JSON.stringify({ ...result, violations: result.violations.slice(0, 20) }, null, 2));
  process.exit(result.violations.length === 0 ? 0 : 1);
}
