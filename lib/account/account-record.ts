/**
 * The stored form of a storage account, `<home>/accounts/<name>.json` (0600, atomic writes), and its projection
 * to the property names of the Azure Storage resource provider (`Microsoft.Storage/storageAccounts`:
 * `encryption.keySource`, `encryption.services.blob.enabled|lastEnabledTime`, `encryption.keyvaultproperties`).
 *
 * The file holds every AEK generation wrapped under the account's current key-encryption key: sealed with the
 * service master key (`Microsoft.Storage`) or wrapped by a vault key (`Microsoft.Keyvault`, with the versioned key
 * identifier that wrapped it). Nothing in it is secret in the clear.
 */
import { statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { ensurePrivateDirectory, removeStaleTempFiles, writeFileAtomic } from '../keys/atomic-file.js';
import type { SealedBox, WrapAlgorithm } from '../keys/index.js';
import { AccountError } from './errors.js';

export const ACCOUNTS_DIR = 'accounts';
export const ACCOUNT_FORMAT = 1;
const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;
const FILE_SUFFIX = '.json';

export type KeySource = 'Microsoft.Storage' | 'Microsoft.Keyvault';
export const KEY_SOURCES: readonly KeySource[] = ['Microsoft.Storage', 'Microsoft.Keyvault'];

export type WrappedAccountKey =
  | { keySource: 'Microsoft.Storage'; alg: 'A256GCM'; box: SealedBox }
  | { keySource: 'Microsoft.Keyvault'; kid: string; alg: WrapAlgorithm; value: string };

export interface DataKeyGeneration {
  generation: number;
  created: string;
  wrapped: WrappedAccountKey;
}

export interface KeyVaultProperties {
  keyname: string;
  /** Empty: follow the newest version of the key. */
  keyversion: string;
  keyvaulturi: string;
  currentVersionedKeyIdentifier: string;
  lastKeyRotationTimestamp: string;
}

export interface AccountRecord {
  format: number;
  name: string;
  region: string;
  creationTime: string;
  encryption: {
    enabled: boolean;
    lastEnabledTime: string | null;
    keySource: KeySource;
    keyvaultproperties: KeyVaultProperties | null;
  };
  currentGeneration: number;
  generations: DataKeyGeneration[];
}

/** Account properties as `getAccount` returns them (Azure names). */
export interface AccountProperties {
  name: string;
  region: string;
  creationTime: string;
  encryption: {
    keySource: KeySource;
    services: { blob: { enabled: boolean; lastEnabledTime?: string; keyType: 'Account' } };
    keyvaultproperties?: KeyVaultProperties;
  };
  currentGeneration: number;
  dataKeyGenerations: { generation: number; created: string; keySource: KeySource; keyIdentifier?: string }[];
}

/** An account's key-vault identity: what the vault's access list names. */
export function accountIdentity(name: string): string {
  return `account:${name}`;
}

export function assertAccountName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new TypeError(`account name must be a string, got ${typeof name}`);
  if (!ACCOUNT_NAME.test(name)) {
    throw new AccountError('AccountNameInvalid', `account name must be 3-24 lowercase letters and digits, got '${name}'`);
  }
}

export function toProperties(record: AccountRecord): AccountProperties {
  const { encryption } = record;
  return {
    name: record.name,
    region: record.region,
    creationTime: record.creationTime,
    encryption: {
      keySource: encryption.keySource,
      services: { blob: { enabled: encryption.enabled, ...(encryption.lastEnabledTime === null ? {} : { lastEnabledTime: encryption.lastEnabledTime }), keyType: 'Account' } },
      ...(encryption.keyvaultproperties === null ? {} : { keyvaultproperties: { ...encryption.keyvaultproperties } }),
    },
    currentGeneration: record.currentGeneration,
    dataKeyGenerations: record.generations.map((g) => ({
      generation: g.generation, created: g.created, keySource: g.wrapped.keySource,
      ...(g.wrapped.keySource === 'Microsoft.Keyvault' ? { keyIdentifier: g.wrapped.kid } : {}),
    })),
  };
}

/** What changes whenever the file at `path` does: inode (a rename puts a new file in place), size and both times. */
function fileIdentity(path: string): string {
  const st = statSync(path, { bigint: true });
  return `${st.ino}:${st.size}:${st.ctimeNs}:${st.mtimeNs}`;
}

export class AccountStore {
  readonly directory: string;
  /** The text of each account file as last read, with the file's identity then (see {@link read}). */
  readonly #texts = new Map<string, { signature: string; text: string }>();

  constructor(home: string) {
    this.directory = join(home, ACCOUNTS_DIR);
  }

  async init(): Promise<void> {
    await ensurePrivateDirectory(this.directory);
    await removeStaleTempFiles(this.directory);
  }

  #path(name: string): string {
    return join(this.directory, `${name}${FILE_SUFFIX}`);
  }

  /**
   * The account's record, or null when there is none. Every write puts a new file in place (a rename), so a
   * file whose inode, size and change time are those of the last read holds the same text: that text is kept,
   * and a read then costs one stat on this thread instead of four file-system calls queued on libuv's pool,
   * where bulk writes keep them waiting (every Put Page of a fill asks whether encryption is on).
   * Another process's change is seen at the next read, as before.
   */
  async read(name: string): Promise<AccountRecord | null> {
    assertAccountName(name);
    const path = this.#path(name);
    let text: string;
    try {
      const signature = fileIdentity(path);
      const kept = this.#texts.get(name);
      if (kept !== undefined && kept.signature === signature) {
        text = kept.text;
      } else {
        text = await readFile(path, 'utf8');
        // Kept only when the file did not change while it was read.
        if (fileIdentity(path) === signature) this.#texts.set(name, { signature, text });
        else this.#texts.delete(name);
      }
    } catch (error) {
      this.#texts.delete(name);
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    let record: AccountRecord;
    try {
      record = JSON.parse(text) as AccountRecord;
    } catch (error) {
      throw new AccountError('AccountCorrupted', `the file of account '${name}' is not JSON`, { cause: error });
    }
    if (record.format !== ACCOUNT_FORMAT || record.name !== name || !Array.isArray(record.generations)
      || typeof record.encryption !== 'object' || record.encryption === null) {
      throw new AccountError('AccountCorrupted', `the file of account '${name}' does not describe it`);
    }
    return record;
  }

  async require(name: string): Promise<AccountRecord> {
    const record = await this.read(name);
    if (record === null) throw new AccountError('StorageAccountNotFound', `storage account '${name}' does not exist`);
    return record;
  }

  async write(record: AccountRecord): Promise<void> {
    this.#texts.delete(record.name);
    await writeFileAtomic(this.#path(record.name), `${JSON.stringify(record, null, 2)}\n`);
  }

  async list(): Promise<string[]> {
    const files = await readdir(this.directory).catch(() => [] as string[]);
    return files.filter((f) => f.endsWith(FILE_SUFFIX) && !f.startsWith('.')).map((f) => f.slice(0, -FILE_SUFFIX.length)).sort();
  }
}
