/**
 * Typed failures of the storage-account layer. Key refusals while using an account's key are the key layer's
 * `KeyVaultError` 403s (lib/keys/errors.ts), passed through unchanged.
 *
 * | code                                             | status | when                                                   |
 * |--------------------------------------------------|--------|--------------------------------------------------------|
 * | `StorageAccountNotFound`                         | 404    | no account of that name in this home                   |
 * | `StorageAccountAlreadyExists`                    | 409    | createAccount of a name in use                         |
 * | `AccountNameInvalid`                             | 400    | not 3-24 lowercase letters and digits (Azure's rule)   |
 * | `EncryptionCannotBeDisabledWithCustomerManagedKeys` | 409 | encryption off while keySource is Microsoft.Keyvault   |
 * | `KeyVaultRegionMismatch`                         | 409    | the key's vault is in another region than the account  |
 * | `InvalidKeyVaultProperties`                      | 400    | Microsoft.Keyvault without a key URI, or a URI without it |
 * | `DataKeyGenerationNotFound`                      | 404    | getCipher of an AEK generation the account never had   |
 * | `AccountCorrupted`                               | 500    | the account file does not parse                        |
 */
import { VdcryptError } from '../errors.js';

export type AccountErrorCode =
  | 'StorageAccountNotFound'
  | 'StorageAccountAlreadyExists'
  | 'AccountNameInvalid'
  | 'EncryptionCannotBeDisabledWithCustomerManagedKeys'
  | 'KeyVaultRegionMismatch'
  | 'InvalidKeyVaultProperties'
  | 'DataKeyGenerationNotFound'
  | 'AccountCorrupted';

const NOT_FOUND = 404;
const CONFLICT = 409;
const BAD_REQUEST = 400;
const INTERNAL = 500;

const STATUS: Record<AccountErrorCode, number> = {
  StorageAccountNotFound: NOT_FOUND,
  StorageAccountAlreadyExists: CONFLICT,
  AccountNameInvalid: BAD_REQUEST,
  EncryptionCannotBeDisabledWithCustomerManagedKeys: CONFLICT,
  KeyVaultRegionMismatch: CONFLICT,
  InvalidKeyVaultProperties: BAD_REQUEST,
  DataKeyGenerationNotFound: NOT_FOUND,
  AccountCorrupted: INTERNAL,
};

export class AccountError extends VdcryptError {
  declare readonly code: AccountErrorCode;

  constructor(code: AccountErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { status: STATUS[code], cause: options.cause });
  }
}
