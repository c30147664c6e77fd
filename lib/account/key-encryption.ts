/**
 * Wrapping and unwrapping an account's AEKs under its key-encryption key (KEK), as SSE's envelope encryption
 * does: the service master key for `Microsoft.Storage`, a vault key for `Microsoft.Keyvault`.
 *
 * For a vault key the account acts as its own identity (`account:<name>`), which needs `get` (to learn the key
 * type and newest version), `wrapKey` and `unwrapKey` on the key, as Azure requires of a storage account's
 * managed identity. RSA keys wrap with `RSA-OAEP-256`, AES keys with `A256KW`. The vault must be in the account's
 * region. Key refusals come back as the vault's typed 403 errors.
 */
import {
  formatKeyUri, type KeyIdentifier, type KeyVault, type KeyVaultRegistry, openAccountKey, parseKeyUri, sealAccountKey,
  type SecretBytes, type WrapAlgorithm,
} from '../keys/index.js';
import { accountIdentity, type AccountRecord, type DataKeyGeneration, type WrappedAccountKey } from './account-record.js';
import { AccountError } from './errors.js';

/** Where AEKs are to be wrapped. */
export type KekTarget =
  | { keySource: 'Microsoft.Storage' }
  | { keySource: 'Microsoft.Keyvault'; vault: KeyVault; id: Required<KeyIdentifier>; alg: WrapAlgorithm; followNewest: boolean };

export class KeyEncryption {
  readonly #serviceKey: SecretBytes;
  readonly #vaults: KeyVaultRegistry;

  constructor(serviceKey: SecretBytes, vaults: KeyVaultRegistry) {
    this.#serviceKey = serviceKey;
    this.#vaults = vaults;
  }

  /** Resolve a key URI for an account: the vault (same region), the version to use and the algorithm. */
  async resolveVaultKey(record: AccountRecord, keyUri: string): Promise<KekTarget & { keySource: 'Microsoft.Keyvault' }> {
    const { vault, id } = await this.#vaults.resolve(keyUri);
    if (vault.region !== record.region) {
      throw new AccountError('KeyVaultRegionMismatch',
        `vault '${vault.name}' is in region '${vault.region}' but account '${record.name}' is in '${record.region}'; they must match`);
    }
    const key = await vault.getKey(id.name, id.version, accountIdentity(record.name));
    const version = id.version ?? key.version;
    const alg: WrapAlgorithm = key.kty === 'RSA' ? 'RSA-OAEP-256' : 'A256KW';
    return { keySource: 'Microsoft.Keyvault', vault, id: { ...id, version }, alg, followNewest: id.version === undefined };
  }

  /** The KEK an account uses now. */
  async currentTarget(record: AccountRecord): Promise<KekTarget> {
    const kv = record.encryption.keyvaultproperties;
    if (record.encryption.keySource === 'Microsoft.Storage' || kv === null) return { keySource: 'Microsoft.Storage' };
    const pinned = parseKeyUri(kv.currentVersionedKeyIdentifier);
    const { vault } = await this.#vaults.resolve(kv.currentVersionedKeyIdentifier);
    const wrapped = record.generations.at(-1)?.wrapped;
    const alg = wrapped?.keySource === 'Microsoft.Keyvault' ? wrapped.alg : 'RSA-OAEP-256';
    return { keySource: 'Microsoft.Keyvault', vault, id: { ...pinned, version: pinned.version ?? '' }, alg, followNewest: kv.keyversion === '' };
  }

  async wrap(account: string, generation: number, aek: SecretBytes, target: KekTarget): Promise<WrappedAccountKey> {
    if (target.keySource === 'Microsoft.Storage') {
      return { keySource: 'Microsoft.Storage', alg: 'A256GCM', box: sealAccountKey(this.#serviceKey, aek, account, generation) };
    }
    const result = await target.vault.wrapKey(target.id.name, target.id.version, target.alg, aek.bytes, accountIdentity(account));
    return { keySource: 'Microsoft.Keyvault', kid: result.kid, alg: result.alg, value: result.value.toString('base64') };
  }

  async unwrap(account: string, entry: DataKeyGeneration): Promise<SecretBytes> {
    const { wrapped } = entry;
    if (wrapped.keySource === 'Microsoft.Storage') return openAccountKey(this.#serviceKey, wrapped.box, account, entry.generation);
    const { vault, id } = await this.#vaults.resolve(wrapped.kid);
    const version = id.version ?? '';
    return vault.unwrapKey(id.name, version, wrapped.alg, Buffer.from(wrapped.value, 'base64'), accountIdentity(account));
  }

  /** The vault an account's AEKs are wrapped by, or null for service-managed keys. */
  static vaultOf(record: AccountRecord): string | null {
    const kv = record.encryption.keyvaultproperties;
    return record.encryption.keySource === 'Microsoft.Keyvault' && kv !== null ? parseKeyUri(kv.currentVersionedKeyIdentifier).vault : null;
  }

  static keyIdentifier(target: KekTarget & { keySource: 'Microsoft.Keyvault' }): string {
    return formatKeyUri(target.id);
  }
}
