/**
 * Helpers of the CLI suite: build dist/ once per change (several test files share it under a lock), run the
 * real `node bin/vdcrypt.js` as a child process, and make temporary homes.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'vdcrypt.js');
const DIST = join(ROOT, 'dist');
const LOCK = join(DIST, '.cli-test-build.lock');
const STAMP = join(DIST, '.cli-test-build.stamp');
const LOCK_WAIT_MS = 100;
const LOCK_STALE_MS = 120_000;

async function newestSource(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, await newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, (await stat(path)).mtimeMs);
  }
  return newest;
}

async function mtime(path: string): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return 0;
  }
}

function tsc(): Promise<string> {
  return new Promise((resolve) => {
    execFile('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT }, (_error, stdout, stderr) => resolve(`${stdout}${stderr}`));
  });
}

/** Compile lib/ to dist/ unless dist is newer than every source; fail on errors in lib/cli. */
export async function ensureBuilt(): Promise<void> {
  await mkdir(DIST, { recursive: true });
  for (;;) {
    try {
      await mkdir(LOCK);
      break;
    } catch {
      if (Date.now() - (await mtime(LOCK)) > LOCK_STALE_MS) await rm(LOCK, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, LOCK_WAIT_MS));
    }
  }
  try {
    if ((await mtime(STAMP)) > (await newestSource(join(ROOT, 'lib')))) return;
    const output = await tsc();
    // Other folders may be mid-change; only errors in the CLI (or ones it imports) stop this suite.
    const ours = output.split('\n').filter((l) => l.includes('lib/cli/'));
    if (ours.length > 0) throw new Error(`tsc reported errors in lib/cli:\n${ours.join('\n')}`);
    await writeFile(STAMP, new Date().toISOString());
  } finally {
    await rm(LOCK, { recursive: true, force: true });
  }
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
