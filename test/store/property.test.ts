/**
 * Property tests: random sequences of write / clear / resize / snapshot / diff against both stores, compared
 * after every step with a page-by-page model (bytes, tags, ranges, snapshot contents, diffs).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { PAGE_SIZE, type PageRange, type PageStore, type TaggedRange } from '../../lib/store/index.js';
import type { StoreFactory } from './conformance.js';
import { localFixture, memoryFixture } from './helpers.js';

const MAX_PAGES = 48;
const ref = { account: 'p', container: 'c', blob: 'b' };

interface ModelPage { tag: number; write: number }
interface ModelBlob { pages: number; content: (ModelPage | undefined)[] }

type Op =
  | { kind: 'write'; start: number; count: number; tag: number }
  | { kind: 'clear'; start: number; count: number }
  | { kind: 'resize'; pages: number }
  | { kind: 'snapshot' }
  | { kind: 'deleteSnapshot'; index: number }
  | { kind: 'diff'; index: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('write' as const), start: fc.nat(MAX_PAGES), count: fc.integer({ min: 1, max: 12 }), tag: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('clear' as const), start: fc.nat(MAX_PAGES), count: fc.integer({ min: 1, max: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('resize' as const), pages: fc.integer({ min: 1, max: MAX_PAGES }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('snapshot' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteSnapshot' as const), index: fc.nat(4) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('diff' as const), index: fc.nat(4) }) },
);

/** Page bytes unique to (write, page). */
function pageData(write: number, page: number): Buffer {
  const b = Buffer.alloc(PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE; i += 4) b.writeUInt32LE(((write * 7919) ^ (page * 104729) ^ i) >>> 0, i);
  return b;
}

function modelRanges(m: ModelBlob): TaggedRange[] {
  const out: TaggedRange[] = [];
  for (let p = 0; p < m.pages; p++) {
    const c = m.content[p];
    if (c === undefined) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last.end + 1 === p * PAGE_SIZE && last.tag === c.tag) last.end += PAGE_SIZE;
    else out.push({ start: p * PAGE_SIZE, end: (p + 1) * PAGE_SIZE - 1, tag: c.tag });
  }
  return out;
}

function modelBytes(m: ModelBlob): Buffer {
  return Buffer.concat(Array.from({ length: m.pages }, (_, p) => {
    const c = m.content[p];
    return c === undefined ? Buffer.alloc(PAGE_SIZE) : pageData(c.write, p);
  }));
}

function pagesOf(ranges: PageRange[]): number[] {
  return ranges.flatMap((r) => Array.from({ length: (r.end + 1 - r.start) / PAGE_SIZE }, (_, i) => r.start / PAGE_SIZE + i));
}

async function expectSame(store: PageStore, target: typeof ref & { snapshot?: string }, m: ModelBlob): Promise<void> {
  expect((await store.getBlob(target)).size).toBe(m.pages * PAGE_SIZE);
  expect(await store.listRanges(target)).toEqual(modelRanges(m));
  const { data, ranges } = await store.readPages(target, 0, m.pages * PAGE_SIZE);
  expect(Buffer.from(data).equals(modelBytes(m))).toBe(true);
  expect(ranges).toEqual(modelRanges(m));
}

async function runOps(factory: StoreFactory, ops: Op[]): Promise<void> {
  const { store, dispose } = await factory();
  try {
    await store.createContainer(ref.account, ref.container);
    await store.createBlob(ref, 32 * PAGE_SIZE);
    let model: ModelBlob = { pages: 32, content: [] };
    const snaps: { id: string; model: ModelBlob }[] = [];
    let writes = 0;
    for (const op of ops) {
      if (op.kind === 'write' || op.kind === 'clear') {
        const inside = op.start + op.count <= model.pages;
        const call = op.kind === 'write'
          ? store.writePages(ref, op.start * PAGE_SIZE,
            Buffer.concat(Array.from({ length: op.count }, (_, i) => pageData(writes + 1, op.start + i))), op.tag)
          : store.clearPages(ref, op.start * PAGE_SIZE, op.count * PAGE_SIZE);
        if (!inside) {
          await expect(call).rejects.toMatchObject({ code: 'InvalidPageRange' });
          continue;
        }
        await call;
        writes++;
        const content = [...model.content];
        for (let p = op.start; p < op.start + op.count; p++) {
          content[p] = op.kind === 'write' ? { tag: op.tag, write: writes } : undefined;
        }
        model = { pages: model.pages, content };
      } else if (op.kind === 'resize') {
        await store.resizeBlob(ref, op.pages * PAGE_SIZE);
        model = { pages: op.pages, content: model.content.slice(0, op.pages) };
      } else if (op.kind === 'snapshot') {
        snaps.push({ id: await store.createSnapshot(ref), model });
      } else if (op.kind === 'deleteSnapshot') {
        const s = snaps[op.index];
        if (s === undefined) continue;
        await store.deleteSnapshot({ ...ref, snapshot: s.id });
        snaps.splice(op.index, 1);
      } else {
        const s = snaps[op.index];
        if (s === undefined) continue;
        const diff = await store.diffRanges(ref, s.id);
        const updated: number[] = [];
        const cleared: number[] = [];
        for (let p = 0; p < model.pages; p++) {
          const now = model.content[p];
          const then = s.model.content[p];
          if (now !== undefined && (then === undefined || then.write !== now.write)) updated.push(p);
          if (now === undefined && then !== undefined) cleared.push(p);
        }
        expect(pagesOf(diff.updated)).toEqual(updated);
        expect(pagesOf(diff.cleared)).toEqual(cleared);
      }
      await expectSame(store, ref, model);
    }
    for (const s of snaps) await expectSame(store, { ...ref, snapshot: s.id }, s.model);
  } finally {
    await dispose();
  }
}

describe('stores against a page-by-page model', () => {
  it('MemoryPageStore', async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), (ops) => runOps(memoryFixture, ops)), { numRuns: 150 });
  });

  it('LocalPageStore', async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), (ops) => runOps(() => localFixture(), ops)), { numRuns: 40 });
  });
});
