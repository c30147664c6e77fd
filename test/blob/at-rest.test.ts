/**
 * At rest on the default local store: a recognisable plaintext marker may appear in the store's files (data,
 * metadata, journals, temporary files: every file under the home) only for pages that are meant to be
 * plaintext, and disappears once those pages are rewritten encrypted.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterEach, beforeEach, expect, it } from 'vitest';

import { encryptBlob } from '../../lib/blob/index.js';
import type { BlobRef } from '../../lib/store/index.js';
import { type Fixture, fixture, PAGE } from './helpers.js';

const ref: BlobRef = { account: 'acct1', container: 'disks', blob: 'disk' };
let f: Fixture;

beforeEach(async () => {
  f = await fixture('local');
  await f.accounts.createAccount('acct1', { region: 'westus' });
  await f.blobs.createContainer('acct1', 'disks');
  await f.blobs.createBlob(ref, 4 * 1024 * 1024);
});
afterEach(async () => f.close());

/** Pages filled with an ASCII marker naming the test and the page. */
function marked(label: string, pages: number): Buffer {
  const out = Buffer.alloc(pages * PAGE);
  for (let p = 0; p < pages; p++) {
    const line = Buffer.from(`VDCRYPT-AT-REST-${label}-PAGE-${String(p).padStart(4, '0')}|`);
    for (let i = 0; i + line.length <= PAGE; i += line.length) line.copy(out, p * PAGE + i);
  }
  return out;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** Every file under the home that contains `needle`. */
async function filesContaining(needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const file of await filesUnder(f.home)) {
    if ((await readFile(file)).includes(Buffer.from(needle))) hits.push(file);
  }
  return hits;
}

it('encrypted writes never reach the disk as plaintext; base-image pages do until they are encrypted', async () => {
  await f.blobs.putPages(ref, 0, marked('SECRET', 32)); // encryption on: ciphertext only
  await f.blobs.putPages(ref, 64 * PAGE, marked('BASE', 32), { mode: 'base-image' });
  await f.blobs.putPages(ref, 128 * PAGE, marked('OVERWRITE', 8), { mode: 'base-image' });
  await f.blobs.putPages(ref, 128 * PAGE, marked('SECRET2', 8)); // overwrite plaintext pages with encrypted ones

  expect(await filesContaining('VDCRYPT-AT-REST-SECRET-')).toEqual([]);
  expect(await filesContaining('VDCRYPT-AT-REST-SECRET2-')).toEqual([]);
  expect((await filesContaining('VDCRYPT-AT-REST-BASE-')).length).toBeGreaterThan(0); // the check can see plaintext
  expect(await filesContaining('VDCRYPT-AT-REST-OVERWRITE-')).toEqual([]); // overwritten bytes do not linger

  await encryptBlob(f.blobs, ref);
  expect(await filesContaining('VDCRYPT-AT-REST-BASE-')).toEqual([]);
  // Still all readable.
  expect(Buffer.from(await f.blobs.readRange(ref, 64 * PAGE, 32 * PAGE)).equals(marked('BASE', 32))).toBe(true);
  expect(Buffer.from(await f.blobs.readRange(ref, 0, 32 * PAGE)).equals(marked('SECRET', 32))).toBe(true);
});

it('cleared plaintext pages leave no trace', async () => {
  await f.blobs.putPages(ref, 0, marked('CLEARED', 16), { mode: 'base-image' });
  expect((await filesContaining('VDCRYPT-AT-REST-CLEARED-')).length).toBeGreaterThan(0);
  await f.blobs.clearPages(ref, 0, 16 * PAGE);
  expect(await filesContaining('VDCRYPT-AT-REST-CLEARED-')).toEqual([]);
});

it('the bulk fill path (fillPages) keeps the same rule: encrypted extents never reach the disk as plaintext', async () => {
  async function* extents(label: string): AsyncGenerator<{ offset: number; data: Uint8Array }> {
    for (let i = 0; i < 4; i++) yield { offset: (256 + i * 64) * PAGE, data: marked(`${label}${i}`, 32) };
  }
  await f.blobs.fillPages(ref, extents('FILLSECRET'), { batchBytes: 64 * PAGE });
  expect(await filesContaining('VDCRYPT-AT-REST-FILLSECRET')).toEqual([]);
  await f.blobs.createBlob({ ...ref, blob: 'base' }, 4 * 1024 * 1024);
  await f.blobs.fillPages({ ...ref, blob: 'base' }, extents('FILLBASE'), { mode: 'base-image' });
  expect((await filesContaining('VDCRYPT-AT-REST-FILLBASE')).length).toBeGreaterThan(0);
  expect(Buffer.from(await f.blobs.readRange(ref, 256 * PAGE, 32 * PAGE)).equals(marked('FILLSECRET0', 32))).toBe(true);
});
