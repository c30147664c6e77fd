/**
 * Typed failures of the key layer (account encryption keys, the key vault and its audit log).
 *
 * Codes mirror the answers Azure Storage gives when Storage Service Encryption with customer-managed keys cannot
 * reach its key (Azure Storage REST error codes, Azure Key Vault error codes). Every refusal to hand out or use a
 * key is an HTTP-like 403, as Azure answers a read or write of an account whose key was revoked.
 *
 * | code                                   | status | when                                                        |
 * |----------------------------------------|--------|-------------------------------------------------------------|
 * | `KeyVaultEncryptionKeyNotFound`        | 403    | the key does not exist, or was deleted                      |
 * | `KeyVaultEncryptionKeyVersionNotFound` | 403    | the key exists but not that version                         |
 * | `KeyVaultEncryptionKeyDisabled`        | 403    | the key is disabled                                         |
 * | `KeyVaultEncryptionKeyExpired`         | 403    | the key's expiry time has passed                            |
 * | `KeyVaultAccessDenied`                 | 403    | the caller lacks `get` / `wrapKey` / `unwrapKey` on the key |
 * | `KeyVaultUnwrapFailed`                 | 403    | the wrapped key was not made by this key (wrong key)        |
 * | `KeyVaultVaultNotFound`                | 403    | no vault of that name, or its directory is gone             |
 * | `KeyVaultAccessTokenCannotBeAcquired`  | 403    | the vault exists but is locked in this process              |
 * | `KeyVaultAuthenticationFailed`         | 401    | wrong passphrase or key file for the vault                  |
 * | `KeyVaultCorrupted`                    | 500    | a vault file fails its authentication or does not parse     |
 * | `KeyVaultUnsupportedAlgorithm`         | 400    | algorithm does not fit the key type (e.g. A256KW on RSA)    |
 * | `KeyVaultInvalidKeyUri`                | 400    | a key URI not of the form `https://<vault>.vault.local/keys/<name>[/<version>]` |
 * | `KeyVaultInvalidName`                  | 400    | a vault or key name outside the allowed alphabet or length  |
 * | `KeyVaultKeyAlreadyExists`             | 409    | createKey of a name in use (deleted keys included)          |
 * | `KeyVaultAlreadyExists`                | 409    | createVault of a name or directory in use                   |
 * | `KeyVaultKeyNotDeleted`                | 409    | recover/purge of a key that is not deleted                  |
 * | `ServiceMasterKeyInvalid`              | 500    | the service master key file or variable is not 32 bytes     |
 * | `AuditLogBroken`                       | 500    | the audit log fails verification when it must be appended to |
 *
 * Messages name the vault, key and version; they never contain key material.
 */
import { VdcryptError } from '../errors.js';

export const KEY_REFUSED_STATUS = 403;
export const UNAUTHENTICATED_STATUS = 401;
export const BAD_REQUEST_STATUS = 400;
export const CONFLICT_STATUS = 409;
export const INTERNAL_STATUS = 500;

export type KeyRefusalCode =
  | 'KeyVaultEncryptionKeyNotFound'
  | 'KeyVaultEncryptionKeyVersionNotFound'
  | 'KeyVaultEncryptionKeyDisabled'
  | 'KeyVaultEncryptionKeyExpired'
  | 'KeyVaultAccessDenied'
  | 'KeyVaultUnwrapFailed'
  | 'KeyVaultVaultNotFound'
  | 'KeyVaultAccessTokenCannotBeAcquired';

export type KeyVaultErrorCode =
  | KeyRefusalCode
  | 'KeyVaultAuthenticationFailed'
  | 'KeyVaultCorrupted'
  | 'KeyVaultUnsupportedAlgorithm'
  | 'KeyVaultInvalidKeyUri'
  | 'KeyVaultInvalidName'
  | 'KeyVaultKeyAlreadyExists'
  | 'KeyVaultAlreadyExists'
  | 'KeyVaultKeyNotDeleted'
  | 'ServiceMasterKeyInvalid'
  | 'AuditLogBroken';

const STATUS: Record<KeyVaultErrorCode, number> = {
  KeyVaultEncryptionKeyNotFound: KEY_REFUSED_STATUS,
  KeyVaultEncryptionKeyVersionNotFound: KEY_REFUSED_STATUS,
  KeyVaultEncryptionKeyDisabled: KEY_REFUSED_STATUS,
  KeyVaultEncryptionKeyExpired: KEY_REFUSED_STATUS,
  KeyVaultAccessDenied: KEY_REFUSED_STATUS,
  KeyVaultUnwrapFailed: KEY_REFUSED_STATUS,
  KeyVaultVaultNotFound: KEY_REFUSED_STATUS,
  KeyVaultAccessTokenCannotBeAcquired: KEY_REFUSED_STATUS,
  KeyVaultAuthenticationFailed: UNAUTHENTICATED_STATUS,
  KeyVaultCorrupted: INTERNAL_STATUS,
  KeyVaultUnsupportedAlgorithm: BAD_REQUEST_STATUS,
  KeyVaultInvalidKeyUri: BAD_REQUEST_STATUS,
  KeyVaultInvalidName: BAD_REQUEST_STATUS,
  KeyVaultKeyAlreadyExists: CONFLICT_STATUS,
  KeyVaultAlreadyExists: CONFLICT_STATUS,
  KeyVaultKeyNotDeleted: CONFLICT_STATUS,
  ServiceMasterKeyInvalid: INTERNAL_STATUS,
  AuditLogBroken: INTERNAL_STATUS,
};

/** A failure of the key layer; `status` follows from `code` (see the table above). */
export class KeyVaultError extends VdcryptError {
  declare readonly code: KeyVaultErrorCode;

  constructor(code: KeyVaultErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { status: STATUS[code], cause: options.cause });
  }

  /** True for the 403 refusals that mean "this key cannot be used now" (revoked, disabled, deleted, ...). */
  get isKeyRefusal(): boolean {
    return this.status === KEY_REFUSED_STATUS;
  }
}
