/**
 * The cache of unwrapped account keys, held as ready XTS ciphers (the key schedule lives in native memory and
 * is wiped by `dispose`). An entry lives until the TTL passes, its account's key settings change, or any vault
 * changes state; every path out of the cache disposes the cipher. The clock is injected so tests can move time.
 *
 * `epoch` counts invalidations: a fill that started before one must not be cached (it may have unwrapped with
 * access that has since been revoked).
 */
import type { XtsCipher } from '../xts/index.js';

interface Entry {
  cipher: XtsCipher;
  expiresAt: number;
  vault: string | null;
}

export class CipherCache {
  readonly ttlMs: number;
  readonly #now: () => Date;
  readonly #entries = new Map<string, Entry>();
  /** account -> current generation, as of the last fill of the current generation. */
  readonly #current = new Map<string, { generation: number; expiresAt: number }>();
  #epoch = 0;

  constructor(ttlMs: number, now: () => Date) {
    this.ttlMs = ttlMs;
    this.#now = now;
  }

  get epoch(): number {
    return this.#epoch;
  }

  get size(): number {
    return this.#entries.size;
  }

  #key(account: string, generation: number): string {
    return `${account}#${generation}`;
  }

  /** A live cipher for `generation`, or for the current generation when it is undefined. */
  get(account: string, generation: number | undefined): { generation: number; cipher: XtsCipher } | undefined {
    this.sweep();
    const gen = generation ?? this.#current.get(account)?.generation;
    if (gen === undefined) return undefined;
    const entry = this.#entries.get(this.#key(account, gen));
    return entry === undefined ? undefined : { generation: gen, cipher: entry.cipher };
  }

  set(account: string, generation: number, cipher: XtsCipher, options: { current: boolean; vault: string | null }): void {
    const expiresAt = this.#now().getTime() + this.ttlMs;
    const key = this.#key(account, generation);
    this.#entries.get(key)?.cipher.dispose();
    this.#entries.set(key, { cipher, expiresAt, vault: options.vault });
    if (options.current) this.#current.set(account, { generation, expiresAt });
  }

  /** Dispose entries whose TTL has passed. */
  sweep(): void {
    const now = this.#now().getTime();
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt <= now) {
        entry.cipher.dispose();
        this.#entries.delete(key);
      }
    }
    for (const [account, current] of this.#current) if (current.expiresAt <= now) this.#current.delete(account);
  }

  /** Dispose every entry of one account. */
  dropAccount(account: string): void {
    this.#epoch++;
    this.#current.delete(account);
    for (const [key, entry] of this.#entries) {
      if (key.startsWith(`${account}#`)) {
        entry.cipher.dispose();
        this.#entries.delete(key);
      }
    }
  }

  /** Dispose every entry whose key came from `vault`. */
  dropVault(vault: string): void {
    this.#epoch++;
    for (const [key, entry] of this.#entries) {
      if (entry.vault === vault) {
        entry.cipher.dispose();
        this.#entries.delete(key);
        this.#current.delete(key.slice(0, key.indexOf('#')));
      }
    }
  }

  clear(): void {
    this.#epoch++;
    for (const entry of this.#entries.values()) entry.cipher.dispose();
    this.#entries.clear();
    this.#current.clear();
  }
}
