/**
 * Fuzz: fast-check mutations of valid images (bit flips, field overwrites with boundary values, byte
 * smears, truncation; checksums re-fixed half of the time so mutations reach the deep checks). Every case
 * must either open and read consistently or fail with a VhdFormatError: no other exception, no case slower
 * than the time limit, bytes read bounded by the files' sizes, memory bounded.
 *
 * In `npm test`: VDCRYPT_FUZZ_CASES defaults to 5000. Long form: `npm run fuzz:vhd` (100,000 cases), or
 * `VDCRYPT_FUZZ_CASES=100000 npx vitest run test/vhd/fuzz.test.ts`; VDCRYPT_FUZZ_SEED replays a run.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { encodeFooter, inspectImage, openImage, VhdFormatError } from '../../lib/vhd/index.js';
import { FOOTER, FOOTER_SIZE, HEADER, LOCATOR, PARENT_LOCATOR_SIZE, type FieldSpec } from '../../lib/vhd/layout.js';
import { buildSparseVhd, fixChecksums, prng, randomLayer } from './gen.js';

const CASES = Number(process.env.VDCRYPT_FUZZ_CASES ?? 5000);
const SEED = process.env.VDCRYPT_FUZZ_SEED === undefined ? (Date.now() ^ Math.floor(Math.random() * 0x1_0000_0000)) | 0 : Number(process.env.VDCRYPT_FUZZ_SEED);
const CASE_TIME_LIMIT_MS = 2000;
const MEMORY_LIMIT = 256 * 1024 * 1024;
const BLOCK = 4096;
const SIZE = 40 * BLOCK + 1536; // not a multiple of the block size

const BOUNDARY = [0n, 1n, 2n, 511n, 512n, 513n, 1024n, 1536n, 0x7fffffffn, 0x80000000n, 0xfffffffen, 0xffffffffn,
  2n ** 32n, 2n ** 41n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 62n, 2n ** 63n, 2n ** 64n - 1n];

interface Seed { name: string; bytes: Uint8Array; headerOffset: number; tableOffset: number; entries: number }

let dir: string;
let seeds: Seed[];
let parentSize = 0;

beforeAll(async () => {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  dir = await mkdtemp(join(base, 'vhd-fuzz-'));
  const rnd = prng(42);
  const parentLayer = randomLayer(SIZE, BLOCK, rnd);
  const parent = buildSparseVhd({ virtualSize: SIZE, blockSize: BLOCK, blocks: parentLayer.blocks });
  await writeFile(join(dir, 'parent.vhd'), parent.bytes);
  parentSize = parent.bytes.length;
  const dyn = buildSparseVhd({ virtualSize: SIZE, blockSize: BLOCK, blocks: randomLayer(SIZE, BLOCK, rnd).blocks });
  const diff = buildSparseVhd({ virtualSize: SIZE, blockSize: 8192, blocks: randomLayer(SIZE, 8192, rnd).blocks,
    parent: { uniqueId: parent.uniqueId, name: 'parent.vhd', locators: [{ code: 'W2ru', path: '.\\parent.vhd' }, { code: 'W2ku', path: join(dir, 'parent.vhd') }] } });
  const fixed = new Uint8Array(SIZE + FOOTER_SIZE);
  fixed.set(new Uint8Array(SIZE).map((_, i) => (i % 3000 < 700 ? i & 0xff : 0)));
  fixed.set(encodeFooter({ diskType: 'fixed', virtualSize: SIZE }), SIZE);
  const entries = Math.ceil(SIZE / BLOCK);
  seeds = [
    { name: 'dynamic', bytes: dyn.bytes, headerOffset: dyn.headerOffset, tableOffset: dyn.tableOffset, entries },
    { name: 'differencing', bytes: diff.bytes, headerOffset: diff.headerOffset, tableOffset: diff.tableOffset, entries: Math.ceil(SIZE / 8192) },
    { name: 'fixed', bytes: fixed, headerOffset: -1, tableOffset: -1, entries: 0 },
  ];
});
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'field'; pick: number; value: bigint; random: number }
  | { kind: 'smear'; at: number; bytes: Uint8Array }
  | { kind: 'truncate'; keep: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  { arbitrary: fc.record({ kind: fc.constant('field' as const), pick: fc.nat(), value: fc.constantFrom(...BOUNDARY), random: fc.nat() }), weight: 4 },
  fc.record({ kind: fc.constant('smear' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }),
);

const caseArb = fc.record({
  seed: fc.nat(),
  mutations: fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
  fix: fc.boolean(),
  format: fc.constantFrom('auto' as const, 'auto' as const, 'vhd' as const),
});

/** Fields worth overwriting in a seed: footer, header, locator entries and BAT entries. */
function fieldsOf(seed: Seed, length: number): Array<{ at: number; spec: FieldSpec }> {
  const out: Array<{ at: number; spec: FieldSpec }> = [];
  for (const spec of Object.values(FOOTER)) {
    if (spec.size > 8) continue;
    out.push({ at: length - FOOTER_SIZE, spec });
    if (seed.headerOffset > 0) out.push({ at: 0, spec });
  }
  if (seed.headerOffset > 0) {
    for (const spec of Object.values(HEADER)) if (spec.size <= 8) out.push({ at: seed.headerOffset, spec });
    for (let i = 0; i < 2; i++) {
      for (const spec of Object.values(LOCATOR)) out.push({ at: seed.headerOffset + HEADER.parentLocators.offset + i * PARENT_LOCATOR_SIZE, spec });
    }
    for (let i = 0; i < seed.entries; i++) out.push({ at: seed.tableOffset + i * 4, spec: { offset: 0, size: 4 } });
  }
  return out;
}

function mutate(seed: Seed, mutations: Mutation[], fix: boolean): Uint8Array {
  let bytes = seed.bytes.slice();
  for (const m of mutations) {
    if (bytes.length === 0) break;
    if (m.kind === 'flip') {
      const at = m.at % bytes.length;
      bytes[at] = (bytes[at] ?? 0) ^ (1 << m.bit);
    } else if (m.kind === 'smear') {
      bytes.set(m.bytes.subarray(0, Math.max(0, bytes.length - (m.at % bytes.length))), m.at % bytes.length);
    } else if (m.kind === 'truncate') {
      bytes = bytes.slice(0, m.keep % (bytes.length + 1));
    } else {
      const fields = fieldsOf(seed, bytes.length);
      const f = fields[m.pick % fields.length];
      if (f === undefined || f.at + f.spec.offset + f.spec.size > bytes.length || f.at < 0) continue;
      // Boundary values, or a value near the file size, or a random one.
      const value = m.random % 5 === 0 ? BigInt(bytes.length - (m.random % 1024)) : m.random % 7 === 0 ? BigInt(m.random) : m.value;
      const masked = value & ((1n << BigInt(f.spec.size * 8)) - 1n);
      for (let k = 0; k < f.spec.size; k++) {
        bytes[f.at + f.spec.offset + k] = Number((masked >> BigInt(8 * (f.spec.size - 1 - k))) & 0xffn);
      }
    }
  }
  if (fix && bytes.length >= FOOTER_SIZE) fixChecksums(bytes, seed.headerOffset > 0 ? seed.headerOffset : FOOTER_SIZE, seed.headerOffset > 0);
  return bytes;
}

export interface FuzzFigures { cases: number; opened: number; refused: Map<string, number>; ms: number; slowestMs: number; peakArrayBuffers: number }

async function runCase(path: string, format: 'auto' | 'vhd', fileSize: number): Promise<string> {
  let image;
  try {
    image = await openImage(path, { format });
  } catch (error) {
    if (error instanceof VhdFormatError) return error.code;
    throw error;
  }
  try {
    let yielded = 0;
    let last = -1;
    for await (const e of image.extents({ chunkSize: 16384 })) {
      if (e.offset <= last || e.length === 0 || e.offset % 512 !== 0 || e.offset + e.length > image.virtualSize) {
        throw new Error(`bad extent ${e.offset}+${e.length} after ${last}`);
      }
      last = e.offset + e.length - 1;
      yielded += e.length;
    }
    const chainBytes = fileSize + (image.chain.length > 1 ? parentSize : 0);
    if (image.stats.bytesRead > chainBytes) throw new Error(`read ${image.stats.bytesRead} bytes from ${chainBytes} bytes of files`);
    if (yielded !== image.stats.bytesYielded) throw new Error('stats disagree with the extents');
    const len = Math.min(image.virtualSize, 65536);
    const head = await image.read(0, len);
    const tail = await image.read(image.virtualSize - len, len);
    if (head.length !== len || tail.length !== len) throw new Error('short read');
    return 'ok';
  } catch (error) {
    if (error instanceof VhdFormatError) return error.code; // e.g. a bitmap read past a truncated file
    throw error;
  } finally {
    await image.close();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`case exceeded ${ms} ms`)), ms); }),
  ]);
}

describe('VHD fuzz', () => {
  it(`${CASES} mutated images: VhdFormatError or success, nothing else`, async () => {
    const figures: FuzzFigures = { cases: 0, opened: 0, refused: new Map(), ms: 0, slowestMs: 0, peakArrayBuffers: 0 };
    const start = performance.now();
    let caseNo = 0;
    await fc.assert(fc.asyncProperty(caseArb, async ({ seed: which, mutations, fix, format }) => {
      const seed = seeds[which % seeds.length];
      if (seed === undefined) return;
      const bytes = mutate(seed, mutations, fix);
      const path = join(dir, `case-${seed.name}.vhd`);
      await writeFile(path, bytes);
      const t0 = performance.now();
      const outcome = await withTimeout(runCase(path, format, bytes.length), CASE_TIME_LIMIT_MS);
      if (caseNo++ % 5 === 0) await withTimeout(inspectImage(path, { format }), CASE_TIME_LIMIT_MS);
      const dt = performance.now() - t0;
      figures.cases++;
      figures.slowestMs = Math.max(figures.slowestMs, dt);
      if (outcome === 'ok') figures.opened++;
      else figures.refused.set(outcome, (figures.refused.get(outcome) ?? 0) + 1);
      if (caseNo % 256 === 0) {
        const ab = process.memoryUsage().arrayBuffers;
        figures.peakArrayBuffers = Math.max(figures.peakArrayBuffers, ab);
        if (ab > MEMORY_LIMIT) throw new Error(`arrayBuffers grew to ${ab} bytes`);
      }
    }), { numRuns: CASES, seed: SEED, endOnFailure: true });
    figures.ms = performance.now() - start;
    const refused = [...figures.refused.entries()].sort((a, b) => b[1] - a[1]).map(([c, k]) => `${c}=${k}`).join(' ');
    console.log(`[fuzz-vhd] seed=${SEED} cases=${figures.cases} opened=${figures.opened} refused=${figures.cases - figures.opened} ` +
      `ms=${Math.round(figures.ms)} slowestCaseMs=${figures.slowestMs.toFixed(1)} peakArrayBuffers=${figures.peakArrayBuffers}\n[fuzz-vhd] ${refused}`);
    expect(figures.cases).toBe(CASES);
    expect((await stat(dir)).isDirectory()).toBe(true);
  }, Math.max(60_000, CASES * 20));
});
