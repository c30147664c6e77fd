/**
 * The local, file-backed key vault: Azure Key Vault's key operations over a directory (formats in
 * vault-files.ts). Keys are RSA 2048/3072/4096 or AES-256 (`oct`) with versions, an enabled flag, optional
 * expiry, soft delete, and an access list giving identities (storage accounts) `get`, `wrapKey`, `unwrapKey`.
 *
 * Data-plane calls are checked in this order, each refusal its own 403 code and its own audit record:
 * key missing or deleted (`KeyVaultEncryptionKeyNotFound`), caller lacks the permission (`KeyVaultAccessDenied`),
 * version missing (`KeyVaultEncryptionKeyVersionNotFound`), disabled (`KeyVaultEncryptionKeyDisabled`), expired
 * (`KeyVaultEncryptionKeyExpired`). Unlike Key Vault, where `exp` does not stop unwrap, an expired key here
 * refuses unwrap too: an expired customer key blocks the account, which is what SSE operators test for.
 *
 * Every operation runs under the vault's in-process queue, writes its key file atomically, appends its audit
 * record and then announces the change to subscribers (the account layer drops cached keys on it).
 */
import { readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';

import { open as openSealed, seal } from './aead.js';
import { ensurePrivateDirectory, fsyncDirectory, removeStaleTempFiles, writeFileAtomic } from './atomic-file.js';
import { type AuditEntry, AuditLog, type AuditVerification, verifyAuditLog } from './audit-log.js';
import { KeyVaultError, type KeyVaultErrorCode } from './errors.js';
import { DEFAULT_RSA_SIZE, generateKeyMaterial, newKeyVersion, rsaPublicJwk } from './key-generation.js';
import { assertKeyName, assertVaultName, formatKeyUri, vaultUri } from './key-uri.js';
import {
  type CreateKeyOptions, KEY_PERMISSIONS, type KeyPermission, type KeyProperties, type ManagedKeyVault, type VaultChange,
  type WrapAlgorithm, type WrapResult,
} from './key-vault.js';
import { SecretBytes } from './secret.js';
import { type VaultKeys, unlockVault, writeVaultHeader, type VaultCredential } from './vault-unlock.js';
import {
  asStoredKey, encodeEnvelope, KEYS_DIR, keyFileName, materialAad, openEnvelope, type StoredKey, VAULT_HEADER_FILE,
} from './vault-files.js';
import { SerialQueue } from './serial-queue.js';
import { algorithmsFor, unwrapWith, wrapWith } from './wrap.js';

/** Identity recorded for management operations (the vault owner who holds the master key). */
export const OPERATOR_IDENTITY = 'operator';

export interface LocalVaultOptions {
  now?: () => Date;
  /** Identity recorded in the audit log for management operations. Default `operator`. */
  operator?: string;
}

export interface CreateVaultOptions extends LocalVaultOptions {
  name: string;
  region: string;
  credential: VaultCredential;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

export class LocalKeyVault implements ManagedKeyVault {
  readonly name: string;
  readonly region: string;
  readonly directory: string;
  readonly local = true;
  readonly #keys: VaultKeys;
  readonly #audit: AuditLog;
  readonly #now: () => Date;
  readonly #operator: string;
  readonly #queue = new SerialQueue();
  readonly #listeners = new Set<(change: VaultChange) => void>();
  #closed = false;

  private constructor(directory: string, name: string, region: string, keys: VaultKeys, audit: AuditLog, options: LocalVaultOptions) {
    this.directory = directory;
    this.name = name;
    this.region = region;
    this.#keys = keys;
    this.#audit = audit;
    this.#now = options.now ?? (() => new Date());
    this.#operator = options.operator ?? OPERATOR_IDENTITY;
  }

  get uri(): string {
    return vaultUri(this.name);
  }

  /** Create a new vault in `directory` (which must not hold one). */
  static async create(directory: string, options: CreateVaultOptions): Promise<LocalKeyVault> {
    assertVaultName(options.name);
    if (typeof options.region !== 'string' || options.region === '') throw new TypeError('region must be a non-empty string');
    if (await exists(join(directory, VAULT_HEADER_FILE))) {
      throw new KeyVaultError('KeyVaultAlreadyExists', `${directory} already holds a key vault`);
    }
    const now = options.now ?? (() => new Date());
    await ensurePrivateDirectory(join(directory, KEYS_DIR));
    const audit = await AuditLog.create(directory, options.name, now);
    const keys = await writeVaultHeader(directory, { name: options.name, region: options.region, created: now().toISOString() }, options.credential);
    const vault = new LocalKeyVault(directory, options.name, options.region, keys, audit, options);
    await vault.#record({ op: 'createVault', key: null, version: null, caller: vault.#operator, result: 'success', code: null });
    return vault;
  }

  /** Open (unlock) the vault in `directory`; a wrong passphrase or key file is `KeyVaultAuthenticationFailed`. */
  static async open(directory: string, credential: VaultCredential, options: LocalVaultOptions = {}): Promise<LocalKeyVault> {
    const { header, keys } = await unlockVault(directory, credential);
    await removeStaleTempFiles(directory);
    await removeStaleTempFiles(join(directory, KEYS_DIR));
    const audit = await AuditLog.open(directory, header.name, options.now ?? (() => new Date()));
    return new LocalKeyVault(directory, header.name, header.region, keys, audit, options);
  }

  onChange(listener: (change: VaultChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Wipe the master sub-keys; later calls fail. Subscribers hear a `close` change. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#keys.dispose();
    this.#emit(null, 'close');
  }

  get closed(): boolean {
    return this.#closed;
  }

  toJSON(): { name: string; region: string; uri: string; directory: string; closed: boolean } {
    return { name: this.name, region: this.region, uri: this.uri, directory: this.directory, closed: this.#closed };
  }

  [inspect.custom](): string {
    return `LocalKeyVault { name: '${this.name}', region: '${this.region}', closed: ${this.#closed} }`;
  }

  // ---- management plane -------------------------------------------------------------------------------------

  createKey(name: string, options: CreateKeyOptions): Promise<KeyProperties> {
    return this.#serial(async () => {
      assertKeyName(name);
      if (options.kty !== 'RSA' && options.kty !== 'oct') throw new TypeError(`kty must be 'RSA' or 'oct', got ${String(options.kty)}`);
      if (options.expires !== undefined && !(options.expires instanceof Date)) throw new TypeError('expires must be a Date');
      if (await exists(this.#keyPath(name))) {
        return this.#refuse({ op: 'createKey', key: name, version: null }, 'KeyVaultKeyAlreadyExists', `key '${name}' already exists in vault '${this.name}'`);
      }
      const time = this.#now().toISOString();
      const stored: StoredKey = {
        format: 1, vault: this.name, name, kty: options.kty, keySize: 0, enabled: options.enabled ?? true, created: time,
        updated: time, expires: options.expires?.toISOString() ?? null, deleted: null, access: {}, versions: [],
      };
      await this.#addVersion(stored, options.size ?? DEFAULT_RSA_SIZE);
      await this.#save(stored);
      return this.#done('createKey', stored, { kty: stored.kty, keySize: stored.keySize });
    });
  }

  rotateKey(name: string): Promise<KeyProperties> {
    return this.#mutate('rotateKey', name, async (stored) => this.#addVersion(stored, stored.keySize));
  }

  setKeyEnabled(name: string, enabled: boolean): Promise<KeyProperties> {
    if (typeof enabled !== 'boolean') throw new TypeError('enabled must be a boolean');
    return this.#mutate(enabled ? 'enableKey' : 'disableKey', name, async (stored) => { stored.enabled = enabled; });
  }

  setKeyExpiry(name: string, expires: Date | null): Promise<KeyProperties> {
    if (expires !== null && !(expires instanceof Date)) throw new TypeError('expires must be a Date or null');
    return this.#mutate('updateKey', name, async (stored) => { stored.expires = expires?.toISOString() ?? null; });
  }

  async deleteKey(name: string): Promise<void> {
    await this.#mutate('deleteKey', name, async (stored) => { stored.deleted = this.#now().toISOString(); });
  }

  recoverKey(name: string): Promise<KeyProperties> {
    return this.#mutate('recoverKey', name, async (stored) => { stored.deleted = null; }, { allowDeleted: true, requireDeleted: true });
  }

  purgeKey(name: string): Promise<void> {
    return this.#serial(async () => {
      const stored = await this.#loadForMutation('purgeKey', name, { allowDeleted: true, requireDeleted: true });
      await unlink(this.#keyPath(name));
      await fsyncDirectory(join(this.directory, KEYS_DIR));
      await this.#done('purgeKey', stored);
    });
  }

  grantAccess(name: string, identity: string, permissions: readonly KeyPermission[]): Promise<KeyProperties> {
    const perms = checkPermissions(identity, permissions);
    return this.#mutate('grantAccess', name, async (stored) => {
      const current = new Set(stored.access[identity] ?? []);
      for (const p of perms) current.add(p);
      stored.access[identity] = KEY_PERMISSIONS.filter((p) => current.has(p));
    }, { detail: { identity, permissions: perms } });
  }

  revokeAccess(name: string, identity: string, permissions: readonly KeyPermission[] = KEY_PERMISSIONS): Promise<KeyProperties> {
    const perms = checkPermissions(identity, permissions);
    return this.#mutate('revokeAccess', name, async (stored) => {
      const left = (stored.access[identity] ?? []).filter((p) => !perms.includes(p));
      if (left.length === 0) delete stored.access[identity];
      else stored.access[identity] = left;
    }, { detail: { identity, permissions: perms } });
  }

  async listKeys(): Promise<KeyProperties[]> {
    this.#assertOpen();
    const names = (await readdir(join(this.directory, KEYS_DIR)))
      .filter((file) => file.endsWith('.json') && !file.startsWith('.'))
      .map((file) => file.slice(0, -'.json'.length)).sort();
    const out: KeyProperties[] = [];
    for (const name of names) {
      const stored = await this.#load(name);
      if (stored !== null) out.push(this.#properties(stored));
    }
    return out;
  }

  async describeKey(name: string): Promise<KeyProperties> {
    this.#assertOpen();
    assertKeyName(name);
    const stored = await this.#load(name);
    if (stored === null) throw new KeyVaultError('KeyVaultEncryptionKeyNotFound', `key '${name}' is not in vault '${this.name}'`);
    return this.#properties(stored);
  }

  verifyAuditLog(): Promise<AuditVerification> {
    return verifyAuditLog(this.directory);
  }

  // ---- data plane -------------------------------------------------------------------------------------------

  getKey(name: string, version: string | undefined, caller: string): Promise<KeyProperties> {
    return this.#serial(async () => {
      const { stored } = await this.#authorize('getKey', name, version, caller, 'get');
      await this.#record({ op: 'getKey', key: name, version: version ?? null, caller, result: 'success', code: null });
      return this.#properties(stored);
    });
  }

  wrapKey(name: string, version: string | undefined, alg: WrapAlgorithm, key: Uint8Array, caller: string): Promise<WrapResult> {
    return this.#serial(async () => {
      if (!(key instanceof Uint8Array)) throw new TypeError('the key to wrap must be bytes');
      const { stored, entry } = await this.#authorize('wrapKey', name, version, caller, 'wrapKey');
      return this.#withMaterial(stored, entry.version, alg, 'wrapKey', caller, async (material, what) => {
        const value = wrapWith(material, alg, key, what);
        return { kid: formatKeyUri({ vault: this.name, name, version: entry.version }), alg, value };
      });
    });
  }

  unwrapKey(name: string, version: string, alg: WrapAlgorithm, wrapped: Uint8Array, caller: string): Promise<SecretBytes> {
    return this.#serial(async () => {
      if (!(wrapped instanceof Uint8Array)) throw new TypeError('the wrapped key must be bytes');
      if (typeof version !== 'string') throw new TypeError('unwrapKey needs the version that wrapped the key');
      const { stored, entry } = await this.#authorize('unwrapKey', name, version, caller, 'unwrapKey');
      return this.#withMaterial(stored, entry.version, alg, 'unwrapKey', caller, async (material, what) => unwrapWith(material, alg, wrapped, what));
    });
  }

  // ---- internals --------------------------------------------------------------------------------------------

  #serial<T>(task: () => Promise<T>): Promise<T> {
    return this.#queue.run(async () => {
      this.#assertOpen();
      return task();
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new KeyVaultError('KeyVaultAccessTokenCannotBeAcquired', `vault '${this.name}' is locked (closed in this process)`);
  }

  #keyPath(name: string): string {
    return join(this.directory, KEYS_DIR, keyFileName(name));
  }

  async #load(name: string): Promise<StoredKey | null> {
    let data: Buffer;
    try {
      data = await readFile(this.#keyPath(name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    const what = `key file of '${name}' in vault '${this.name}'`;
    return asStoredKey(openEnvelope(data, this.#keys.mac, what), this.name, name, what);
  }

  async #save(stored: StoredKey): Promise<void> {
    await writeFileAtomic(this.#keyPath(stored.name), encodeEnvelope(stored, this.#keys.mac));
  }

  async #addVersion(stored: StoredKey, size: number): Promise<void> {
    const generated = await generateKeyMaterial(stored.kty, size);
    try {
      const version = newKeyVersion();
      const time = this.#now().toISOString();
      stored.keySize = generated.keySize;
      stored.versions.push({
        version, created: time, ...(generated.publicKey === undefined ? {} : { publicKey: generated.publicKey }),
        material: seal(this.#keys.enc, generated.secret.bytes, materialAad(this.name, stored.name, version)),
      });
    } finally {
      generated.secret.dispose();
    }
  }

  async #loadForMutation(op: AuditEntry['op'], name: string, rules: { allowDeleted?: boolean; requireDeleted?: boolean }): Promise<StoredKey> {
    assertKeyName(name);
    const stored = await this.#load(name);
    const ref = { op, key: name, version: null };
    if (stored === null) return this.#refuse(ref, 'KeyVaultEncryptionKeyNotFound', `key '${name}' is not in vault '${this.name}'`);
    if (rules.requireDeleted === true && stored.deleted === null) {
      return this.#refuse(ref, 'KeyVaultKeyNotDeleted', `key '${name}' in vault '${this.name}' is not deleted`);
    }
    if (rules.allowDeleted !== true && stored.deleted !== null) {
      return this.#refuse(ref, 'KeyVaultEncryptionKeyNotFound', `key '${name}' in vault '${this.name}' is deleted`);
    }
    return stored;
  }

  #mutate(op: AuditEntry['op'], name: string, change: (stored: StoredKey) => Promise<void>,
    rules: { allowDeleted?: boolean; requireDeleted?: boolean; detail?: AuditEntry['detail'] } = {}): Promise<KeyProperties> {
    return this.#serial(async () => {
      const stored = await this.#loadForMutation(op, name, rules);
      await change(stored);
      stored.updated = this.#now().toISOString();
      await this.#save(stored);
      return this.#done(op, stored, rules.detail);
    });
  }

  async #done(op: AuditEntry['op'], stored: StoredKey, detail?: AuditEntry['detail']): Promise<KeyProperties> {
    const version = stored.versions.at(-1)?.version ?? null;
    await this.#record({ op, key: stored.name, version, caller: this.#operator, result: 'success', code: null, ...(detail ? { detail } : {}) });
    this.#emit(stored.name, op);
    return this.#properties(stored);
  }

  /** Data-plane checks, in the documented order; each refusal is audited and thrown. */
  async #authorize(op: AuditEntry['op'], name: string, version: string | undefined, caller: string, permission: KeyPermission) {
    if (typeof caller !== 'string' || caller === '') throw new TypeError('caller identity must be a non-empty string');
    assertKeyName(name);
    const ref = { op, key: name, version: version ?? null, caller };
    const stored = await this.#load(name);
    if (stored === null || stored.deleted !== null) {
      const why = stored === null ? 'is not in' : 'was deleted from';
      return this.#refuse(ref, 'KeyVaultEncryptionKeyNotFound', `The key vault key is not found to unwrap the encryption key: '${name}' ${why} vault '${this.name}'`);
    }
    if (!(stored.access[caller] ?? []).includes(permission)) {
      return this.#refuse(ref, 'KeyVaultAccessDenied', `'${caller}' lacks the ${permission} permission on key '${name}' of vault '${this.name}'`);
    }
    const entry = version === undefined ? stored.versions.at(-1) : stored.versions.find((v) => v.version === version);
    if (entry === undefined) {
      return this.#refuse(ref, 'KeyVaultEncryptionKeyVersionNotFound', `key '${name}' of vault '${this.name}' has no version '${String(version)}'`);
    }
    if (!stored.enabled) return this.#refuse(ref, 'KeyVaultEncryptionKeyDisabled', `key '${name}' of vault '${this.name}' is disabled`);
    if (stored.expires !== null && this.#now().getTime() >= Date.parse(stored.expires)) {
      return this.#refuse(ref, 'KeyVaultEncryptionKeyExpired', `key '${name}' of vault '${this.name}' expired at ${stored.expires}`);
    }
    return { stored, entry };
  }

  async #withMaterial<T>(stored: StoredKey, version: string, alg: WrapAlgorithm, op: 'wrapKey' | 'unwrapKey', caller: string,
    use: (material: { kty: StoredKey['kty']; secret: SecretBytes }, what: string) => Promise<T>): Promise<T> {
    const ref = { op, key: stored.name, version, caller };
    const what = `key '${stored.name}/${version}' of vault '${this.name}'`;
    if (!algorithmsFor(stored.kty).includes(alg)) {
      return this.#refuse(ref, 'KeyVaultUnsupportedAlgorithm', `${what} is an ${stored.kty} key; it does not do ${String(alg)}`);
    }
    const entry = stored.versions.find((v) => v.version === version);
    const secret = openSealed(this.#keys.enc, entry?.material, materialAad(this.name, stored.name, version), what);
    try {
      const result = await use({ kty: stored.kty, secret }, what);
      await this.#record({ ...ref, result: 'success', code: null, detail: { alg } });
      return result;
    } catch (error) {
      if (error instanceof KeyVaultError) await this.#record({ ...ref, result: 'refused', code: error.code, detail: { alg } });
      throw error;
    } finally {
      secret.dispose();
    }
  }

  async #refuse(ref: { op: AuditEntry['op']; key: string | null; version: string | null; caller?: string }, code: KeyVaultErrorCode, message: string): Promise<never> {
    await this.#record({ op: ref.op, key: ref.key, version: ref.version, caller: ref.caller ?? this.#operator, result: 'refused', code });
    throw new KeyVaultError(code, message);
  }

  async #record(entry: AuditEntry): Promise<void> {
    await this.#audit.append(entry);
  }

  #emit(key: string | null, op: string): void {
    for (const listener of [...this.#listeners]) listener({ vault: this.name, key, op });
  }

  #properties(stored: StoredKey): KeyProperties {
    const newest = stored.versions.at(-1);
    const version = newest?.version ?? '';
    const jwk = stored.kty === 'RSA' && newest?.publicKey !== undefined ? rsaPublicJwk(newest.publicKey) : {};
    return {
      name: stored.name, vault: this.name, kty: stored.kty, keySize: stored.keySize, version,
      kid: formatKeyUri({ vault: this.name, name: stored.name, version }), enabled: stored.enabled, created: stored.created,
      updated: stored.updated, ...(stored.expires === null ? {} : { expires: stored.expires }), deleted: stored.deleted !== null,
      keyOps: algorithmsFor(stored.kty), ...jwk,
      versions: stored.versions.map((v) => ({ version: v.version, kid: formatKeyUri({ vault: this.name, name: stored.name, version: v.version }), created: v.created })),
      access: Object.fromEntries(Object.entries(stored.access).map(([id, perms]) => [id, [...perms]])),
    };
  }
}

function checkPermissions(identity: string, permissions: readonly KeyPermission[]): KeyPermission[] {
  if (typeof identity !== 'string' || identity === '') throw new TypeError('identity must be a non-empty string');
  if (!Array.isArray(permissions) || permissions.length === 0) throw new TypeError('permissions must be a non-empty array');
  for (const p of permissions) {
    if (!(KEY_PERMISSIONS as readonly string[]).includes(p)) throw new RangeError(`permission must be one of ${KEY_PERMISSIONS.join(', ')}, got '${String(p)}'`);
  }
  return [...new Set(permissions)];
}
