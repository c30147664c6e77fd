/**
 * Key wrapping with node:crypto (no hand-written primitives):
 *
 * - `RSA-OAEP-256`: RSAES-OAEP with SHA-256 and MGF1-SHA-256 (RFC 8017 section 7.1), Key Vault's recommended
 *   algorithm for RSA keys;
 * - `RSA-OAEP`: RSAES-OAEP with SHA-1 and MGF1-SHA-1 (RFC 8017; JWA RFC 7518 section 4.3);
 * - `A256KW`: AES Key Wrap with a 256-bit key (RFC 3394, default IV A6A6A6A6A6A6A6A6; JWA section 4.4).
 *
 * Unwrap failures (a wrapped key made by another key, or altered) are `KeyVaultUnwrapFailed`.
 */
import {
  constants, createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, type KeyObject, privateDecrypt,
  publicEncrypt,
} from 'node:crypto';

import { KeyVaultError } from './errors.js';
import type { KeyType, WrapAlgorithm } from './key-vault.js';
import { SecretBytes } from './secret.js';

/** RFC 3394 section 2.2.3.1 default initial value. */
const RFC3394_IV = Buffer.alloc(8, 0xa6);
const RFC3394_BLOCK_BYTES = 8;
const RFC3394_MIN_BYTES = 16;
const AES_256_KEY_BYTES = 32;

export function algorithmsFor(kty: KeyType): WrapAlgorithm[] {
  return kty === 'RSA' ? ['RSA-OAEP-256', 'RSA-OAEP'] : ['A256KW'];
}

/** Private material of one key version: a PKCS#8 DER RSA private key, or the 32 bytes of an AES key. */
export interface KeyMaterial {
  kty: KeyType;
  secret: SecretBytes;
}

function oaepHash(alg: WrapAlgorithm): 'sha256' | 'sha1' {
  return alg === 'RSA-OAEP-256' ? 'sha256' : 'sha1';
}

function requireAlgorithm(kty: KeyType, alg: WrapAlgorithm, what: string): void {
  if (!algorithmsFor(kty).includes(alg)) {
    throw new KeyVaultError('KeyVaultUnsupportedAlgorithm',
      `${what} is an ${kty} key; it wraps with ${algorithmsFor(kty).join(' or ')}, not ${String(alg)}`);
  }
}

function privateKeyOf(material: KeyMaterial): KeyObject {
  return createPrivateKey({ key: material.secret.bytes, format: 'der', type: 'pkcs8' });
}

function aesKeyOf(material: KeyMaterial): Buffer {
  if (material.secret.length !== AES_256_KEY_BYTES) throw new RangeError('an A256KW key is 32 bytes');
  return material.secret.bytes;
}

/** Wrap `key` (whose length must suit the algorithm) under `material`. The result is not secret. */
export function wrapWith(material: KeyMaterial, alg: WrapAlgorithm, key: Uint8Array, what: string): Buffer {
  requireAlgorithm(material.kty, alg, what);
  if (material.kty === 'RSA') {
    const publicKey = createPublicKey(privateKeyOf(material));
    return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaepHash(alg) }, key);
  }
  if (key.length < RFC3394_MIN_BYTES || key.length % RFC3394_BLOCK_BYTES !== 0) {
    throw new RangeError(`A256KW wraps a multiple of 8 bytes, at least 16; got ${key.length}`);
  }
  const cipher = createCipheriv('id-aes256-wrap', aesKeyOf(material), RFC3394_IV);
  return Buffer.concat([cipher.update(key), cipher.final()]);
}

/** Unwrap under `material` into secret memory. */
export function unwrapWith(material: KeyMaterial, alg: WrapAlgorithm, wrapped: Uint8Array, what: string): SecretBytes {
  requireAlgorithm(material.kty, alg, what);
  const parts: Buffer[] = [];
  try {
    if (material.kty === 'RSA') {
      parts.push(privateDecrypt({ key: privateKeyOf(material), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaepHash(alg) }, wrapped));
    } else {
      const decipher = createDecipheriv('id-aes256-wrap', aesKeyOf(material), RFC3394_IV);
      parts.push(decipher.update(wrapped));
      parts.push(decipher.final());
    }
    const total = parts.reduce((sum, part) => sum + part.length, 0);
    const out = SecretBytes.alloc(Math.max(total, 1));
    let offset = 0;
    for (const part of parts) {
      out.bytes.set(part, offset);
      offset += part.length;
    }
    if (total === 0) {
      out.dispose();
      throw new Error('empty result');
    }
    return out;
  } catch (error) {
    if (error instanceof KeyVaultError) throw error;
    throw new KeyVaultError('KeyVaultUnwrapFailed',
      `${what} cannot unwrap this key with ${alg}: it was wrapped by a different key or altered`, { cause: error });
  } finally {
    for (const part of parts) part.fill(0);
  }
}
