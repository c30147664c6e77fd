/**
 * The key vault contract the account layer depends on, modelled on Azure Key Vault's key operations
 * (REST API 7.4: Get Key, Wrap Key, Unwrap Key, Create Key, Update Key, Delete Key, Recover Deleted Key).
 *
 * {@link KeyVault} is the data plane an account uses (`get`, `wrapKey`, `unwrapKey`, each checked against the
 * caller's permissions); {@link ManagedKeyVault} adds the customer's management operations. The local file-backed
 * vault implements both; an Azure Key Vault client (`@azure/keyvault-keys`) would implement {@link KeyVault} and
 * set {@link KeyVault.local} to false, so callers bound how long they cache what it unwrapped by a TTL.
 */
import type { AuditVerification } from './audit-log.js';
import type { SecretBytes } from './secret.js';

export const RSA_KEY_SIZES = [2048, 3072, 4096] as const;
export type RsaKeySize = (typeof RSA_KEY_SIZES)[number];
export const AES_KEY_BITS = 256;

/** `RSA` or `oct` (a symmetric AES-256 key), as in JWK (RFC 7517) and Key Vault. */
export type KeyType = 'RSA' | 'oct';

/** Key wrap algorithms (Key Vault `JsonWebKeyEncryptionAlgorithm`). */
export const WRAP_ALGORITHMS = ['RSA-OAEP-256', 'RSA-OAEP', 'A256KW'] as const;
export type WrapAlgorithm = (typeof WRAP_ALGORITHMS)[number];

/** Data-plane permissions an identity can hold on a key (Key Vault key permissions). */
export const KEY_PERMISSIONS = ['get', 'wrapKey', 'unwrapKey'] as const;
export type KeyPermission = (typeof KEY_PERMISSIONS)[number];

export interface KeyVersionProperties {
  version: string;
  /** `https://<vault>.vault.local/keys/<name>/<version>` */
  kid: string;
  created: string;
}

/** What Get Key returns: public properties only, never private or symmetric key material. */
export interface KeyProperties {
  name: string;
  vault: string;
  kty: KeyType;
  /** RSA modulus bits, or 256 for oct keys. */
  keySize: number;
  /** The newest version. */
  version: string;
  kid: string;
  enabled: boolean;
  created: string;
  updated: string;
  /** ISO time after which the key refuses every operation; absent = never. */
  expires?: string;
  deleted: boolean;
  keyOps: WrapAlgorithm[];
  /** RSA public key as JWK members (base64url), for RSA keys. */
  n?: string;
  e?: string;
  versions: KeyVersionProperties[];
  access: Record<string, KeyPermission[]>;
}

export interface WrapResult {
  /** The versioned key identifier that wrapped. */
  kid: string;
  alg: WrapAlgorithm;
  /** The wrapped key (not secret). */
  value: Buffer;
}

/** A state change of the vault: any change that can alter what wrap/unwrap would answer. */
export interface VaultChange {
  vault: string;
  key: string | null;
  op: string;
}

export interface KeyVault {
  readonly name: string;
  readonly region: string;
  /** `https://<vault>.vault.local` */
  readonly uri: string;
  /** True for a vault in this process's files: its changes are announced through {@link onChange}. */
  readonly local: boolean;
  getKey(name: string, version: string | undefined, caller: string): Promise<KeyProperties>;
  wrapKey(name: string, version: string | undefined, alg: WrapAlgorithm, key: Uint8Array, caller: string): Promise<WrapResult>;
  /** Unwrap to secret memory; the caller disposes the result. */
  unwrapKey(name: string, version: string, alg: WrapAlgorithm, wrapped: Uint8Array, caller: string): Promise<SecretBytes>;
  /** Subscribe to state changes; returns the unsubscribe function. */
  onChange(listener: (change: VaultChange) => void): () => void;
}

export interface CreateKeyOptions {
  kty: KeyType;
  /** RSA modulus size (default 3072). */
  size?: RsaKeySize;
  enabled?: boolean;
  expires?: Date;
}

export interface ManagedKeyVault extends KeyVault {
  readonly directory: string;
  createKey(name: string, options: CreateKeyOptions): Promise<KeyProperties>;
  /** Add a new version; it becomes the newest. */
  rotateKey(name: string): Promise<KeyProperties>;
  setKeyEnabled(name: string, enabled: boolean): Promise<KeyProperties>;
  /** Set (Date) or clear (null) the expiry time. */
  setKeyExpiry(name: string, expires: Date | null): Promise<KeyProperties>;
  /** Soft delete: the key refuses every operation until recovered or purged. */
  deleteKey(name: string): Promise<void>;
  recoverKey(name: string): Promise<KeyProperties>;
  /** Remove a deleted key and its material for good. */
  purgeKey(name: string): Promise<void>;
  grantAccess(name: string, identity: string, permissions: readonly KeyPermission[]): Promise<KeyProperties>;
  /** Remove some (or, without `permissions`, all) of an identity's permissions. */
  revokeAccess(name: string, identity: string, permissions?: readonly KeyPermission[]): Promise<KeyProperties>;
  listKeys(): Promise<KeyProperties[]>;
  /** Management read of a key's properties (no access check; deleted keys included). */
  describeKey(name: string): Promise<KeyProperties>;
  verifyAuditLog(): Promise<AuditVerification>;
}
