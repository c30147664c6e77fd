/**
 * Helpers of the CLI suite: make sure dist/ is built (test/support/dist.ts), run the real `node bin/vdcrypt.js`
 * as a child process, and make temporary homes.
 */
import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ensureDist } from '../support/dist.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'vdcrypt.js');
/** Compile lib/ to dist/ unless it is current (shared with every suite that runs compiled code). */
export async function ensureBuilt(): Promise<void> {
  ensureDist();
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  input?: Buffer | string;
  cwd?: string;
}

/** Run `vdcrypt <args>` to completion. */
export function vdcrypt(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...baseEnv(), ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({ code: code ?? (signal === null ? -1 : 128), stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** The environment of every run: no colour, no inherited vdcrypt settings. */
export function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  for (const name of ['VDCRYPT_HOME', 'VDCRYPT_VAULT_PASSPHRASE', 'VDCRYPT_SERVICE_MASTER_KEY', 'VDCRYPT_DEBUG', 'FORCE_COLOR']) delete env[name];
  return env;
}

export async function tempDir(prefix = 'vdcrypt-cli-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Parse a run's stdout as JSON (with a readable failure). */
export function json<T = Record<string, unknown>>(result: RunResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${result.code}): ${result.stdout}\nstderr: ${result.stderr}`);
  }
}
