/** Fixtures for the store tests: a temporary directory per LocalPageStore. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { LocalPageStore, type LocalPageStoreOptions, MemoryPageStore } from '../../lib/store/index.js';
import type { StoreFixture } from './conformance.js';

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'vdcrypt-store-'));
}

export async function memoryFixture(): Promise<StoreFixture> {
  const store = new MemoryPageStore();
  return { store, dispose: () => store.close() };
}

export async function localFixture(options: LocalPageStoreOptions = {}): Promise<StoreFixture & { store: LocalPageStore; dir: string }> {
  const dir = tempDir();
  const store = await LocalPageStore.open(dir, options);
  return {
    store, dir,
    async dispose() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
