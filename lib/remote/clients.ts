/**
 * Connections: one vdcrypt account is one Azure storage account (one BlobServiceClient: connection string,
 * account key, SAS URL, or the Azurite development account); container and blob names map directly (names.ts).
 * A page blob's companion state blob is the block blob `<blob>.vdcrypt-state` beside it.
 */
import {
  BlobServiceClient, type BlockBlobClient, type ContainerClient, type PageBlobClient, type StorageRetryOptions,
  StorageRetryPolicyType, StorageSharedKeyCredential,
} from '@azure/storage-blob';

import { type BlobOrSnapshotRef, type BlobRef, isSnapshotRef } from '../store/index.js';
import * as v from '../store/validate.js';
import { RemoteError } from './errors.js';
import { checkBlobName, checkContainerName, STATE_SUFFIX } from './names.js';

/** How to reach one storage account. */
export type AzureAccountConfig =
  | { connectionString: string }
  | { url: string; accountName: string; accountKey: string }
  | { sasUrl: string }
  | { client: BlobServiceClient };

/** Retries tuned for page uploads: 5 tries, 0.5 s doubling to 16 s, 2 min per try (a 4 MiB Put Page). */
export const DEFAULT_RETRY: StorageRetryOptions = {
  retryPolicyType: StorageRetryPolicyType.EXPONENTIAL, maxTries: 5, retryDelayInMs: 500, maxRetryDelayInMs: 16_000,
  tryTimeoutInMs: 120_000,
};

/** The SDK clients of the configured accounts, created on first use and kept. */
export class AzureClients {
  readonly #configs: Record<string, AzureAccountConfig>;
  readonly #retry: StorageRetryOptions;
  readonly #services = new Map<string, BlobServiceClient>();

  constructor(configs: Record<string, AzureAccountConfig>, retry: StorageRetryOptions) {
    this.#configs = configs;
    this.#retry = retry;
  }

  /** The Azure client of an account. */
  service(account: string): BlobServiceClient {
    v.checkName('account', account);
    let svc = this.#services.get(account);
    if (svc !== undefined) return svc;
    const cfg = this.#configs[account];
    if (cfg === undefined) {
      throw new RemoteError('AccountNotConfigured', `account '${account}' has no Azure connection configured`, { status: 404 });
    }
    const opts = { retryOptions: this.#retry, keepAliveOptions: { enable: true } };
    if ('client' in cfg) svc = cfg.client;
    else if ('connectionString' in cfg) svc = BlobServiceClient.fromConnectionString(cfg.connectionString, opts);
    else if ('sasUrl' in cfg) svc = new BlobServiceClient(cfg.sasUrl, undefined, opts);
    else svc = new BlobServiceClient(cfg.url, new StorageSharedKeyCredential(cfg.accountName, cfg.accountKey), opts);
    this.#services.set(account, svc);
    return svc;
  }

  container(account: string, container: string): ContainerClient {
    v.checkName('account', account);
    return this.service(account).getContainerClient(checkContainerName(container));
  }

  /** The page blob (or its snapshot) that holds the bytes. */
  pageBlob(ref: BlobOrSnapshotRef): PageBlobClient {
    const client = this.container(ref.account, ref.container).getPageBlobClient(checkBlobName(ref.blob));
    return isSnapshotRef(ref) ? client.withSnapshot(ref.snapshot) : client;
  }

  /** The companion block blob that holds the page blob's tags (state.ts). */
  stateBlob(ref: BlobRef): BlockBlobClient {
    return this.container(ref.account, ref.container).getBlockBlobClient(checkBlobName(ref.blob) + STATE_SUFFIX);
  }
}
