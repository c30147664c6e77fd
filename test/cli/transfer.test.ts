/** End to end: inspect, import (base image / archive), encrypt, copy and export of a small VHD. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { createImageWriter } from '../../lib/vhd/index.js';
import { ensureBuilt, json, tempDir, vdcrypt, type RunResult } from './helpers.js';

const MIB = 1024 * 1024;
const DISK = 8 * MIB;
let home = '';
let work = '';
let image = '';
const v = (...args: string[]): Promise<RunResult> => vdcrypt(['--home', home, ...args]);

beforeAll(async () => {
  await ensureBuilt();
  home = await tempDir();
  work = await tempDir();
  image = join(work, 'disk.vhd');
  const writer = await createImageWriter(image, { format: 'fixed', virtualSize: DISK });
  await writer.write(0, Buffer.alloc(MIB, 0x11));
  await writer.write(4 * MIB, Buffer.alloc(MIB, 0x22));
  await writer.finish();
  for (const args of [['account', 'create', 'src'], ['container', 'create', 'src/c'], ['account', 'create', 'plain', '--encryption', 'off'], ['container', 'create', 'plain/c']]) {
    expect((await v(...args)).code).toBe(0);
  }
});

describe('import, encrypt, copy, export', () => {
  it('inspect reports a valid fixed VHD; garbage is exit 1 with the report; a missing file is exit 4', async () => {
    const report = json<{ valid: boolean; format: string; virtualSize: number }>(await v('inspect', image, '--json'));
    expect(report).toMatchObject({ valid: true, format: 'fixed', virtualSize: DISK });
    await writeFile(join(work, 'junk.vhd'), Buffer.alloc(1000, 1));
    const junk = await v('inspect', join(work, 'junk.vhd'));
    expect(junk.code).toBe(1);
    expect(junk.stdout).toContain('valid          NO');
    expect((await v('inspect', join(work, 'nothing.vhd'))).code).toBe(4);
  });

  it('import --base-image stays plaintext; encrypt converts it; export gives the original back byte for byte', async () => {
    const imported = json<{ bytesWritten: number; bytesSkipped: number; mode: string }>(await v('import', image, 'src/c/base', '--base-image', '--json'));
    expect(imported.mode).toBe('base-image');
    expect(imported.bytesSkipped).toBeGreaterThanOrEqual(6 * MIB);
    let s = json<{ encryptedBytes: number; plaintextBytes: number; serverEncrypted: boolean }>(await v('status', 'src/c/base', '--json'));
    expect(s).toMatchObject({ encryptedBytes: 0, serverEncrypted: false });
    expect(s.plaintextBytes).toBeGreaterThan(0);
    const enc = json<{ bytesDone: number; serverEncrypted: boolean }>(await v('encrypt', 'src/c/base', '--json'));
    expect(enc.serverEncrypted).toBe(true);
    expect(enc.bytesDone).toBe(s.plaintextBytes);
    s = json(await v('status', 'src/c/base', '--json'));
    expect(s).toMatchObject({ plaintextBytes: 0, serverEncrypted: true });
    const again = json<{ bytesDone: number }>(await v('encrypt', 'src/c/base', '--json'));
    expect(again.bytesDone).toBe(0);
    const out = join(work, 'out.vhd');
    expect((await v('export', 'src/c/base', out)).code).toBe(0);
    expect((await readFile(out)).equals(await readFile(image))).toBe(true);
    expect((await v('import', image, 'src/c/base')).code).toBe(1); // BlobAlreadyExists (409)
    expect((await v('import', image, 'src/c/base', '--overwrite')).code).toBe(0);
  });

  it('import into an encrypting account without --base-image is encrypted; export formats', async () => {
    expect(json(await v('import', image, 'src/c/archive', '--json'))).toMatchObject({ mode: 'archive' });
    expect(json(await v('status', 'src/c/archive', '--json'))).toMatchObject({ plaintextBytes: 0, serverEncrypted: true });
    const dyn = join(work, 'out-dynamic.vhd');
    expect((await v('export', 'src/c/archive', dyn, '--format', 'vhd-dynamic')).code).toBe(0);
    expect(json(await v('inspect', dyn, '--json'))).toMatchObject({ valid: true, format: 'dynamic', virtualSize: DISK });
    const raw = join(work, 'out.raw');
    expect((await v('export', 'src/c/archive', raw, '--format', 'raw')).code).toBe(0);
    expect((await readFile(raw)).equals((await readFile(image)).subarray(0, DISK))).toBe(true);
    expect((await v('export', 'src/c/archive', raw, '--format', 'qcow2')).code).toBe(2);
    expect((await v('export', 'src/c/missing', raw)).code).toBe(4);
  });

  it('copy follows the destination account: encrypted source into a plaintext account stays readable', async () => {
    const copied = json<{ bytesDone: number; serverEncrypted: boolean }>(await v('copy', 'src/c/archive', 'plain/c/copy', '--json'));
    expect(copied.bytesDone).toBe(2 * MIB + 512);
    expect(copied.serverEncrypted).toBe(false);
    const a = await v('get', 'src/c/archive');
    const b = await v('get', 'plain/c/copy');
    expect(b.stdoutBytes.equals(a.stdoutBytes)).toBe(true);
    expect(json(await v('ranges', 'plain/c/copy', '--json'))).toEqual(json(await v('ranges', 'src/c/archive', '--json')));
  });
});
