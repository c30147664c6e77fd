/** Storage accounts: encryption settings after Azure SSE, AEK generations, and the key question of the blob layer. */
export { AccountService, DEFAULT_KEY_CACHE_TTL_MS, DEFAULT_REGION, PAGE_SECTOR_SIZE } from './account-service.js';
export type { AccountServiceOptions, UpdateAccountPatch } from './account-service.js';
export { ACCOUNTS_DIR, accountIdentity, KEY_SOURCES } from './account-record.js';
export type { AccountProperties, KeySource, KeyVaultProperties } from './account-record.js';
export { AccountError } from './errors.js';
export type { AccountErrorCode } from './errors.js';
export { KeyVaultError, KeyVaultRegistry } from '../keys/index.js';
export type { KeyVault, KeyVaultErrorCode, ManagedKeyVault } from '../keys/index.js';
