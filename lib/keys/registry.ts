/**
 * The vault registry of a vdcrypt home: vault name -> vault directory, in `<home>/vaults.json` (0600, atomic
 * writes). New vaults go to `<home>/vaults/<name>/` unless a directory is given. A key URI
 * `https://<vault>.vault.local/keys/...` resolves through it.
 *
 * Vaults are unlocked once per process: a vault created with a key file remembers the file's path and unlocks
 * itself; a passphrase vault must be unlocked with {@link KeyVaultRegistry.unlock}. Until then its keys cannot be
 * used (`KeyVaultAccessTokenCannotBeAcquired`, as Azure answers when it cannot get a token for the vault). A name
 * that is not registered, or whose directory is gone, is `KeyVaultVaultNotFound`.
 *
 * Every state change of every vault opened through the registry (and forgetting or locking a vault) is announced
 * to {@link KeyVaultRegistry.onChange} subscribers. Remote vaults ({@link KeyVault} implementations with
 * `local: false`) can be attached by name; they exist only in this process.
 */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';

import { ensurePrivateDirectory, writeFileAtomic } from './atomic-file.js';
import { type AuditVerification, verifyAuditLog } from './audit-log.js';
import { KeyVaultError } from './errors.js';
import { assertVaultName, parseKeyUri, type KeyIdentifier } from './key-uri.js';
import type { KeyVault, VaultChange } from './key-vault.js';
import { LocalKeyVault } from './local-vault.js';
import { SerialQueue } from './serial-queue.js';
import type { VaultCredential } from './vault-unlock.js';
import { VAULT_HEADER_FILE } from './vault-files.js';

export const VAULT_REGISTRY_FILE = 'vaults.json';
export const VAULTS_DIR = 'vaults';
const REGISTRY_FORMAT = 1;

export interface VaultRegistration {
  directory: string;
  region: string;
  /** Key file that unlocks the vault, for vaults created with one. */
  keyFile?: string;
}

export interface VaultInfo extends VaultRegistration {
  name: string;
  unlocked: boolean;
  local: boolean;
}

export interface CreateVaultRequest {
  region: string;
  credential: VaultCredential;
  /** Where the vault lives; default `<home>/vaults/<name>`. */
  directory?: string;
}

interface RegistryFile {
  format: number;
  vaults: Record<string, VaultRegistration>;
}

export class KeyVaultRegistry {
  readonly home: string;
  readonly #now: () => Date;
  readonly #queue = new SerialQueue();
  readonly #open = new Map<string, LocalKeyVault>();
  readonly #remote = new Map<string, KeyVault>();
  readonly #unsubscribe = new Map<string, () => void>();
  readonly #listeners = new Set<(change: VaultChange) => void>();

  private constructor(home: string, now: () => Date) {
    this.home = home;
    this.#now = now;
  }

  static async open(home: string, options: { now?: () => Date } = {}): Promise<KeyVaultRegistry> {
    if (typeof home !== 'string' || home === '') throw new TypeError('home must be a directory path');
    await ensurePrivateDirectory(home);
    return new KeyVaultRegistry(resolve(home), options.now ?? (() => new Date()));
  }

  onChange(listener: (change: VaultChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Create a local vault and register it. */
  createVault(name: string, request: CreateVaultRequest): Promise<LocalKeyVault> {
    return this.#queue.run(async () => {
      assertVaultName(name);
      const registry = await this.#read();
      if (registry.vaults[name] !== undefined || this.#remote.has(name)) {
        throw new KeyVaultError('KeyVaultAlreadyExists', `a vault named '${name}' is already registered`);
      }
      const directory = resolve(request.directory ?? join(this.home, VAULTS_DIR, name));
      const vault = await LocalKeyVault.create(directory, { name, region: request.region, credential: request.credential, now: this.#now });
      const keyFile = 'keyFile' in request.credential ? resolve(request.credential.keyFile) : undefined;
      registry.vaults[name] = { directory, region: request.region, ...(keyFile === undefined ? {} : { keyFile }) };
      await this.#write(registry);
      this.#adopt(vault);
      return vault;
    });
  }

  /** Unlock a registered local vault in this process. */
  unlock(name: string, credential: VaultCredential): Promise<LocalKeyVault> {
    return this.#queue.run(async () => {
      const existing = this.#open.get(name);
      if (existing !== undefined && !existing.closed) return existing;
      const registration = await this.#registration(name);
      return this.#openLocal(name, registration, credential);
    });
  }

  /** Lock a vault in this process: its keys stop working here until it is unlocked again. */
  lock(name: string): void {
    const vault = this.#open.get(name);
    if (vault === undefined) return;
    this.#open.delete(name);
    this.#unsubscribe.get(name)?.();
    this.#unsubscribe.delete(name);
    vault.close();
    this.#emit({ vault: name, key: null, op: 'lock' });
  }

  /** The vault a key identifier names, for key operations (local or remote). */
  get(name: string): Promise<KeyVault> {
    return this.local(name, true);
  }

  /** A local vault, for management operations. */
  async local(name: string): Promise<LocalKeyVault>;
  async local(name: string, allowRemote: true): Promise<KeyVault>;
  async local(name: string, allowRemote = false): Promise<KeyVault> {
    assertVaultName(name);
    const remote = this.#remote.get(name);
    if (remote !== undefined) {
      if (allowRemote) return remote;
      throw new TypeError(`vault '${name}' is remote; it has no local management operations`);
    }
    return this.#queue.run(async () => {
      const registration = await this.#registration(name);
      if (!(await isFile(join(registration.directory, VAULT_HEADER_FILE)))) {
        this.lock(name);
        throw new KeyVaultError('KeyVaultVaultNotFound', `vault '${name}' is registered but ${registration.directory} holds no vault`);
      }
      const open = this.#open.get(name);
      if (open !== undefined && !open.closed) return open;
      if (registration.keyFile !== undefined) return this.#openLocal(name, registration, { keyFile: registration.keyFile });
      throw new KeyVaultError('KeyVaultAccessTokenCannotBeAcquired', `vault '${name}' is locked; unlock it with its passphrase first`);
    });
  }

  /** Resolve a key URI to its vault and identifier. */
  async resolve(keyUri: string): Promise<{ vault: KeyVault; id: KeyIdentifier }> {
    const id = parseKeyUri(keyUri);
    return { vault: await this.get(id.vault), id };
  }

  async list(): Promise<VaultInfo[]> {
    const registry = await this.#read();
    const local = Object.entries(registry.vaults).map(([name, r]) => ({
      name, ...r, unlocked: this.#open.get(name)?.closed === false, local: true,
    }));
    const remote = [...this.#remote.values()].map((v) => ({ name: v.name, directory: v.uri, region: v.region, unlocked: true, local: false }));
    return [...local, ...remote].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Remove a vault from the registry (its directory is left as it is). Its keys stop resolving. */
  forget(name: string): Promise<void> {
    return this.#queue.run(async () => {
      const registry = await this.#read();
      this.lock(name);
      this.#remote.delete(name);
      if (registry.vaults[name] !== undefined) {
        delete registry.vaults[name];
        await this.#write(registry);
      }
      this.#emit({ vault: name, key: null, op: 'forget' });
    });
  }

  /** Make a remote vault (another {@link KeyVault} implementation) resolvable by name in this process. */
  attach(vault: KeyVault): void {
    assertVaultName(vault.name);
    this.#remote.set(vault.name, vault);
    vault.onChange((change) => this.#emit(change));
  }

  async verifyAuditLog(name: string): Promise<AuditVerification> {
    return verifyAuditLog((await this.#registration(name)).directory);
  }

  /** Lock every vault (wiping their sub-keys). */
  close(): void {
    for (const name of [...this.#open.keys()]) this.lock(name);
  }

  async #openLocal(name: string, registration: VaultRegistration, credential: VaultCredential): Promise<LocalKeyVault> {
    const vault = await LocalKeyVault.open(registration.directory, credential, { now: this.#now });
    if (vault.name !== name) {
      vault.close();
      throw new KeyVaultError('KeyVaultCorrupted', `${registration.directory} holds vault '${vault.name}', not '${name}'`);
    }
    this.#adopt(vault);
    this.#emit({ vault: name, key: null, op: 'unlock' });
    return vault;
  }

  #adopt(vault: LocalKeyVault): void {
    this.#open.set(vault.name, vault);
    this.#unsubscribe.set(vault.name, vault.onChange((change) => this.#emit(change)));
  }

  #emit(change: VaultChange): void {
    for (const listener of [...this.#listeners]) listener(change);
  }

  async #registration(name: string): Promise<VaultRegistration> {
    assertVaultName(name);
    const registration = (await this.#read()).vaults[name];
    if (registration === undefined) throw new KeyVaultError('KeyVaultVaultNotFound', `no key vault named '${name}' is registered`);
    return registration;
  }

  async #read(): Promise<RegistryFile> {
    const path = join(this.home, VAULT_REGISTRY_FILE);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { format: REGISTRY_FORMAT, vaults: {} };
      throw error;
    }
    try {
      const parsed = JSON.parse(text) as RegistryFile;
      if (parsed.format !== REGISTRY_FORMAT || typeof parsed.vaults !== 'object' || parsed.vaults === null) throw new Error('bad shape');
      for (const r of Object.values(parsed.vaults)) if (!isAbsolute(r.directory)) throw new Error('relative vault directory');
      return parsed;
    } catch (error) {
      throw new KeyVaultError('KeyVaultCorrupted', `${path} is not a vdcrypt vault registry`, { cause: error });
    }
  }

  async #write(registry: RegistryFile): Promise<void> {
    await writeFileAtomic(join(this.home, VAULT_REGISTRY_FILE), `${JSON.stringify(registry, null, 2)}\n`);
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
