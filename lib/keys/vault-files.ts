/**
 * On-disk formats of a local key vault directory:
 *
 * ```
 * <vault dir>/
 *   vault.json        header: name, region, creation time, how the master key is obtained (scrypt salt and
 *                     parameters, or "keyfile"); authenticated with the master key (wrong key = refused)
 *   keys/<name>.json  one key: properties, access list and every version's material sealed with AES-256-GCM
 *   audit.log         hash-chained audit records (audit-log.ts)
 *   audit.head        sequence number and hash of the newest audit record
 * ```
 *
 * Both JSON files are an *envelope*: the body as one line of JSON, then one line with HMAC-SHA-256 of exactly
 * those bytes under the vault's MAC sub-key. Any change to a file (a flipped byte, a truncation, a file swapped
 * in from another key) fails the MAC or the name check and is `KeyVaultCorrupted`; each version's material is
 * also sealed with its vault, key and version as associated data. Rolling a key file back to an older valid copy
 * is not detected (the audit log records every change). All files are 0600 and written atomically.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

import type { SealedBox } from './aead.js';
import { KeyVaultError } from './errors.js';
import type { KeyPermission, KeyType } from './key-vault.js';
import type { ScryptParams } from './master-key.js';
import type { SecretBytes } from './secret.js';

export const VAULT_FORMAT = 1;
export const VAULT_HEADER_FILE = 'vault.json';
export const KEYS_DIR = 'keys';
export const KEY_FILE_SUFFIX = '.json';
const MAC_HEX_CHARS = 64;

export type KdfDescriptor = ({ type: 'scrypt'; salt: string } & ScryptParams) | { type: 'keyfile' };

export interface VaultHeader {
  format: number;
  name: string;
  region: string;
  created: string;
  kdf: KdfDescriptor;
}

export interface StoredKeyVersion {
  version: string;
  created: string;
  /** SubjectPublicKeyInfo DER, base64 (RSA keys). */
  publicKey?: string;
  material: SealedBox;
}

export interface StoredKey {
  format: number;
  vault: string;
  name: string;
  kty: KeyType;
  keySize: number;
  enabled: boolean;
  created: string;
  updated: string;
  expires: string | null;
  deleted: string | null;
  access: Record<string, KeyPermission[]>;
  versions: StoredKeyVersion[];
}

export function materialAad(vault: string, key: string, version: string): string {
  return `vdcrypt-vault-key-material-v1|${vault}|${key}|${version}`;
}

function mac(macKey: SecretBytes, body: Buffer): string {
  return createHmac('sha256', macKey.bytes).update(body).digest('hex');
}

/** Serialize `body` as an authenticated envelope. */
export function encodeEnvelope(body: object, macKey: SecretBytes): Buffer {
  const json = Buffer.from(JSON.stringify(body), 'utf8');
  return Buffer.concat([json, Buffer.from(`\n${mac(macKey, json)}\n`, 'utf8')]);
}

/** Split an envelope without checking it (for reading the header before the key is known). */
export function splitEnvelope(data: Buffer, what: string): { body: Buffer; tag: string; parsed: unknown } {
  const firstNewline = data.indexOf(0x0a);
  const corrupt = (why: string): KeyVaultError => new KeyVaultError('KeyVaultCorrupted', `${what} is corrupted: ${why}`);
  if (firstNewline < 0) throw corrupt('no authentication line');
  const body = data.subarray(0, firstNewline);
  const rest = data.subarray(firstNewline + 1).toString('latin1');
  if (rest.length !== MAC_HEX_CHARS + 1 || !rest.endsWith('\n') || !/^[0-9a-f]+$/.test(rest.slice(0, MAC_HEX_CHARS))) {
    throw corrupt('the authentication line is malformed or the file was cut off');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw corrupt('the body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) throw corrupt('the body is not an object');
  return { body, tag: rest.slice(0, MAC_HEX_CHARS), parsed };
}

/** Check an envelope's MAC; returns the parsed body. `onMismatch` builds the error (corruption or wrong key). */
export function openEnvelope(data: Buffer, macKey: SecretBytes, what: string,
  onMismatch: () => KeyVaultError = () => new KeyVaultError('KeyVaultCorrupted', `${what} failed authentication: it was altered or corrupted`)): unknown {
  const { body, tag, parsed } = splitEnvelope(data, what);
  const expected = Buffer.from(mac(macKey, body), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(tag, 'hex'))) throw onMismatch();
  return parsed;
}

export function keyFileName(name: string): string {
  return `${name}${KEY_FILE_SUFFIX}`;
}

/** Shape checks of a key file body (after its MAC passed, so only our own writer's mistakes could fail them). */
export function asStoredKey(value: unknown, vault: string, name: string, what: string): StoredKey {
  const key = value as Partial<StoredKey>;
  const ok = key.format === VAULT_FORMAT && key.vault === vault && key.name === name
    && (key.kty === 'RSA' || key.kty === 'oct') && Array.isArray(key.versions) && key.versions.length > 0
    && typeof key.access === 'object' && key.access !== null && typeof key.enabled === 'boolean';
  if (!ok) throw new KeyVaultError('KeyVaultCorrupted', `${what} does not describe key '${name}' of vault '${vault}'`);
  return key as StoredKey;
}

export function asVaultHeader(value: unknown, what: string): VaultHeader {
  const header = value as Partial<VaultHeader>;
  const kdf = header.kdf as Partial<KdfDescriptor> | undefined;
  const ok = header.format === VAULT_FORMAT && typeof header.name === 'string' && typeof header.region === 'string'
    && typeof header.created === 'string' && kdf !== undefined
    && (kdf.type === 'keyfile' || (kdf.type === 'scrypt' && typeof (kdf as { salt?: unknown }).salt === 'string'));
  if (!ok) throw new KeyVaultError('KeyVaultCorrupted', `${what} is not a vdcrypt vault header`);
  return header as VaultHeader;
}
