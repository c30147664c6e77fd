/**
 * Tests that start child processes run the compiled code in dist/. `npm test` builds it before vitest starts;
 * when vitest is run directly, the first test file that needs dist/ builds it, under a lock, so that test files
 * running in parallel never read a half-written dist/ while another rewrites it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LOCK = join(ROOT, '.vdcrypt-tmp', 'dist.lock');
const LOCK_WAIT_MS = 180_000;

function newestMtime(dir: string, suffix: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path, suffix));
    else if (entry.name.endsWith(suffix)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function fresh(): boolean {
  try {
    return statSync(join(ROOT, 'dist/lib/index.js')).mtimeMs >= newestMtime(join(ROOT, 'lib'), '.ts');
  } catch {
    return false;
  }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Make sure dist/ holds a build of the current lib/ sources. */
export function ensureDist(): void {
  if (fresh()) return;
  mkdirSync(join(ROOT, '.vdcrypt-tmp'), { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error('timed out waiting for another test file to build dist/');
      sleep(200);
    }
  }
  try {
    if (!fresh()) {
      try {
        execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'ignore' });
      } catch {
        // tsc emits even with type errors elsewhere; `npm test` typechecks separately.
      }
    }
  } finally {
    rmdirSync(LOCK);
  }
}
