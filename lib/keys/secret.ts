/**
 * Secret bytes: key material held in memory the key layer owns.
 *
 * Every secret lives in a `Buffer.alloc` buffer of its own (never a slice of Node's shared allocation pool,
 * never a string), so zeroizing it wipes the only copy the key layer made. Buffers returned by node:crypto
 * (decipher output, `privateDecrypt`, `scrypt`) are copied in with {@link SecretBytes.adopt}, which wipes the
 * original. `util.inspect`, `JSON.stringify` and string conversion show only the length.
 */
import { randomFillSync } from 'node:crypto';
import { inspect } from 'node:util';

import { KeyVaultError } from './errors.js';

export class SecretBytes {
  #bytes: Buffer | null;
  readonly length: number;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
    this.length = bytes.length;
  }

  /** Zero-filled secret storage of `length` bytes, outside the shared pool. */
  static alloc(length: number): SecretBytes {
    if (!Number.isSafeInteger(length) || length <= 0) throw new RangeError(`secret length must be positive, got ${length}`);
    return new SecretBytes(Buffer.alloc(length));
  }

  /** `length` bytes from the CSPRNG. */
  static random(length: number): SecretBytes {
    const secret = SecretBytes.alloc(length);
    randomFillSync(secret.bytes);
    return secret;
  }

  /** Copy `source` into fresh secret storage and zeroize `source` (it came from node:crypto or a file read). */
  static adopt(source: Uint8Array): SecretBytes {
    const secret = SecretBytes.alloc(source.length);
    secret.bytes.set(source);
    source.fill(0);
    return secret;
  }

  /** Copy `source` into fresh secret storage, leaving `source` as it is (the caller owns it). */
  static copyOf(source: Uint8Array): SecretBytes {
    const secret = SecretBytes.alloc(source.length);
    secret.bytes.set(source);
    return secret;
  }

  /** The bytes themselves. Do not keep references past {@link dispose}. */
  get bytes(): Buffer {
    if (this.#bytes === null) throw new KeyVaultError('KeyVaultCorrupted', 'this secret has been disposed');
    return this.#bytes;
  }

  get disposed(): boolean {
    return this.#bytes === null;
  }

  /** Overwrite the bytes with zeros and drop them. Idempotent. */
  dispose(): void {
    this.#bytes?.fill(0);
    this.#bytes = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toJSON(): { secret: string; length: number } {
    return { secret: '[redacted]', length: this.length };
  }

  toString(): string {
    return `[SecretBytes: ${this.length} bytes]`;
  }

  [inspect.custom](): string {
    return `SecretBytes { length: ${this.length}, disposed: ${this.disposed} }`;
  }
}

/** Constant-time equality of two byte strings of the same length (false for different lengths). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}
