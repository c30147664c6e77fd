/**
 * Snapshots and diffs. A snapshot is an Azure snapshot of the page blob that carries its own tags: the state
 * blob is snapshotted first and the data snapshot's metadata names that state snapshot
 * (`vdcrypt_store_state`), so the pair is taken atomically from the tags' point of view.
 *
 *   createSnapshot   Snapshot Blob <blob>.vdcrypt-state ──▶ S'   then   Snapshot Blob <blob> {vdcrypt_store_state: S'}
 *   deleteSnapshot   Delete <blob>?snapshot=S            then   Delete <blob>.vdcrypt-state?snapshot=S'
 *
 * Diffs use Get Page Ranges `prevsnapshot` where the server has it (Azurite answers 501, #812) and otherwise
 * the write versions of the two state snapshots.
 */
import type { PageBlobClient } from '@azure/storage-blob';

import { blobKey, describeRef } from '../store/common.js';
import {
  type BlobOrSnapshotRef, type BlobRef, type DiffResult, isSnapshotRef, PAGE_SIZE, type PageRange, type SnapshotRef,
  StoreError,
} from '../store/index.js';
import { diffRuns, pagesOfRange } from '../store/ranges.js';
import type { AzureClients } from './clients.js';
import { azureErrorCode, azureStatus, ignoreNotFound } from './errors.js';
import { RESERVED_META_PREFIX, userMetadata } from './names.js';
import { clipSpans, intersectSpans, spansOfAzure, spansOfRuns, subtractSpans, toPageRanges } from './spans.js';
import { type BlobState, parseState } from './state.js';
import type { StateStore } from './state-store.js';

/** Metadata name on a data snapshot naming the state blob's snapshot that holds its tags. */
export const SNAPSHOT_STATE_KEY = `${RESERVED_META_PREFIX}state`;

export class Snapshots {
  readonly #clients: AzureClients;
  readonly #states: StateStore;
  readonly #snapshotStates = new Map<string, BlobState>();
  /** Per account: false once the server answered Get Page Ranges `prevsnapshot` with 501. */
  readonly #diffSupported = new Map<string, boolean>();

  constructor(clients: AzureClients, states: StateStore) {
    this.#clients = clients;
    this.#states = states;
  }

  /** The state of a blob (settled) or of a snapshot; `metadata`: the snapshot's, if already fetched. */
  async stateOf(ref: BlobOrSnapshotRef, metadata?: Record<string, string>): Promise<BlobState> {
    return isSnapshotRef(ref) ? this.#snapshotState(ref, metadata) : (await this.#states.settled(ref)).state;
  }

  /** The snapshot ids of a blob, oldest first. */
  async ids(ref: BlobRef): Promise<string[]> {
    const ids: string[] = [];
    const container = this.#clients.container(ref.account, ref.container);
    for await (const b of container.listBlobsFlat({ prefix: ref.blob, includeSnapshots: true })) {
      if (b.name === ref.blob && b.snapshot !== undefined && b.snapshot !== '') ids.push(b.snapshot);
    }
    return ids.sort();
  }

  /** Snapshot the state blob, then the page blob naming the state snapshot; the data snapshot's id. */
  async create(ref: BlobRef): Promise<string> {
    const loaded = await this.#states.settled(ref);
    if (loaded.etag === undefined) await this.#states.save(ref, loaded, () => undefined);
    const props = await this.#clients.pageBlob(ref).getProperties();
    const stateSnap = await this.#clients.stateBlob(ref).createSnapshot();
    const snap = await this.#clients.pageBlob(ref).createSnapshot({
      metadata: { ...userMetadata(props.metadata), [SNAPSHOT_STATE_KEY]: stateSnap.snapshot ?? '' },
    });
    if (snap.snapshot === undefined) throw new StoreError('StoreIoFailed', 'Snapshot Blob returned no snapshot id');
    return snap.snapshot;
  }

  /** Delete the data snapshot, then the state snapshot it names. */
  async delete(ref: SnapshotRef): Promise<void> {
    const client = this.#clients.pageBlob(ref);
    const props = await client.getProperties();
    await client.delete();
    const stateSnap = props.metadata?.[SNAPSHOT_STATE_KEY];
    if (stateSnap !== undefined) await ignoreNotFound(this.#clients.stateBlob(ref).withSnapshot(stateSnap).delete());
  }

  /** The pages of `ref` that changed since `previousSnapshot` (checked here), within `window`. */
  async diff(ref: BlobOrSnapshotRef, previousSnapshot: string, window: PageRange | undefined): Promise<DiffResult> {
    const snapshots = await this.ids(ref);
    if (!snapshots.includes(previousSnapshot) || (isSnapshotRef(ref) && previousSnapshot >= ref.snapshot)) {
      throw new StoreError('PreviousSnapshotNotFound', `${previousSnapshot} is not an earlier snapshot of ${describeRef(ref)}`);
    }
    const client = this.#clients.pageBlob(ref);
    const props = await client.getProperties();
    const target = await this.stateOf(ref, props.metadata);
    const previous = await this.#snapshotState({ ...ref, snapshot: previousSnapshot });
    const pages = (props.contentLength ?? 0) / PAGE_SIZE;
    const { start, end } = window === undefined ? { start: 0, end: pages } : pagesOfRange(window);
    const stop = Math.min(end, pages);
    if (stop <= start) return { updated: [], cleared: [] };
    const fromState = diffRuns(target.runs, previous.runs, start, stop, (s) => s.version);
    if (this.#diffSupported.get(ref.account) !== false) {
      const fromServer = await serverDiff(client, previousSnapshot, start, stop, target, previous);
      // The server's answer is used when it is a real diff: it must agree with the write versions in the two
      // state snapshots. A server that ignores `prevsnapshot` (Azurite answers with the plain page list) or
      // answers 501 is remembered and the state's diff is used from then on.
      if (fromServer !== undefined && sameDiff(fromServer, fromState)) {
        this.#diffSupported.set(ref.account, true);
        return fromServer;
      }
      this.#diffSupported.set(ref.account, false);
    }
    return fromState;
  }

  clear(): void {
    this.#snapshotStates.clear();
  }

  /** A snapshot's state: the state blob snapshot its metadata names. Immutable, so cached. */
  async #snapshotState(ref: SnapshotRef, metadata?: Record<string, string>): Promise<BlobState> {
    const key = `${blobKey(ref)}@${ref.snapshot}`;
    const cached = this.#snapshotStates.get(key);
    if (cached !== undefined) return cached;
    const md = metadata ?? (await this.#clients.pageBlob(ref).getProperties()).metadata;
    const stateSnap = md?.[SNAPSHOT_STATE_KEY];
    if (stateSnap === undefined) {
      throw new StoreError('StoreCorrupt', `snapshot ${describeRef(ref)} names no state snapshot (${SNAPSHOT_STATE_KEY})`);
    }
    const bytes = await this.#clients.stateBlob(ref).withSnapshot(stateSnap).downloadToBuffer();
    const state = parseState(bytes, `${describeRef(ref)} (state ${stateSnap})`);
    this.#snapshotStates.set(key, state);
    return state;
  }
}

/** Get Page Ranges `prevsnapshot`, limited to the pages the states know; undefined where the server lacks it. */
async function serverDiff(client: PageBlobClient, previousSnapshot: string, start: number, stop: number, target: BlobState,
  previous: BlobState): Promise<DiffResult | undefined> {
  try {
    const res = await client.getPageRangesDiff(start * PAGE_SIZE, (stop - start) * PAGE_SIZE, previousSnapshot);
    const targetPages = clipSpans(spansOfRuns(target.runs), start, stop);
    const prevPages = clipSpans(spansOfRuns(previous.runs), start, stop);
    return {
      updated: toPageRanges(intersectSpans(spansOfAzure(res.pageRange ?? []), targetPages)),
      cleared: toPageRanges(subtractSpans(intersectSpans(spansOfAzure(res.clearRange ?? []), prevPages), targetPages)),
    };
  } catch (err) {
    if (azureStatus(err) === 501 || azureErrorCode(err) === 'NotImplemented') return undefined;
    throw err;
  }
}

function sameDiff(a: DiffResult, b: DiffResult): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
