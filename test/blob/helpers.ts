/** Shared set-up of the page-blob tests: a temporary home with an AccountService and a chosen store. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AccountService, accountIdentity } from '../../lib/account/index.js';
import { PageBlobService } from '../../lib/blob/index.js';
import type { LocalKeyVault } from '../../lib/keys/index.js';
import { LocalPageStore, MemoryPageStore, type PageStore } from '../../lib/store/index.js';
import { passphrase } from '../keys/helpers.js';

export const PAGE = 512;
export const REGION = 'westus';
export const KEY_PERMISSIONS = ['get', 'wrapKey', 'unwrapKey'] as const;

export interface Fixture {
  home: string;
  accounts: AccountService;
  store: PageStore;
  blobs: PageBlobService;
  close(): Promise<void>;
}

export async function fixture(kind: 'memory' | 'local' = 'memory'): Promise<Fixture> {
  const home = await mkdtemp(join(tmpdir(), 'vdcrypt-blob-'));
  const accounts = await AccountService.open(home, { env: {} });
  const store = kind === 'memory' ? new MemoryPageStore() : await LocalPageStore.open(join(home, 'store'));
  const blobs = new PageBlobService(store, accounts);
  return {
    home, accounts, store, blobs,
    async close() {
      await store.close();
      await accounts.close();
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** Put `account` on a customer-managed key in a fresh local vault; returns the vault and the key name. */
export async function useCustomerKey(f: Fixture, account: string): Promise<{ vault: LocalKeyVault; key: string }> {
  const vault = await f.accounts.vaults.createVault(`${account}vault`, { region: REGION, credential: passphrase() });
  await vault.createKey('cmk', { kty: 'RSA', size: 2048 });
  await vault.grantAccess('cmk', accountIdentity(account), KEY_PERMISSIONS);
  await f.accounts.updateAccount(account, { keySource: 'Microsoft.Keyvault', keyUri: `${vault.uri}/keys/cmk` });
  return { vault, key: 'cmk' };
}

/** Deterministic page content: every byte of page `page` derived from (seed, page). */
export function pattern(pages: number, firstPage: number, seed: number): Buffer {
  const out = Buffer.alloc(pages * PAGE);
  for (let p = 0; p < pages; p++) {
    for (let i = 0; i < PAGE; i += 4) out.writeUInt32LE(((seed * 2654435761) ^ ((firstPage + p) * 40503) ^ i) >>> 0, p * PAGE + i);
  }
  return out;
}
