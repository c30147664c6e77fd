/**
 * The two master keys of the local installation.
 *
 * - The **service master key** wraps account encryption keys under `Microsoft.Storage` (service-managed keys,
 *   Azure SSE). It is 32 random bytes in `<home>/service-master.key` (mode 0600), created on first use; a
 *   deployment that keeps it elsewhere passes it in `VDCRYPT_SERVICE_MASTER_KEY` (64 hex digits or base64 of 32
 *   bytes), which takes precedence over the file.
 * - A **vault master key** protects one local key vault's key material. It is derived from a passphrase with
 *   scrypt (RFC 7914; the salt and cost parameters are stored in the vault) or read from a key file (32 raw bytes
 *   or 64 hex digits).
 *
 * Sub-keys for separate purposes (encryption, authentication) are split off with HKDF-SHA-256 (RFC 5869).
 */
import { hkdfSync, randomBytes, scrypt } from 'node:crypto';
import { join } from 'node:path';

import { createFileExclusive, ensurePrivateDirectory, readSecretFile } from './atomic-file.js';
import { KeyVaultError } from './errors.js';
import { SecretBytes } from './secret.js';

export const MASTER_KEY_BYTES = 32;
export const SERVICE_MASTER_KEY_FILE = 'service-master.key';
export const SERVICE_MASTER_KEY_ENV = 'VDCRYPT_SERVICE_MASTER_KEY';
const HEX_DIGITS_PER_BYTE = 2;
const HEX_RADIX = 16;
/** Largest key file accepted: 64 hex digits plus surrounding whitespace. */
const MAX_KEY_FILE_BYTES = 256;

/** scrypt cost parameters (RFC 7914 section 2). */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}
/** Defaults: N = 2^15, r = 8, p = 1 (about 32 MiB and 100 ms). */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };
/** Lowest cost accepted when a vault is created (tests use it to stay fast). */
export const MIN_SCRYPT_N = 2 ** 10;
export const SCRYPT_SALT_BYTES = 16;
const SCRYPT_MEMORY_HEADROOM = 2;
const SCRYPT_BYTES_PER_N_R = 128;

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x41 + 10;
  return -1;
}

/** Decode key bytes from a key file: exactly 32 raw bytes, or 64 hex digits (whitespace around them allowed). */
function decodeKeyFileBytes(raw: Buffer): SecretBytes | null {
  if (raw.length === MASTER_KEY_BYTES) return SecretBytes.copyOf(raw);
  let start = 0;
  let end = raw.length;
  while (start < end && isWhitespace(raw[start] ?? 0)) start++;
  while (end > start && isWhitespace(raw[end - 1] ?? 0)) end--;
  if (end - start !== MASTER_KEY_BYTES * HEX_DIGITS_PER_BYTE) return null;
  const key = SecretBytes.alloc(MASTER_KEY_BYTES);
  for (let i = 0; i < MASTER_KEY_BYTES; i++) {
    const hi = hexValue(raw[start + i * HEX_DIGITS_PER_BYTE] ?? 0);
    const lo = hexValue(raw[start + i * HEX_DIGITS_PER_BYTE + 1] ?? 0);
    if (hi < 0 || lo < 0) {
      key.dispose();
      return null;
    }
    key.bytes[i] = hi * HEX_RADIX + lo;
  }
  return key;
}

/** Read a 32-byte key file (raw or hex). */
export async function readKeyFile(path: string): Promise<SecretBytes> {
  const raw = await readSecretFile(path, MAX_KEY_FILE_BYTES);
  try {
    const key = decodeKeyFileBytes(raw);
    if (key === null) {
      throw new KeyVaultError('ServiceMasterKeyInvalid',
        `key file ${path} must hold ${MASTER_KEY_BYTES} raw bytes or ${MASTER_KEY_BYTES * HEX_DIGITS_PER_BYTE} hex digits, got ${raw.length} bytes of something else`);
    }
    return key;
  } finally {
    raw.fill(0);
  }
}

/** Decode a 32-byte key given as hex or base64 text (the environment variable form). */
export function decodeKeyText(text: string, what: string): SecretBytes {
  const trimmed = text.trim();
  const key = SecretBytes.alloc(MASTER_KEY_BYTES);
  let written = 0;
  if (/^[0-9a-fA-F]+$/.test(trimmed) && trimmed.length === MASTER_KEY_BYTES * HEX_DIGITS_PER_BYTE) {
    written = key.bytes.write(trimmed, 'hex');
  } else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    const scratch = Buffer.alloc(MASTER_KEY_BYTES * 2);
    written = scratch.write(trimmed, 'base64');
    if (written === MASTER_KEY_BYTES) key.bytes.set(scratch.subarray(0, MASTER_KEY_BYTES));
    scratch.fill(0);
  }
  if (written !== MASTER_KEY_BYTES) {
    key.dispose();
    throw new KeyVaultError('ServiceMasterKeyInvalid',
      `${what} must be ${MASTER_KEY_BYTES} bytes as ${MASTER_KEY_BYTES * HEX_DIGITS_PER_BYTE} hex digits or base64 (got ${trimmed.length} characters)`);
  }
  return key;
}

/** Load the service master key: from the environment if set, else `<home>/service-master.key` (made if absent). */
export async function loadServiceMasterKey(home: string, env: NodeJS.ProcessEnv = process.env): Promise<SecretBytes> {
  const fromEnv = env[SERVICE_MASTER_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return decodeKeyText(fromEnv, SERVICE_MASTER_KEY_ENV);
  const path = join(home, SERVICE_MASTER_KEY_FILE);
  await ensurePrivateDirectory(home);
  const fresh = SecretBytes.random(MASTER_KEY_BYTES);
  try {
    await createFileExclusive(path, fresh.bytes); // no-op when it exists (first writer wins)
  } finally {
    fresh.dispose();
  }
  return readKeyFile(path);
}

export function validateScryptParams(params: ScryptParams): void {
  const { N, r, p } = params;
  if (!Number.isSafeInteger(N) || N < MIN_SCRYPT_N || (N & (N - 1)) !== 0) {
    throw new RangeError(`scrypt N must be a power of two >= ${MIN_SCRYPT_N}, got ${N}`);
  }
  if (!Number.isSafeInteger(r) || r < 1) throw new RangeError(`scrypt r must be a positive integer, got ${r}`);
  if (!Number.isSafeInteger(p) || p < 1) throw new RangeError(`scrypt p must be a positive integer, got ${p}`);
}

export function newScryptSalt(): Buffer {
  return randomBytes(SCRYPT_SALT_BYTES);
}

/** Derive a vault master key from a passphrase with scrypt. */
export async function deriveFromPassphrase(passphrase: string | Uint8Array, salt: Uint8Array, params: ScryptParams): Promise<SecretBytes> {
  validateScryptParams(params);
  if (typeof passphrase !== 'string' && !(passphrase instanceof Uint8Array)) {
    throw new TypeError('passphrase must be a string or bytes');
  }
  if (passphrase.length === 0) throw new RangeError('passphrase must not be empty');
  const maxmem = SCRYPT_BYTES_PER_N_R * params.N * params.r * SCRYPT_MEMORY_HEADROOM;
  const derived = await new Promise<Buffer>((resolve, reject) => {
    scrypt(passphrase, salt, MASTER_KEY_BYTES, { ...params, maxmem }, (error, key) => (error ? reject(error) : resolve(key)));
  });
  return SecretBytes.adopt(derived);
}

/** Split a purpose-bound sub-key off a master key (HKDF-SHA-256, RFC 5869). */
export function deriveSubkey(master: SecretBytes, purpose: string, salt: Uint8Array = Buffer.alloc(0)): SecretBytes {
  return SecretBytes.adopt(new Uint8Array(hkdfSync('sha256', master.bytes, salt, purpose, MASTER_KEY_BYTES)));
}
