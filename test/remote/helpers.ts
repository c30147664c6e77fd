/** Shared set-up of the remote tests: one Azurite per test file, AzurePageStores on it, cleanup between tests. */
import { BlobServiceClient } from '@azure/storage-blob';

import { AzurePageStore } from '../../lib/remote/index.js';
import type { StoreFixture } from '../store/conformance.js';
import type { AzuriteServer } from './azurite.js';

/** Quick retries: a local server answers at once or is down. */
export const TEST_RETRY = { maxTries: 3, retryDelayInMs: 50, maxRetryDelayInMs: 200, tryTimeoutInMs: 30_000 };

export function azureStore(server: AzuriteServer): AzurePageStore {
  return new AzurePageStore({ accounts: server.configs(), retry: TEST_RETRY });
}

/** A plain SDK client that knows nothing of vdcrypt. */
export function plainClient(server: AzuriteServer, account: string): BlobServiceClient {
  return BlobServiceClient.fromConnectionString(server.connectionString(account), { retryOptions: TEST_RETRY });
}

/** Delete every container of every account (Azurite frees names at once). */
export async function wipe(server: AzuriteServer): Promise<void> {
  for (const account of server.accounts) {
    const svc = plainClient(server, account);
    for await (const c of svc.listContainers()) await svc.getContainerClient(c.name).delete();
  }
}

export function azureFixture(server: () => AzuriteServer): () => Promise<StoreFixture> {
  return async () => {
    const s = server();
    await wipe(s);
    const store = azureStore(s);
    return { store, dispose: () => store.close() };
  };
}
