/**
 * Storage accounts and their encryption settings, after Azure Storage Service Encryption (see
 * shared/reference/azure-sse.md, "Account level" and "Keys"):
 *
 * - a new account uses service-managed keys (`Microsoft.Storage`) with blob encryption enabled; customer-managed
 *   keys (`Microsoft.Keyvault`) are set afterwards with {@link AccountService.updateAccount};
 * - changing the key source, key or key version re-wraps the AEKs only; with `keyversion` empty the account
 *   follows the key's newest version and re-wraps on the first use after a rotation;
 * - encryption cannot be disabled while customer-managed keys are in use; the vault must be in the account's
 *   region;
 * - {@link AccountService.rollDataKey} adds an AEK generation for future writes; older generations stay readable.
 *
 * {@link AccountService.getCipher} is the page-blob layer's one question. It answers from a cache of ready XTS
 * ciphers (512-byte sectors), or unwraps the AEK (an audited vault call) and caches the result. Any vault state
 * change drops, and wipes, every cipher that vault's keys unwrapped; every entry also expires after
 * `keyCacheTtlMs`, which bounds how long a change made elsewhere (another process, a remote vault) goes unseen.
 * Callers must ask per operation and not keep a cipher: one that was dropped throws `KeyDisposed`.
 */

import { inspect } from 'node:util';

import { generateAccountKey, KeyVaultRegistry, loadServiceMasterKey, type SecretBytes } from '../keys/index.js';
import { XtsCipher } from '../xts/index.js';
import {
  type AccountProperties, type AccountRecord, AccountStore, ACCOUNT_FORMAT, assertAccountName, type DataKeyGeneration,
  KEY_SOURCES, type KeySource, toProperties,
} from './account-record.js';
import { CipherCache } from './cipher-cache.js';
import { AccountError } from './errors.js';
import { KeyEncryption, type KekTarget } from './key-encryption.js';
import { SerialQueue } from '../keys/serial-queue.js';

/** Default lifetime of a cached unwrapped AEK: one minute. */
export const DEFAULT_KEY_CACHE_TTL_MS = 60_000;
export const DEFAULT_REGION = 'local';
/** Sector size of every account cipher: one 512-byte page is one XTS data unit. */
export const PAGE_SECTOR_SIZE = 512;
const FIRST_GENERATION = 1;
/** Fills retried when the cache was invalidated while they ran; the last attempt is cached regardless. */
const MAX_FILL_ATTEMPTS = 3;

export interface AccountServiceOptions {
  keyCacheTtlMs?: number;
  now?: () => Date;
  /** Environment to read `VDCRYPT_SERVICE_MASTER_KEY` from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

export interface UpdateAccountPatch {
  encryption?: boolean;
  keySource?: KeySource;
  /** `https://<vault>.vault.local/keys/<name>[/<version>]`; implies `Microsoft.Keyvault`. */
  keyUri?: string;
}

export class AccountService {
  readonly home: string;
  readonly vaults: KeyVaultRegistry;
  readonly #store: AccountStore;
  readonly #kek: KeyEncryption;
  readonly #serviceKey: SecretBytes;
  readonly #cache: CipherCache;
  readonly #now: () => Date;
  readonly #queues = new Map<string, SerialQueue>();
  readonly #pending = new Map<string, Promise<{ generation: number; cipher: XtsCipher }>>();
  readonly #unsubscribe: () => void;
  #closed = false;

  private constructor(home: string, vaults: KeyVaultRegistry, store: AccountStore, serviceKey: SecretBytes, ttlMs: number, now: () => Date) {
    this.home = home;
    this.vaults = vaults;
    this.#store = store;
    this.#serviceKey = serviceKey;
    this.#kek = new KeyEncryption(serviceKey, vaults);
    this.#now = now;
    this.#cache = new CipherCache(ttlMs, now);
    this.#unsubscribe = vaults.onChange((change) => this.#cache.dropVault(change.vault));
  }

  static async open(home: string, options: AccountServiceOptions = {}): Promise<AccountService> {
    const ttl = options.keyCacheTtlMs ?? DEFAULT_KEY_CACHE_TTL_MS;
    if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) throw new RangeError(`keyCacheTtlMs must be a non-negative number, got ${String(ttl)}`);
    const now = options.now ?? (() => new Date());
    const vaults = await KeyVaultRegistry.open(home, { now });
    const store = new AccountStore(vaults.home);
    await store.init();
    const serviceKey = await loadServiceMasterKey(vaults.home, options.env);
    return new AccountService(vaults.home, vaults, store, serviceKey, ttl, now);
  }

  get keyCacheTtlMs(): number {
    return this.#cache.ttlMs;
  }

  /** Number of cached ciphers (for tests and diagnostics). */
  get cachedCiphers(): number {
    return this.#cache.size;
  }

  createAccount(name: string, opts: { region?: string; encryption?: boolean } = {}): Promise<AccountProperties> {
    assertAccountName(name);
    if (typeof opts !== 'object' || opts === null) throw new TypeError('options must be an object');
    if ('keySource' in opts || 'keyUri' in opts) {
      throw new AccountError('InvalidKeyVaultProperties', 'new accounts use service-managed keys; set customer-managed keys with updateAccount');
    }
    const region = opts.region ?? DEFAULT_REGION;
    if (typeof region !== 'string' || region === '') throw new TypeError('region must be a non-empty string');
    const enabled = opts.encryption ?? true;
    if (typeof enabled !== 'boolean') throw new TypeError('encryption must be a boolean');
    return this.#serial(name, async () => {
      if ((await this.#store.read(name)) !== null) throw new AccountError('StorageAccountAlreadyExists', `storage account '${name}' already exists`);
      const time = this.#now().toISOString();
      const record: AccountRecord = {
        format: ACCOUNT_FORMAT, name, region, creationTime: time,
        encryption: { enabled, lastEnabledTime: enabled ? time : null, keySource: 'Microsoft.Storage', keyvaultproperties: null },
        currentGeneration: FIRST_GENERATION, generations: [],
      };
      record.generations.push(await this.#newGeneration(record, FIRST_GENERATION, { keySource: 'Microsoft.Storage' }));
      await this.#store.write(record);
      return toProperties(record);
    });
  }

  updateAccount(name: string, patch: UpdateAccountPatch): Promise<AccountProperties> {
    assertAccountName(name);
    checkPatch(patch);
    return this.#serial(name, async () => {
      const record = await this.#store.require(name);
      const current = record.encryption;
      const source: KeySource = patch.keySource ?? (patch.keyUri !== undefined ? 'Microsoft.Keyvault' : current.keySource);
      if (source === 'Microsoft.Storage' && patch.keyUri !== undefined) {
        throw new AccountError('InvalidKeyVaultProperties', 'a key URI needs keySource Microsoft.Keyvault');
      }
      const keyUri = patch.keyUri ?? (source === 'Microsoft.Keyvault' ? currentKeyUri(record) : undefined);
      if (source === 'Microsoft.Keyvault' && keyUri === undefined) {
        throw new AccountError('InvalidKeyVaultProperties', 'keySource Microsoft.Keyvault needs a key URI (keyvaultproperties)');
      }
      const enabled = patch.encryption ?? current.enabled;
      if (!enabled && source === 'Microsoft.Keyvault') {
        throw new AccountError('EncryptionCannotBeDisabledWithCustomerManagedKeys',
          `encryption of account '${name}' cannot be disabled while customer-managed keys are in use; switch to Microsoft.Storage first`);
      }
      const time = this.#now().toISOString();
      const keyChanged = source !== current.keySource || (source === 'Microsoft.Keyvault' && patch.keyUri !== undefined && patch.keyUri !== currentKeyUri(record));
      if (keyChanged) {
        const target: KekTarget = source === 'Microsoft.Storage' ? { keySource: source } : await this.#kek.resolveVaultKey(record, keyUri ?? '');
        await this.#rewrap(record, target);
        current.keySource = source;
        current.keyvaultproperties = target.keySource === 'Microsoft.Storage' ? null : {
          keyname: target.id.name, keyversion: target.followNewest ? '' : target.id.version, keyvaulturi: target.vault.uri,
          currentVersionedKeyIdentifier: KeyEncryption.keyIdentifier(target), lastKeyRotationTimestamp: time,
        };
      }
      if (enabled && !current.enabled) current.lastEnabledTime = time;
      current.enabled = enabled;
      await this.#store.write(record);
      this.#cache.dropAccount(name);
      return toProperties(record);
    });
  }

  rollDataKey(name: string): Promise<AccountProperties> {
    assertAccountName(name);
    return this.#serial(name, async () => {
      const record = await this.#store.require(name);
      const generation = Math.max(...record.generations.map((g) => g.generation)) + 1;
      record.generations.push(await this.#newGeneration(record, generation, await this.#kek.currentTarget(record)));
      record.currentGeneration = generation;
      await this.#store.write(record);
      this.#cache.dropAccount(name);
      return toProperties(record);
    });
  }

  async getAccount(name: string): Promise<AccountProperties> {
    assertAccountName(name);
    return toProperties(await this.#store.require(name));
  }

  listAccounts(): Promise<string[]> {
    return this.#store.list();
  }

  async isEncryptionEnabled(name: string): Promise<boolean> {
    assertAccountName(name);
    return (await this.#store.require(name)).encryption.enabled;
  }

  /**
   * The XTS cipher of an AEK generation (default: the current one), ready for 512-byte pages. Throws the vault's
   * typed 403 error when the key cannot be unwrapped now. Do not keep the cipher beyond the current operation.
   */
  getCipher(name: string, generation?: number): Promise<{ generation: number; cipher: XtsCipher }> {
    assertAccountName(name);
    if (generation !== undefined && (!Number.isSafeInteger(generation) || generation < FIRST_GENERATION)) {
      throw new RangeError(`generation must be a positive integer, got ${String(generation)}`);
    }
    if (this.#closed) throw new AccountError('StorageAccountNotFound', 'this AccountService is closed');
    const hit = this.#cache.get(name, generation);
    if (hit !== undefined) return Promise.resolve(hit);
    const key = `${name}#${generation ?? 'current'}`;
    const pending = this.#pending.get(key);
    if (pending !== undefined) return pending;
    const fill = this.#fill(name, generation).finally(() => this.#pending.delete(key));
    this.#pending.set(key, fill);
    return fill;
  }

  toJSON(): { home: string; keyCacheTtlMs: number; cachedCiphers: number; closed: boolean } {
    return { home: this.home, keyCacheTtlMs: this.keyCacheTtlMs, cachedCiphers: this.cachedCiphers, closed: this.#closed };
  }

  [inspect.custom](): string {
    return `AccountService { home: '${this.home}', cachedCiphers: ${this.cachedCiphers}, closed: ${this.#closed} }`;
  }

  /** Dispose every cached cipher, lock the vaults and wipe the service master key. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#pending.values()]);
    this.#unsubscribe();
    this.#cache.clear();
    this.vaults.close();
    this.#serviceKey.dispose();
  }

  // ---- internals --------------------------------------------------------------------------------------------

  #serial<T>(name: string, task: () => Promise<T>): Promise<T> {
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      queue = new SerialQueue();
      this.#queues.set(name, queue);
    }
    return queue.run(task);
  }

  async #newGeneration(record: AccountRecord, generation: number, target: KekTarget): Promise<DataKeyGeneration> {
    const aek = generateAccountKey();
    try {
      return { generation, created: this.#now().toISOString(), wrapped: await this.#kek.wrap(record.name, generation, aek, target) };
    } finally {
      aek.dispose();
    }
  }

  /** Re-wrap every AEK generation under `target`; the AEKs themselves do not change. */
  async #rewrap(record: AccountRecord, target: KekTarget): Promise<void> {
    const rewrapped: DataKeyGeneration[] = [];
    for (const entry of record.generations) {
      const aek = await this.#kek.unwrap(record.name, entry);
      try {
        rewrapped.push({ ...entry, wrapped: await this.#kek.wrap(record.name, entry.generation, aek, target) });
      } finally {
        aek.dispose();
      }
    }
    record.generations = rewrapped;
  }

  /** With `keyversion` empty, re-wrap under the key's newest version if it was rotated since the last wrap. */
  async #followNewestVersion(name: string): Promise<AccountRecord> {
    const record = await this.#store.require(name);
    const kv = record.encryption.keyvaultproperties;
    if (record.encryption.keySource !== 'Microsoft.Keyvault' || kv === null || kv.keyversion !== '') return record;
    return this.#serial(name, async () => {
      const fresh = await this.#store.require(name);
      const props = fresh.encryption.keyvaultproperties;
      if (props === null || props.keyversion !== '') return fresh;
      const target = await this.#kek.resolveVaultKey(fresh, `${props.keyvaulturi}/keys/${props.keyname}`);
      const identifier = KeyEncryption.keyIdentifier(target);
      if (identifier === props.currentVersionedKeyIdentifier) return fresh;
      await this.#rewrap(fresh, target);
      fresh.encryption.keyvaultproperties = { ...props, currentVersionedKeyIdentifier: identifier, lastKeyRotationTimestamp: this.#now().toISOString() };
      await this.#store.write(fresh);
      this.#cache.dropAccount(name);
      return fresh;
    });
  }

  async #fill(name: string, generation: number | undefined): Promise<{ generation: number; cipher: XtsCipher }> {
    for (let attempt = 1; ; attempt++) {
      const epoch = this.#cache.epoch;
      const record = await this.#followNewestVersion(name);
      const gen = generation ?? record.currentGeneration;
      const entry = record.generations.find((g) => g.generation === gen);
      if (entry === undefined) {
        throw new AccountError('DataKeyGenerationNotFound', `account '${name}' has no data key generation ${gen} (it has 1..${record.currentGeneration})`);
      }
      const aek = await this.#kek.unwrap(name, entry);
      let cipher: XtsCipher;
      try {
        cipher = new XtsCipher(aek.bytes, { sectorSize: PAGE_SECTOR_SIZE });
      } finally {
        aek.dispose();
      }
      if (this.#cache.epoch !== epoch && attempt < MAX_FILL_ATTEMPTS) {
        cipher.dispose();
        continue;
      }
      if (this.#closed) {
        cipher.dispose();
        throw new AccountError('StorageAccountNotFound', 'this AccountService is closed');
      }
      this.#cache.set(name, gen, cipher, { current: gen === record.currentGeneration, vault: KeyEncryption.vaultOf(record) });
      return { generation: gen, cipher };
    }
  }
}

function currentKeyUri(record: AccountRecord): string | undefined {
  const kv = record.encryption.keyvaultproperties;
  if (kv === null) return undefined;
  return `${kv.keyvaulturi}/keys/${kv.keyname}${kv.keyversion === '' ? '' : `/${kv.keyversion}`}`;
}

function checkPatch(patch: UpdateAccountPatch): void {
  if (typeof patch !== 'object' || patch === null) throw new TypeError('patch must be an object');
  if (patch.encryption !== undefined && typeof patch.encryption !== 'boolean') throw new TypeError('encryption must be a boolean');
  if (patch.keySource !== undefined && !KEY_SOURCES.includes(patch.keySource)) {
    throw new AccountError('InvalidKeyVaultProperties', `keySource must be ${KEY_SOURCES.join(' or ')}, got '${String(patch.keySource)}'`);
  }
  if (patch.keyUri !== undefined && typeof patch.keyUri !== 'string') throw new TypeError('keyUri must be a string');
}

