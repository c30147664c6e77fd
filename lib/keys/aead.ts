/**
 * AES-256-GCM (NIST SP 800-38D) sealing for key material at rest and service-wrapped account keys.
 *
 * A sealed box is `{ iv, ct, tag }` in base64 (96-bit random IV, 128-bit tag). The additional authenticated data
 * names what the box is (vault, key, version, or account and generation), so a box moved to another place fails
 * to open. Opening never returns unauthenticated plaintext: a bad tag is `KeyVaultCorrupted`.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

import { KeyVaultError } from './errors.js';
import { SecretBytes } from './secret.js';

const GCM_IV_BYTES = 12;
const GCM_TAG_BYTES = 16;
const AES_256_KEY_BYTES = 32;

export interface SealedBox {
  iv: string;
  ct: string;
  tag: string;
}

function requireKey(key: SecretBytes): Buffer {
  if (key.length !== AES_256_KEY_BYTES) throw new RangeError(`AES-256-GCM needs a 32-byte key, got ${key.length}`);
  return key.bytes;
}

export function seal(key: SecretBytes, plaintext: Uint8Array, aad: string): SealedBox {
  if (plaintext.length === 0) throw new RangeError('nothing to seal: the plaintext is empty');
  const iv = randomBytes(GCM_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', requireKey(key), iv, { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv: iv.toString('base64'), ct: ct.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

function isSealedBox(value: unknown): value is SealedBox {
  if (typeof value !== 'object' || value === null) return false;
  const box = value as Record<string, unknown>;
  return typeof box['iv'] === 'string' && typeof box['ct'] === 'string' && typeof box['tag'] === 'string';
}

/** Open a sealed box; `what` names it in the error. Throws `KeyVaultCorrupted` if it does not authenticate. */
export function open(key: SecretBytes, box: unknown, aad: string, what: string): SecretBytes {
  if (!isSealedBox(box)) throw new KeyVaultError('KeyVaultCorrupted', `${what}: the sealed key material is malformed`);
  const iv = Buffer.from(box.iv, 'base64');
  const tag = Buffer.from(box.tag, 'base64');
  if (iv.length !== GCM_IV_BYTES || tag.length !== GCM_TAG_BYTES) {
    throw new KeyVaultError('KeyVaultCorrupted', `${what}: the sealed key material has a bad IV or tag length`);
  }
  const decipher = createDecipheriv('aes-256-gcm', requireKey(key), iv, { authTagLength: GCM_TAG_BYTES });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  const body = decipher.update(Buffer.from(box.ct, 'base64'));
  try {
    decipher.final(); // GCM emits everything from update(); final() only checks the tag
    if (body.length === 0) throw new Error('empty plaintext');
    return SecretBytes.copyOf(body);
  } catch (error) {
    throw new KeyVaultError('KeyVaultCorrupted', `${what}: the key material failed authentication (tampered or corrupted)`, { cause: error });
  } finally {
    body.fill(0);
  }
}
