/**
 * End to end through `node bin/vdcrypt.js`: accounts, containers, blobs, put/get, ranges, snapshots and
 * status, with their --json shapes and the exit codes of each error family.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { ensureBuilt, json, tempDir, vdcrypt, type RunResult } from './helpers.js';

const KIB = 1024;
const MIB = 1024 * KIB;
let home = '';
let work = '';
const v = (...args: string[]): Promise<RunResult> => vdcrypt(['--home', home, ...args]);

function pattern(length: number, seed: number): Buffer {
  const data = Buffer.alloc(length);
  for (let i = 0; i < length; i++) data[i] = (i * 31 + seed) & 0xff;
  return data;
}

beforeAll(async () => {
  await ensureBuilt();
  home = await tempDir();
  work = await tempDir();
  expect((await v('account', 'create', 'acct1')).code).toBe(0);
  expect((await v('container', 'create', 'acct1/disks')).code).toBe(0);
});

describe('help and usage', () => {
  it('--help lists every command and exits 0', async () => {
    const r = await vdcrypt(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['account', 'vault', 'key', 'audit', 'container', 'blob', 'import', 'export', 'put', 'get', 'ranges',
      'snapshot', 'copy', 'encrypt', 'status', 'inspect', 'bench', 'demo']) expect(r.stdout).toContain(`  ${cmd}`);
  });

  it('--help works on every subcommand', async () => {
    for (const args of [['account', 'create'], ['key', 'grant'], ['put'], ['status'], ['import'], ['demo'], ['bench']]) {
      const r = await vdcrypt([...args, '--help']);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toContain('Usage: vdcrypt');
    }
  });

  it('unknown commands, missing arguments and bad values are usage errors (exit 2), one line, no stack', async () => {
    for (const args of [['frob'], ['blob', 'create', 'acct1/disks/x'], ['blob', 'create', 'acct1/disks/x', '--size', '12x'],
      ['status', 'not-a-blob-address'], ['account', 'create', 'Bad_Name'], ['account']]) {
      const r = await v(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const r = await v('frob');
    expect(r.stderr).toBe("vdcrypt: UsageError: unknown command 'frob'\n");
  });

  it('--json errors are {"error": {code, status, message}} on stderr', async () => {
    const r = await v('status', 'acct1/disks/missing', '--json');
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(JSON.parse(r.stderr)).toEqual({ error: { code: 'BlobNotFound', status: 404, message: expect.stringContaining('missing') } });
  });
});

describe('accounts', () => {
  it('account show --json uses the Azure property names', async () => {
    const props = json<{ encryption: { keySource: string; services: { blob: { enabled: boolean } } } }>(await v('account', 'show', 'acct1', '--json'));
    expect(props.encryption.keySource).toBe('Microsoft.Storage');
    expect(props.encryption.services.blob.enabled).toBe(true);
  });

  it('account update toggles encryption; --roll-data-key adds a generation; a missing account is exit 4', async () => {
    expect((await v('account', 'create', 'acct2', '--encryption', 'off')).code).toBe(0);
    let props = json<{ encryption: { services: { blob: { enabled: boolean } } }; currentGeneration: number }>(await v('account', 'show', 'acct2', '--json'));
    expect(props.encryption.services.blob.enabled).toBe(false);
    props = json(await v('account', 'update', 'acct2', '--encryption', 'on', '--roll-data-key', '--json'));
    expect(props.encryption.services.blob.enabled).toBe(true);
    expect(props.currentGeneration).toBe(2);
    expect((await v('account', 'show', 'nosuchacct')).code).toBe(4);
    expect((await v('account', 'update', 'acct2')).code).toBe(2);
    expect((await v('account', 'create', 'acct2')).code).toBe(1); // 409 conflict: "anything else"
  });
});

describe('pages', () => {
  it('put from a file and from stdin, get to stdout and to a file, ranges with inclusive ends', async () => {
    expect((await v('blob', 'create', 'acct1/disks/b1', '--size', '4M')).code).toBe(0);
    const a = pattern(MIB, 1);
    await writeFile(join(work, 'a.bin'), a);
    const put = await v('put', 'acct1/disks/b1', '--offset', '1M', join(work, 'a.bin'), '--json');
    expect(put.code).toBe(0);
    expect(json(put)).toMatchObject({ bytes: MIB, encryptedBytes: MIB });
    const b = pattern(64 * KIB, 2);
    expect((await vdcrypt(['--home', home, 'put', 'acct1/disks/b1', '--offset', '3M', '-'], { input: b })).code).toBe(0);

    const whole = await v('get', 'acct1/disks/b1');
    expect(whole.code).toBe(0);
    expect(whole.stdoutBytes.length).toBe(4 * MIB);
    expect(whole.stdoutBytes.subarray(MIB, 2 * MIB).equals(a)).toBe(true);
    expect(whole.stdoutBytes.subarray(3 * MIB, 3 * MIB + 64 * KIB).equals(b)).toBe(true);
    expect(whole.stdoutBytes.subarray(0, MIB).every((x) => x === 0)).toBe(true);

    const out = join(work, 'part.bin');
    expect((await v('get', 'acct1/disks/b1', '--offset', '1M', '--length', '4096', '-o', out)).code).toBe(0);
    expect((await readFile(out)).equals(a.subarray(0, 4096))).toBe(true);

    expect(json(await v('ranges', 'acct1/disks/b1', '--json'))).toEqual({
      ranges: [{ start: MIB, end: 2 * MIB - 1 }, { start: 3 * MIB, end: 3 * MIB + 64 * KIB - 1 }],
    });
  });

  it('refuses unaligned input and offsets with a usage error', async () => {
    await writeFile(join(work, 'odd.bin'), Buffer.alloc(1000, 7));
    const odd = await v('put', 'acct1/disks/b1', '--offset', '0', join(work, 'odd.bin'));
    expect(odd.code).toBe(2);
    expect(odd.stderr).toMatch(/^vdcrypt: UsageError: .*multiple of 512/);
    expect((await v('put', 'acct1/disks/b1', '--offset', '100', join(work, 'a.bin'))).code).toBe(2);
    const stdin = await vdcrypt(['--home', home, 'put', 'acct1/disks/b1', '--offset', '0', '-'], { input: Buffer.alloc(700, 1) });
    expect(stdin.code).toBe(2);
    expect((await v('put', 'acct1/disks/b1', '--offset', '4M', join(work, 'a.bin'))).code).toBe(2); // 416 past the end
  });

  it('put --clear --length clears pages', async () => {
    expect((await v('blob', 'create', 'acct1/disks/c1', '--size', '1M')).code).toBe(0);
    await writeFile(join(work, 'c.bin'), pattern(256 * KIB, 3));
    expect((await v('put', 'acct1/disks/c1', '--offset', '0', join(work, 'c.bin'))).code).toBe(0);
    expect((await v('put', 'acct1/disks/c1', '--clear', '--offset', '64K', '--length', '64K')).code).toBe(0);
    expect(json(await v('ranges', 'acct1/disks/c1', '--json'))).toEqual({
      ranges: [{ start: 0, end: 64 * KIB - 1 }, { start: 128 * KIB, end: 256 * KIB - 1 }],
    });
  });

  it('snapshot --json prints {"snapshot": id}; the id works with get, ranges --diff and export', async () => {
    expect((await v('blob', 'create', 'acct1/disks/s1', '--size', '1M')).code).toBe(0);
    await writeFile(join(work, 's.bin'), pattern(64 * KIB, 4));
    expect((await v('put', 'acct1/disks/s1', '--offset', '0', join(work, 's.bin'))).code).toBe(0);
    const snap = json<{ snapshot: string }>(await v('snapshot', 'acct1/disks/s1', '--json'));
    expect(Object.keys(snap)).toEqual(['snapshot']);
    expect(typeof snap.snapshot).toBe('string');
    expect((await v('put', 'acct1/disks/s1', '--offset', '512K', join(work, 's.bin'))).code).toBe(0);
    const diff = json<{ ranges: Array<{ start: number; end: number }> }>(await v('ranges', 'acct1/disks/s1', '--diff', snap.snapshot, '--json'));
    expect(diff.ranges).toEqual([{ start: 512 * KIB, end: 576 * KIB - 1 }]);
    const old = await v('get', `acct1/disks/s1@${snap.snapshot}`, '--offset', '512K', '--length', '512');
    expect(old.stdoutBytes.every((x) => x === 0)).toBe(true);
    const out = join(work, 'snap.raw');
    expect((await v('export', `acct1/disks/s1@${snap.snapshot}`, out, '--format', 'raw')).code).toBe(0);
    const raw = await readFile(out);
    expect(raw.length).toBe(MIB);
    expect(raw.subarray(0, 64 * KIB).equals(pattern(64 * KIB, 4))).toBe(true);
    expect((await v('get', 'acct1/disks/s1@nosuchsnapshot')).code).toBe(4);
    expect((await v('put', `acct1/disks/s1@${snap.snapshot}`, '--offset', '0', join(work, 's.bin'))).code).toBe(2);
  });
});

describe('status', () => {
  it('status --json has the issue\'s fields, inclusive ends, state and generation', async () => {
    expect((await v('blob', 'create', 'acct2/disks/m', '--size', '1M')).code).toBe(4); // no such container
    expect((await v('container', 'create', 'acct2/disks')).code).toBe(0);
    expect((await v('blob', 'create', 'acct2/disks/m', '--size', '1M')).code).toBe(0);
    await writeFile(join(work, 'm.bin'), pattern(128 * KIB, 5));
    expect((await v('account', 'update', 'acct2', '--encryption', 'off')).code).toBe(0);
    expect((await v('put', 'acct2/disks/m', '--offset', '0', join(work, 'm.bin'))).code).toBe(0);
    expect((await v('account', 'update', 'acct2', '--encryption', 'on')).code).toBe(0);
    expect((await v('put', 'acct2/disks/m', '--offset', '512K', join(work, 'm.bin'))).code).toBe(0);
    const s = json(await v('status', 'acct2/disks/m', '--json'));
    expect(s).toEqual({
      blob: 'acct2/disks/m', size: MIB, serverEncrypted: false,
      allocatedBytes: 256 * KIB, encryptedBytes: 128 * KIB, plaintextBytes: 128 * KIB, unallocatedBytes: 768 * KIB,
      ranges: [
        { start: 0, end: 128 * KIB - 1, state: 'plaintext', generation: null },
        { start: 512 * KIB, end: 640 * KIB - 1, state: 'encrypted', generation: 2 },
      ],
    });
  });

  it('status --map draws cells with a legend and byte counts (distinct characters without colour)', async () => {
    const r = await v('status', 'acct2/disks/m', '--map');
    expect(r.code).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => l.includes('│'));
    expect(rows.length).toBe(4);
    const cells = rows.map((l) => l.slice(l.indexOf('│') + 1, l.lastIndexOf('│'))).join('');
    expect(cells.length).toBe(256);
    expect(cells.slice(0, 32)).toBe('░'.repeat(32));
    expect(cells.slice(32, 128)).toBe('·'.repeat(96));
    expect(cells.slice(128, 160)).toBe('█'.repeat(32));
    expect(r.stdout).toContain('· unallocated 768 KiB');
    expect(r.stdout).toContain('░ plaintext 128 KiB');
    expect(r.stdout).toContain('█ encrypted, data key 2: 128 KiB');
    expect(r.stdout).toContain('serverEncrypted: false');
    expect(r.stdout).not.toContain('\u001b['); // NO_COLOR
    const coloured = await vdcrypt(['--home', home, 'status', 'acct2/disks/m', '--map'], { env: { NO_COLOR: '', FORCE_COLOR: '1' } });
    expect(coloured.stdout).toContain('\u001b[');
  });

  it('status --svg writes a standalone SVG with title, legend and counts', async () => {
    const file = join(work, 'map.svg');
    expect((await v('status', 'acct2/disks/m', '--svg', file)).code).toBe(0);
    const svg = await readFile(file, 'utf8');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain('<title>Encryption map of acct2/disks/m</title>');
    expect(svg).toContain('plaintext 128 KiB');
    expect(svg).toContain('encrypted, data key 2: 128 KiB');
    expect(svg.match(/<rect x=/g)?.length).toBeGreaterThanOrEqual(256);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  });
});
