/** Shared helpers of the key and account tests: temporary homes, fast vault credentials, error assertions. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'vitest';

import { VdcryptError } from '../../lib/errors.js';
import type { VaultCredential } from '../../lib/keys/index.js';

/** Cheapest scrypt the vault accepts, so tests stay fast (production default is N = 2^15). */
export const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };

export function passphrase(text = 'correct horse battery staple'): VaultCredential {
  return { passphrase: text, scrypt: FAST_SCRYPT };
}

export async function tempHome(): Promise<{ home: string; cleanup: () => Promise<void> }> {
  const home = await mkdtemp(join(tmpdir(), 'vdcrypt-keys-'));
  return { home, cleanup: () => rm(home, { recursive: true, force: true }) };
}

/** Await `promise` and check it rejects with a VdcryptError of `code` (and `status` when given). */
export async function expectCode(promise: Promise<unknown> | (() => Promise<unknown>), code: string, status?: number): Promise<VdcryptError> {
  let caught: unknown;
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(VdcryptError);
  const error = caught as VdcryptError;
  expect(error.code).toBe(code);
  if (status !== undefined) expect(error.status).toBe(status);
  return error;
}

/** A mutable clock for injected `now` functions. */
export class TestClock {
  #ms: number;

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.#ms = start;
  }

  readonly now = (): Date => new Date(this.#ms);

  advance(ms: number): void {
    this.#ms += ms;
  }
}
