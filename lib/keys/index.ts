/** The key layer: secrets, master keys, the local key vault and its registry, the audit log, account keys. */
export { ACCOUNT_KEY_BYTES, generateAccountKey, openAccountKey, sealAccountKey } from './account-key.js';
export type { SealedBox } from './aead.js';
export {
  createFileExclusive, ensurePrivateDirectory, fsyncDirectory, PRIVATE_DIR_MODE, readSecretFile, removeStaleTempFiles,
  SECRET_FILE_MODE, writeFileAtomic,
} from './atomic-file.js';
export { AUDIT_HEAD_FILE, AUDIT_LOG_FILE, AuditLog, GENESIS_HASH, verifyAuditLog } from './audit-log.js';
export type { AuditEntry, AuditOperation, AuditProblem, AuditRecord, AuditResult, AuditVerification } from './audit-log.js';
export { KEY_REFUSED_STATUS, KeyVaultError } from './errors.js';
export type { KeyRefusalCode, KeyVaultErrorCode } from './errors.js';
export { DEFAULT_RSA_SIZE } from './key-generation.js';
export { formatKeyUri, LOCAL_VAULT_HOST_SUFFIX, parseKeyUri, vaultUri } from './key-uri.js';
export type { KeyIdentifier } from './key-uri.js';
export { AES_KEY_BITS, KEY_PERMISSIONS, RSA_KEY_SIZES, WRAP_ALGORITHMS } from './key-vault.js';
export type {
  CreateKeyOptions, KeyPermission, KeyProperties, KeyType, KeyVault, KeyVersionProperties, ManagedKeyVault, RsaKeySize,
  VaultChange, WrapAlgorithm, WrapResult,
} from './key-vault.js';
export { LocalKeyVault, OPERATOR_IDENTITY } from './local-vault.js';
export type { CreateVaultOptions, LocalVaultOptions } from './local-vault.js';
export {
  DEFAULT_SCRYPT, loadServiceMasterKey, MASTER_KEY_BYTES, MIN_SCRYPT_N, SERVICE_MASTER_KEY_ENV, SERVICE_MASTER_KEY_FILE,
} from './master-key.js';
export type { ScryptParams } from './master-key.js';
export { KeyVaultRegistry, VAULT_REGISTRY_FILE, VAULTS_DIR } from './registry.js';
export type { CreateVaultRequest, VaultInfo, VaultRegistration } from './registry.js';
export { bytesEqual, SecretBytes } from './secret.js';
export type { VaultCredential } from './vault-unlock.js';
export { algorithmsFor } from './wrap.js';
