/**
 * New key material for the local vault, from node:crypto: RSA key pairs (2048/3072/4096 bits, e = 65537) kept
 * as PKCS#8 DER, and AES-256 keys (Key Vault `oct`) from the CSPRNG. Version identifiers are 32 random hex
 * digits, like Key Vault's.
 */
import { createPublicKey, generateKeyPair, type KeyObject, randomBytes } from 'node:crypto';

import { AES_KEY_BITS, RSA_KEY_SIZES, type KeyType, type RsaKeySize } from './key-vault.js';
import { KEY_VERSION_HEX_CHARS } from './key-uri.js';
import { SecretBytes } from './secret.js';

const RSA_PUBLIC_EXPONENT = 65537;
const BITS_PER_BYTE = 8;
export const DEFAULT_RSA_SIZE: RsaKeySize = 3072;

export interface NewKeyMaterial {
  secret: SecretBytes;
  keySize: number;
  /** SubjectPublicKeyInfo DER, base64 (RSA). */
  publicKey?: string;
}

export function newKeyVersion(): string {
  return randomBytes(KEY_VERSION_HEX_CHARS / 2).toString('hex');
}

export function assertRsaSize(size: unknown): asserts size is RsaKeySize {
  if (!(RSA_KEY_SIZES as readonly unknown[]).includes(size)) {
    throw new RangeError(`RSA key size must be one of ${RSA_KEY_SIZES.join(', ')}, got ${String(size)}`);
  }
}

export async function generateKeyMaterial(kty: KeyType, size: number): Promise<NewKeyMaterial> {
  if (kty === 'oct') return { secret: SecretBytes.random(AES_KEY_BITS / BITS_PER_BYTE), keySize: AES_KEY_BITS };
  assertRsaSize(size);
  const privateKey = await new Promise<KeyObject>((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: size, publicExponent: RSA_PUBLIC_EXPONENT },
      (error, _publicKey, key) => (error ? reject(error) : resolve(key)));
  });
  const publicKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).toString('base64');
  return { secret: SecretBytes.adopt(privateKey.export({ format: 'der', type: 'pkcs8' })), keySize: size, publicKey };
}

/** JWK `n` and `e` (base64url) of a stored RSA public key. */
export function rsaPublicJwk(spkiBase64: string): { n: string; e: string } {
  const jwk = createPublicKey({ key: Buffer.from(spkiBase64, 'base64'), format: 'der', type: 'spki' }).export({ format: 'jwk' });
  return { n: String(jwk.n), e: String(jwk.e) };
}
