/**
 * Terminal behaviour: a progress bar under a pseudo-terminal (`script`), nothing on a pipe, plain lines with
 * --progress, and Ctrl-C (SIGINT) stopping an import cleanly (exit 130) so that --resume finishes it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { baseEnv, BIN, ensureBuilt, json, tempDir, vdcrypt, type RunResult } from './helpers.js';

const MIB = 1024 * 1024;
const HAVE_SCRIPT = spawnSync('script', ['--version']).status === 0;
let home = '';
let work = '';
let small = '';
const v = (...args: string[]): Promise<RunResult> => vdcrypt(['--home', home, ...args]);

/** A raw image with no zero runs, so import must send all of it. */
async function rawImage(path: string, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(4 * MIB);
  for (let i = 0; i < chunk.length; i++) chunk[i] = ((i * 7) & 0xff) | 1;
  const handle = await open(path, 'w');
  for (let pos = 0; pos < bytes; pos += chunk.length) {
    chunk.writeUInt32LE(pos / chunk.length, 0);
    await handle.write(chunk, 0, chunk.length, pos);
  }
  await handle.close();
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

beforeAll(async () => {
  await ensureBuilt();
  home = await tempDir();
  work = await tempDir();
  small = join(work, 'small.raw');
  await rawImage(small, 16 * MIB);
  for (const args of [['account', 'create', 'tty'], ['container', 'create', 'tty/c']]) expect((await v(...args)).code).toBe(0);
});

describe('progress display', () => {
  it.skipIf(!HAVE_SCRIPT)('shows a progress bar with bytes, skipped, rate and ETA on a terminal', () => {
    const cmd = [process.execPath, BIN, '--home', home, 'import', small, 'tty/c/pty'].map(shellQuote).join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { env: baseEnv(), encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    const screen = r.stdout.replace(/\r/g, '\n');
    expect(screen).toMatch(/import \[[█░]+\] 100% \| 16 MiB moved \| 0 B skipped \| [\d.]+ (K|M|G)iB\/s \| ETA \d+s/);
    expect(screen).toContain('imported');
  });

  it('shows nothing on a pipe, and plain lines there with --progress', async () => {
    const quiet = await v('import', small, 'tty/c/pipe');
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
    const lines = await v('--progress', 'encrypt', 'tty/c/pipe');
    expect(lines.code).toBe(0);
    expect(lines.stderr).toMatch(/^encrypt: 100% 0 B moved, 16 MiB skipped, .* ETA/m);
    expect(lines.stderr).not.toContain('\u001b[');
  });
});

describe('Ctrl-C', () => {
  it('SIGINT stops an import between chunks (exit 130, says how to resume); --resume completes it', async () => {
    const big = join(work, 'big.raw');
    await rawImage(big, 160 * MIB);
    const child = spawn(process.execPath, [BIN, '--home', home, '--progress', 'import', big, 'tty/c/big'], { env: baseEnv() });
    let stderr = '';
    let signalled = false;
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      if (!signalled && stderr.includes('import:')) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(130);
    expect(stderr).toMatch(/vdcrypt: OperationAborted: import stopped by Ctrl-C .*resume with: vdcrypt import .* --resume/);
    expect(stderr).not.toMatch(/\n\s+at /);

    const resumed = json<{ bytesResumed: number; bytesWritten: number }>(await v('import', big, 'tty/c/big', '--resume', '--json'));
    expect(resumed.bytesWritten + resumed.bytesResumed).toBe(160 * MIB);
    const out = join(work, 'big.out');
    expect((await v('export', 'tty/c/big', out, '--format', 'raw')).code).toBe(0);
    const digest = async (p: string): Promise<string> => createHash('sha256').update(await readFile(p)).digest('hex');
    expect(await digest(out)).toBe(await digest(big));
  });
});
