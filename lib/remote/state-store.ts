/**
 * The state blob protocol: each page blob's companion state (state.ts) read and written with ETags and cached
 * per blob as last seen.
 *
 *   read   conditional GET `If-None-Match: <cached etag>`     304 → the cache is current
 *   write  `If-Match: <etag>` (`If-None-Match: *` the first)  412 → reload, re-apply the change, retry
 *
 * A second process writing the same blob is detected by the ETag: its update is kept and ours re-applied to it.
 * `settled` hands out a state only after crash recovery (recovery.ts) has settled its write-ahead records.
 */
import type { PageBlobClient } from '@azure/storage-blob';

import { blobKey, describeRef } from '../store/common.js';
import { type BlobRef, PAGE_SIZE, StoreError } from '../store/index.js';
import type { AzureClients } from './clients.js';
import { azureErrorCode, azureStatus } from './errors.js';
import { STATE_SUFFIX } from './names.js';
import { recover } from './recovery.js';
import { type BlobState, cloneState, emptyState, needsRecovery, parseState, serializeState } from './state.js';

const STATE_WRITE_TRIES = 8;

/** The state blob of a page blob as last seen: its parsed state and ETag (undefined: no state blob yet). */
export interface LoadedState {
  state: BlobState;
  etag: string | undefined;
}

/** A base blob ready for page requests: its page blob, its settled state, and the state writer (ETag-checked). */
export interface SettledBlob {
  client: PageBlobClient;
  loaded: LoadedState;
  save(mutate: (s: BlobState) => void): Promise<void>;
}

export class StateStore {
  readonly #clients: AzureClients;
  readonly #states = new Map<string, LoadedState>();

  constructor(clients: AzureClients) {
    this.#clients = clients;
  }

  /** The blob's state, fresh (conditional GET), with any write-ahead records of an interrupted call settled. */
  async settled(ref: BlobRef): Promise<LoadedState> {
    const loaded = await this.#load(ref);
    if (needsRecovery(loaded.state)) {
      await recover(this.#clients.pageBlob(ref), loaded.state, (mutate) => this.save(ref, loaded, mutate));
    }
    return loaded;
  }

  /** {@link settled}, with the page blob and the state writer bound to it. */
  async open(ref: BlobRef): Promise<SettledBlob> {
    const loaded = await this.settled(ref);
    return { client: this.#clients.pageBlob(ref), loaded, save: (mutate) => this.save(ref, loaded, mutate) };
  }

  /** Write an empty state for a new blob (it replaces any left by an interrupted delete). */
  async create(ref: BlobRef): Promise<void> {
    const body = serializeState(emptyState());
    const res = await this.#clients.stateBlob(ref).upload(body, body.length);
    this.#states.set(blobKey(ref), { state: emptyState(), etag: res.etag });
  }

  /**
   * Write the state blob: apply `mutate` to a copy of the state and upload it with `If-Match` (or
   * `If-None-Match: *` for the first one). If someone else changed it meanwhile, reload and re-apply.
   */
  async save(ref: BlobRef, loaded: LoadedState, mutate: (s: BlobState) => void): Promise<void> {
    const client = this.#clients.stateBlob(ref);
    for (let attempt = 0; ; attempt++) {
      const next = cloneState(loaded.state);
      mutate(next);
      const body = serializeState(next);
      try {
        const res = await client.upload(body, body.length, {
          conditions: loaded.etag !== undefined ? { ifMatch: loaded.etag } : { ifNoneMatch: '*' },
          blobHTTPHeaders: { blobContentType: 'application/json' },
        });
        loaded.state = next;
        loaded.etag = res.etag;
        return;
      } catch (err) {
        const lost = azureStatus(err) === 412 || azureErrorCode(err) === 'BlobAlreadyExists';
        if (!lost || attempt + 1 >= STATE_WRITE_TRIES) throw err;
        const fresh = await this.#load(ref);
        loaded.state = fresh.state;
        loaded.etag = fresh.etag;
      }
    }
  }

  /** Drop the cached state of a blob (deleted). */
  forget(ref: BlobRef): void {
    this.#states.delete(blobKey(ref));
  }

  /** Drop the cached states of a container's blobs (deleted). */
  forgetContainer(account: string, container: string): void {
    const prefix = JSON.stringify([account, container]).slice(0, -1);
    for (const k of this.#states.keys()) if (k.startsWith(prefix)) this.#states.delete(k);
  }

  clear(): void {
    this.#states.clear();
  }

  async #load(ref: BlobRef): Promise<LoadedState> {
    const key = blobKey(ref);
    const cached = this.#states.get(key);
    const client = this.#clients.stateBlob(ref);
    try {
      const res = await client.download(0, undefined, cached?.etag !== undefined ? { conditions: { ifNoneMatch: cached.etag } } : {});
      const bytes = await readBody(res.readableStreamBody);
      const loaded = cached ?? { state: emptyState(), etag: undefined };
      loaded.state = parseState(bytes, describeRef(ref));
      loaded.etag = res.etag;
      this.#states.set(key, loaded);
      return loaded;
    } catch (err) {
      if (azureStatus(err) === 304 && cached !== undefined) return cached;
      if (azureStatus(err) !== 404 || azureErrorCode(err) === 'ContainerNotFound') throw err;
      // No state blob: a blob created by a call interrupted before its state, or one never written. It must
      // exist and hold no pages, else its bytes have no tags.
      const ranges = await this.#clients.pageBlob(ref).getPageRanges(0, PAGE_SIZE * 1024 * 1024);
      if ((ranges.pageRange ?? []).length > 0) {
        throw new StoreError('StoreCorrupt', `${describeRef(ref)} holds pages but has no ${STATE_SUFFIX} blob`);
      }
      const loaded: LoadedState = { state: emptyState(), etag: undefined };
      this.#states.set(key, loaded);
      return loaded;
    }
  }
}

async function readBody(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  if (stream === undefined) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks);
}
