/**
 * Key identifiers in the shape of Azure Key Vault's: `https://<vault>.vault.local/keys/<name>[/<version>]`
 * (Azure: `https://<vault>.vault.azure.net/keys/<name>/<version>`). The local host suffix resolves through the
 * vault registry to a vault directory. Names follow Azure's rules: vaults 3-24 characters of lowercase letters,
 * digits and single hyphens, starting with a letter and not ending with a hyphen; keys 1-127 letters, digits and
 * hyphens; versions 32 lowercase hex digits.
 */
import { KeyVaultError } from './errors.js';

export const LOCAL_VAULT_HOST_SUFFIX = '.vault.local';
const VAULT_NAME = /^[a-z](?!.*--)[a-z0-9-]{1,22}[a-z0-9]$/;
const KEY_NAME = /^[A-Za-z0-9-]{1,127}$/;
const KEY_VERSION = /^[0-9a-f]{32}$/;
export const KEY_VERSION_HEX_CHARS = 32;

export interface KeyIdentifier {
  vault: string;
  name: string;
  /** Absent: the newest version. */
  version?: string;
}

export function assertVaultName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new TypeError(`vault name must be a string, got ${typeof name}`);
  if (!VAULT_NAME.test(name)) {
    throw new KeyVaultError('KeyVaultInvalidName',
      `vault name must be 3-24 lowercase letters, digits and single hyphens, starting with a letter; got '${name}'`);
  }
}

export function assertKeyName(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new TypeError(`key name must be a string, got ${typeof name}`);
  if (!KEY_NAME.test(name)) {
    throw new KeyVaultError('KeyVaultInvalidName', `key name must be 1-127 letters, digits and hyphens; got '${name}'`);
  }
}

export function isKeyVersion(version: string): boolean {
  return KEY_VERSION.test(version);
}

export function vaultUri(vault: string): string {
  return `https://${vault}${LOCAL_VAULT_HOST_SUFFIX}`;
}

export function formatKeyUri(id: KeyIdentifier): string {
  return `${vaultUri(id.vault)}/keys/${id.name}${id.version === undefined ? '' : `/${id.version}`}`;
}

/** Parse a key URI; the version is optional. A trailing slash is allowed, as Azure allows it. */
export function parseKeyUri(uri: unknown): KeyIdentifier {
  if (typeof uri !== 'string') throw new TypeError(`key URI must be a string, got ${typeof uri}`);
  const invalid = (why: string): KeyVaultError => new KeyVaultError('KeyVaultInvalidKeyUri',
    `key URI must look like https://<vault>${LOCAL_VAULT_HOST_SUFFIX}/keys/<name>[/<version>] (${why}); got '${uri}'`);
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw invalid('not a URL');
  }
  if (url.protocol !== 'https:') throw invalid('scheme is not https');
  if (url.port !== '' || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw invalid('no port, credentials, query or fragment allowed');
  }
  if (!url.hostname.endsWith(LOCAL_VAULT_HOST_SUFFIX)) throw invalid(`host does not end in ${LOCAL_VAULT_HOST_SUFFIX}`);
  const vault = url.hostname.slice(0, -LOCAL_VAULT_HOST_SUFFIX.length);
  if (!VAULT_NAME.test(vault)) throw invalid('bad vault name');
  const parts = url.pathname.replace(/\/$/, '').split('/').slice(1);
  if (parts[0] !== 'keys' || parts.length < 2 || parts.length > 3) throw invalid('path is not /keys/<name>[/<version>]');
  const name = parts[1] ?? '';
  if (!KEY_NAME.test(name)) throw invalid('bad key name');
  const version = parts[2];
  if (version === undefined || version === '') return { vault, name };
  if (!KEY_VERSION.test(version)) throw invalid('version is not 32 lowercase hex digits');
  return { vault, name, version };
}
