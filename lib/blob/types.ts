/**
 * Types of the page-blob layer: the encryption state of pages, the account-key interface it asks, and the
 * progress events of long operations.
 *
 * Every stored page carries a store tag (lib/store): {@link PLAINTEXT_TAG} for a plaintext page, g >= 1 for a
 * page encrypted with AES-256-XTS under AEK generation g of its account (tweak = page index in the blob).
 */
import type { XtsCipher } from '../xts/index.js';

/** Store tag of a plaintext page; tags >= 1 name the AEK generation that encrypted the page. */
export const PLAINTEXT_TAG = 0;

/** How a stored page is kept at rest. */
export type EncryptionState = 'encrypted' | 'plaintext';

/** A run of allocated pages with one encryption state (inclusive `end`, as Azure's page ranges). */
export interface EncryptionRange {
  start: number;
  end: number;
  state: EncryptionState;
  /** The AEK generation of encrypted pages; null for plaintext. */
  generation: number | null;
}

/** What `vdcrypt status` reports for a blob or snapshot. */
export interface EncryptionStatus {
  /** `account/container/blob`, with `@snapshot` for a snapshot. */
  blob: string;
  size: number;
  /**
   * Azure's `x-ms-server-encrypted`: true only when every allocated page is encrypted (so also for a blob
   * with no allocated page, whose stored bytes are all encrypted vacuously).
   */
  serverEncrypted: boolean;
  allocatedBytes: number;
  encryptedBytes: number;
  plaintextBytes: number;
  unallocatedBytes: number;
  ranges: EncryptionRange[];
}

/**
 * What the blob layer needs from the account layer; `AccountService` (lib/account) implements it. Key
 * refusals reject with the key layer's typed 403 errors and are passed through unchanged.
 */
export interface AccountKeys {
  /** Rejects with a 404 `StorageAccountNotFound` for an unknown account. */
  getAccount(name: string): Promise<unknown>;
  isEncryptionEnabled(name: string): Promise<boolean>;
  /** A cipher of an AEK generation (default: current); valid only until the caller's next await. */
  getCipher(name: string, generation?: number): Promise<{ generation: number; cipher: XtsCipher }>;
}

/** Progress of a long operation (encrypt, copy, import, export). */
export interface Progress {
  /** Bytes processed so far (written or rewritten). */
  bytesDone: number;
  /** Bytes to process in all (allocated bytes of the work list), when known. */
  bytesTotal: number;
  /** Bytes passed over without I/O: unallocated ranges, or pages already in the wanted state. */
  bytesSkipped: number;
}

export interface LongOperationOptions {
  onProgress?: (progress: Progress) => void;
  /** Stops the operation between chunks; it rejects with the signal's reason. Every finished chunk stays. */
  signal?: AbortSignal;
}
