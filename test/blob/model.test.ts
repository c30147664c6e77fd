/**
 * Property test: random sequences of page-blob operations against a simple model of every page's bytes and
 * encryption state, across toggles, AEK generations, base-image writes, rewrites, resizes and snapshots.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { encryptBlob, type EncryptionRange } from '../../lib/blob/index.js';
import type { BlobRef } from '../../lib/store/index.js';
import { type Fixture, fixture, PAGE, pattern } from './helpers.js';

const PAGES = 48;

type Op =
  | { kind: 'put'; page: number; count: number; seed: number; baseImage: boolean }
  | { kind: 'clear'; page: number; count: number }
  | { kind: 'toggle' }
  | { kind: 'roll' }
  | { kind: 'encrypt'; allGenerations: boolean }
  | { kind: 'resize'; pages: number }
  | { kind: 'snapshot' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), page: fc.nat(PAGES - 1), count: fc.integer({ min: 1, max: 12 }), seed: fc.nat(1_000_000), baseImage: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('clear' as const), page: fc.nat(PAGES - 1), count: fc.integer({ min: 1, max: 12 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'toggle' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'roll' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('encrypt' as const), allGenerations: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('resize' as const), pages: fc.integer({ min: 8, max: PAGES }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'snapshot' as const }) },
);

/** The model: per page, the bytes' seed and the state (0 = plaintext, g = generation), or null if unallocated. */
interface ModelPage { seed: number; page: number; tag: number }
interface Model { pages: (ModelPage | null)[]; size: number; enabled: boolean; generation: number }

function expectedRanges(pages: readonly (ModelPage | null)[]): EncryptionRange[] {
  const out: EncryptionRange[] = [];
  pages.forEach((p, i) => {
    if (p === null) return;
    const state = p.tag === 0 ? 'plaintext' : 'encrypted';
    const generation = p.tag === 0 ? null : p.tag;
    const last = out[out.length - 1];
    if (last !== undefined && last.end + 1 === i * PAGE && last.generation === generation) last.end = (i + 1) * PAGE - 1;
    else out.push({ start: i * PAGE, end: (i + 1) * PAGE - 1, state, generation });
  });
  return out;
}

function expectedBytes(pages: readonly (ModelPage | null)[], count: number): Buffer {
  const out = Buffer.alloc(count * PAGE);
  for (let i = 0; i < count; i++) {
    const p = pages[i];
    if (p !== null && p !== undefined) pattern(1, p.page, p.seed).copy(out, i * PAGE);
  }
  return out;
}

let f: Fixture;
beforeAll(async () => {
  f = await fixture('memory');
});
afterAll(async () => f.close());

let run = 0;
it('random operation sequences match the model, bytes and encryption state', async () => {
  await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
    run++;
    const account = `acct${run}`;
    await f.accounts.createAccount(account, { region: 'westus' });
    await f.blobs.createContainer(account, 'c');
    const ref: BlobRef = { account, container: 'c', blob: 'disk' };
    await f.blobs.createBlob(ref, PAGES * PAGE);
    const model: Model = { pages: new Array<ModelPage | null>(PAGES).fill(null), size: PAGES, enabled: true, generation: 1 };
    const snapshots: { id: string; pages: (ModelPage | null)[]; size: number }[] = [];

    for (const op of ops) {
      switch (op.kind) {
        case 'put': {
          const count = Math.min(op.count, model.size - op.page);
          if (count <= 0) break;
          const data = Buffer.concat(Array.from({ length: count }, (_, k) => pattern(1, op.page + k, op.seed + k)));
          await f.blobs.putPages(ref, op.page * PAGE, data, { mode: op.baseImage ? 'base-image' : 'account' });
          const tag = !op.baseImage && model.enabled ? model.generation : 0;
          for (let k = 0; k < count; k++) model.pages[op.page + k] = { seed: op.seed + k, page: op.page + k, tag };
          break;
        }
        case 'clear': {
          const count = Math.min(op.count, model.size - op.page);
          if (count <= 0) break;
          await f.blobs.clearPages(ref, op.page * PAGE, count * PAGE);
          for (let k = 0; k < count; k++) model.pages[op.page + k] = null;
          break;
        }
        case 'toggle':
          model.enabled = !model.enabled;
          await f.accounts.updateAccount(account, { encryption: model.enabled });
          break;
        case 'roll':
          await f.accounts.rollDataKey(account);
          model.generation++;
          break;
        case 'encrypt':
          if (!model.enabled) {
            await expect(encryptBlob(f.blobs, ref)).rejects.toMatchObject({ code: 'AccountEncryptionDisabled' });
            break;
          }
          await encryptBlob(f.blobs, ref, { allGenerations: op.allGenerations });
          for (const p of model.pages) {
            if (p !== null && (p.tag === 0 || op.allGenerations)) p.tag = model.generation;
          }
          break;
        case 'resize':
          await f.blobs.resizeBlob(ref, op.pages * PAGE);
          for (let i = op.pages; i < PAGES; i++) model.pages[i] = null;
          model.size = op.pages;
          break;
        case 'snapshot':
          snapshots.push({ id: await f.blobs.createSnapshot(ref), pages: model.pages.map((p) => (p === null ? null : { ...p })), size: model.size });
          break;
      }
      const status = await f.blobs.getEncryptionStatus(ref);
      expect(status.ranges).toEqual(expectedRanges(model.pages));
      expect(status.serverEncrypted).toBe(model.pages.every((p) => p === null || p.tag !== 0));
    }
    const bytes = Buffer.from(await f.blobs.readRange(ref, 0, model.size * PAGE));
    expect(bytes.equals(expectedBytes(model.pages, model.size))).toBe(true);
    for (const s of snapshots) {
      const snapRef = { ...ref, snapshot: s.id };
      expect(Buffer.from(await f.blobs.readRange(snapRef, 0, s.size * PAGE)).equals(expectedBytes(s.pages, s.size))).toBe(true);
      expect((await f.blobs.getEncryptionStatus(snapRef)).ranges).toEqual(expectedRanges(s.pages));
    }
  }), { numRuns: 40 });
});
