/** Differencing chains from our generator, read through openImage and checked against the reference model. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openImage, type DiskImage } from '../../lib/vhd/index.js';
import { buildSparseVhd, modelRead, prng, randomLayer, type ModelLayer } from './gen.js';

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'vhd-chain-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

async function readAllExtents(image: DiskImage, skipZeroRuns = false): Promise<Uint8Array> {
  const out = new Uint8Array(image.virtualSize);
  let last = -1;
  for await (const e of image.extents({ skipZeroRuns, chunkSize: 8192 })) {
    expect(e.offset).toBeGreaterThan(last);
    expect(e.offset % 512).toBe(0);
    expect(e.length % 512).toBe(0);
    expect(e.length).toBeLessThanOrEqual(8192);
    expect(Math.floor(e.offset / 8192)).toBe(Math.floor((e.offset + e.length - 1) / 8192));
    last = e.offset + e.length - 1;
    out.set(e.data, e.offset);
  }
  return out;
}

describe('differencing chains against the reference model', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`seed ${seed}: ${2 + (seed % 2)} layers, random bitmaps, relative and absolute locators`, async () => {
      const rnd = prng(seed);
      const depth = 2 + (seed % 2);
      const virtualSize = 512 * (200 + Math.floor(rnd() * 300)); // not a multiple of the block size
      const blockSizes = [4096, 8192, 16384];
      const layers: ModelLayer[] = [];
      let parentId: Uint8Array | null = null;
      let parentName = '';
      const sub = join(dir, `s${seed}`);
      await import('node:fs/promises').then((fs) => fs.mkdir(join(sub, 'kids'), { recursive: true }));
      for (let level = 0; level < depth; level++) {
        const blockSize = blockSizes[Math.floor(rnd() * blockSizes.length)] ?? 4096;
        const { blocks, model } = randomLayer(virtualSize, blockSize, rnd);
        const name = level === 0 ? `base.vhd` : `kids/l${level}.vhd`;
        const path = join(sub, name);
        let gen;
        if (parentId === null) {
          gen = buildSparseVhd({ virtualSize, blockSize, blocks });
          model.kind = 'dynamic';
        } else {
          const relative = level === 1 ? '..\\base.vhd' : `.\\l${level - 1}.vhd`;
          const locators = seed % 3 === 0
            ? [{ code: 'W2ku' as const, path: join(sub, parentName) }]
            : [{ code: 'W2ru' as const, path: relative, spaceInSectors: seed % 2 === 0 }, { code: 'W2ku' as const, path: 'C:\\nowhere\\x.vhd' }];
          gen = buildSparseVhd({ virtualSize, blockSize, blocks, parent: { uniqueId: parentId, name: parentName, locators } });
        }
        await writeFile(path, gen.bytes);
        layers.unshift(model);
        parentId = gen.uniqueId;
        parentName = name;
      }
      const expected = modelRead(layers, virtualSize);
      const image = await openImage(join(sub, parentName));
      try {
        expect(image.format).toBe('differencing');
        expect(image.chain.length).toBe(depth);
        expect(Buffer.from(await readAllExtents(image)).equals(Buffer.from(expected))).toBe(true);
        expect(Buffer.from(await readAllExtents(image, true)).equals(Buffer.from(expected))).toBe(true);
        expect(Buffer.from(await image.read(0, virtualSize)).equals(Buffer.from(expected))).toBe(true);
        for (let k = 0; k < 20; k++) {
          const off = Math.floor(rnd() * virtualSize);
          const len = Math.floor(rnd() * (virtualSize - off));
          expect(Buffer.from(await image.read(off, len)).equals(Buffer.from(expected.subarray(off, off + len)))).toBe(true);
        }
      } finally {
        await image.close();
      }
    });
  }
});
