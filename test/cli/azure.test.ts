/**
 * End to end, issue 7: `vdcrypt account create <account> --backend azure` with the connection string from the
 * environment, then every blob command against that account on a real Azurite (test/remote/azurite.ts):
 * import of a fixed VHD as a base image (bulk path), put, status, ranges, snapshot, export, get, encrypt, copy
 * between backends, and revocation with a customer key. A plain `@azure/storage-blob` client checks what Azure
 * holds: base-image pages are the image's bytes, writes after boot are ciphertext. The connection string
 * (its account key) never appears in any output, and the backend file is 0600.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import {
  AccountSASPermissions, AccountSASResourceTypes, AccountSASServices, BlobServiceClient, generateAccountSASQueryParameters,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createImageWriter } from '../../lib/vhd/index.js';
import { type AzuriteServer, startAzurite } from '../remote/azurite.js';
import { ensureBuilt, json, tempDir, vdcrypt, type RunResult } from './helpers.js';

const MiB = 1024 * 1024;
const PAGE = 512;
const PASSPHRASE = 'azure backend passphrase 41c9';
const ACCOUNT = 'remote1';
const DISK = `${ACCOUNT}/disks/vm1.vhd`;
const VIRTUAL_SIZE = 4 * MiB;

let server: AzuriteServer;
let home = '';
let work = '';
let connectionString = '';
let accountKey = '';
const outputs: RunResult[] = [];

async function v(...args: string[]): Promise<RunResult> {
  const r = await vdcrypt(['--home', home, ...args], {
    env: { VDCRYPT_VAULT_PASSPHRASE: PASSPHRASE, VDCRYPT_AZURE_CONNECTION_STRING: connectionString },
  });
  outputs.push(r);
  return r;
}

async function ok(...args: string[]): Promise<RunResult> {
  const r = await v(...args);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

function plainBlob(blob: string): ReturnType<ReturnType<BlobServiceClient['getContainerClient']>['getPageBlobClient']> {
  return BlobServiceClient.fromConnectionString(connectionString).getContainerClient('disks').getPageBlobClient(blob);
}

/** The base image: 4 MiB fixed VHD with data at 0, 1 MiB and near the end. */
async function makeImage(path: string): Promise<Buffer> {
  const writer = await createImageWriter(path, { format: 'fixed', virtualSize: VIRTUAL_SIZE });
  await writer.write(0, randomBytes(64 * 1024));
  await writer.write(MiB, randomBytes(256 * 1024));
  await writer.write(VIRTUAL_SIZE - 8 * PAGE, randomBytes(8 * PAGE));
  await writer.finish();
  return readFile(path);
}

let image: Buffer;
const write = randomBytes(128 * 1024);
const WRITE_AT = 2 * MiB;

beforeAll(async () => {
  await ensureBuilt();
  server = await startAzurite([ACCOUNT, 'other']);
  connectionString = server.connectionString(ACCOUNT);
  accountKey = /AccountKey=([^;]+)/.exec(connectionString)?.[1] ?? '';
  expect(accountKey).not.toBe('');
  home = await tempDir();
  work = await tempDir();
  image = await makeImage(join(work, 'base.vhd'));
}, 60_000);

afterAll(async () => {
  await server?.stop();
  for (const dir of [home, work]) if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('an account on the azure backend', () => {
  it('account create --backend azure takes the connection string from the environment; show redacts it; the file is 0600', async () => {
    const created = json<{ name: string; backend: Record<string, unknown> }>(await ok('account', 'create', ACCOUNT, '--backend', 'azure', '--json'));
    expect(created.backend).toEqual({
      backend: 'azure', endpoint: `http://127.0.0.1:${server.port}/${ACCOUNT}`, accountName: ACCOUNT, credentialType: 'connectionString',
    });
    const shown = await ok('account', 'show', ACCOUNT);
    expect(shown.stdout).toMatch(new RegExp(`backend +azure http://127\\.0\\.0\\.1:${server.port}/${ACCOUNT}`));
    const file = await stat(join(home, 'backends', `${ACCOUNT}.json`));
    expect(file.mode & 0o777).toBe(0o600);
    expect((await stat(join(home, 'backends'))).mode & 0o077).toBe(0);
    expect(await readFile(join(home, 'backends', `${ACCOUNT}.json`), 'utf8')).toContain(accountKey);
    // A local account beside it.
    expect(json<{ backend: unknown }>(await ok('account', 'create', 'local1', '--json')).backend).toEqual({ backend: 'local' });
  });

  it('bad backend options are usage errors (exit 2) that never echo the credential', async () => {
    const bogus = 'AccountName=x;AccountKey=c2VjcmV0LXNob3VsZC1ub3QtbGVhaw==';
    const bad = await vdcrypt(['--home', home, 'account', 'create', 'bad1', '--backend', 'azure', '--connection-string', `${bogus};nonsense`], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).not.toContain('c2VjcmV0');
    const none = await vdcrypt(['--home', home, 'account', 'create', 'bad2', '--backend', 'azure'], {});
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('VDCRYPT_AZURE_CONNECTION_STRING');
    expect((await v('account', 'create', 'bad3', '--backend', 'floppy')).code).toBe(2);
    expect((await v('account', 'list', '--json')).stdout).not.toContain('bad');
  });

  it('container create, import --base-image (bulk), put: Azure holds the image bytes and ciphertext of the write', async () => {
    await ok('container', 'create', `${ACCOUNT}/disks`);
    expect((await BlobServiceClient.fromConnectionString(connectionString).getContainerClient('disks').exists())).toBe(true);
    const imported = json<{ mode: string; backend: string; bytesWritten: number; blobSize: number }>(
      await ok('import', join(work, 'base.vhd'), DISK, '--base-image', '--json'));
    expect(imported).toMatchObject({ mode: 'base-image', backend: 'azure', blobSize: VIRTUAL_SIZE + PAGE });
    expect(imported.bytesWritten).toBe(64 * 1024 + 256 * 1024 + 8 * PAGE + PAGE);
    // A fixed VHD in base-image mode is the file, byte for byte, as `az storage blob upload --type page` makes it.
    expect((await plainBlob('vm1.vhd').downloadToBuffer(0, image.length)).equals(image)).toBe(true);

    await writeFile(join(work, 'write.bin'), write);
    await ok('put', DISK, '--offset', String(WRITE_AT), join(work, 'write.bin'));
    const onAzure = await plainBlob('vm1.vhd').downloadToBuffer(WRITE_AT, write.length);
    expect(onAzure.equals(write)).toBe(false);
    expect(onAzure.subarray(0, PAGE).equals(write.subarray(0, PAGE))).toBe(false);
    expect((await plainBlob('vm1.vhd').downloadToBuffer(0, 64 * 1024)).equals(image.subarray(0, 64 * 1024))).toBe(true);
  });

  it('status, ranges, get, snapshot and export work through the routed store', async () => {
    const status = json<{ serverEncrypted: boolean; encryptedBytes: number; plaintextBytes: number; ranges: Array<{ start: number; end: number; state: string }> }>(
      await ok('status', DISK, '--json'));
    expect(status.serverEncrypted).toBe(false);
    expect(status.encryptedBytes).toBe(write.length);
    expect(status.plaintextBytes).toBe(64 * 1024 + 256 * 1024 + 8 * PAGE + PAGE);
    expect(status.ranges).toContainEqual({ start: WRITE_AT, end: WRITE_AT + write.length - 1, state: 'encrypted', generation: 1 });
    expect(status.ranges).toContainEqual({ start: 0, end: 64 * 1024 - 1, state: 'plaintext', generation: null });

    const got = await ok('get', DISK, '--offset', String(WRITE_AT), '--length', String(write.length));
    expect(got.stdoutBytes.equals(write)).toBe(true);
    const ranges = json<{ ranges: Array<{ start: number; end: number }> }>(await ok('ranges', DISK, '--json'));
    expect(ranges.ranges[0]).toEqual({ start: 0, end: 64 * 1024 - 1 });

    const snapshot = json<{ snapshot: string }>(await ok('snapshot', DISK, '--json')).snapshot;
    await ok('put', DISK, '--offset', '0', join(work, 'write.bin'));
    const diff = json<{ ranges: Array<{ start: number; end: number }> }>(await ok('ranges', DISK, '--diff', snapshot, '--json'));
    expect(diff.ranges).toEqual([{ start: 0, end: write.length - 1 }]);

    const expected = Buffer.from(image);
    write.copy(expected, WRITE_AT);
    await ok('export', `${DISK}@${snapshot}`, join(work, 'out.vhd'), '--format', 'vhd');
    expect((await readFile(join(work, 'out.vhd'))).equals(expected)).toBe(true);
  });

  it('copy to a local account and encrypt: the data follows; Azure then holds no plaintext', async () => {
    await ok('container', 'create', 'local1/disks');
    const copied = json<{ serverEncrypted: boolean }>(await ok('copy', DISK, 'local1/disks/vm1.vhd', '--json'));
    expect(copied.serverEncrypted).toBe(true);
    const a = await ok('get', DISK, '--length', String(VIRTUAL_SIZE));
    const b = await ok('get', 'local1/disks/vm1.vhd', '--length', String(VIRTUAL_SIZE));
    expect(a.stdoutBytes.equals(b.stdoutBytes)).toBe(true);

    await ok('encrypt', DISK);
    expect(json<{ serverEncrypted: boolean }>(await ok('status', DISK, '--json')).serverEncrypted).toBe(true);
    expect((await plainBlob('vm1.vhd').downloadToBuffer(MiB, 256 * 1024)).equals(image.subarray(MiB, MiB + 256 * 1024))).toBe(false);
    expect((await ok('get', DISK, '--offset', String(MiB), '--length', String(256 * 1024))).stdoutBytes
      .equals(image.subarray(MiB, MiB + 256 * 1024))).toBe(true);
  });

  it('a revoked customer key blocks reads of the Azure-backed account (exit 3); restoring it restores them', async () => {
    await ok('vault', 'create', 'kv1', '--scrypt-n', '1024');
    await ok('key', 'create', 'kv1/k1', '--kty', 'RSA', '--size', '2048');
    await ok('key', 'grant', 'kv1/k1', '--account', ACCOUNT);
    await ok('account', 'update', ACCOUNT, '--key-source', 'keyvault', '--key-uri', 'https://kv1.vault.local/keys/k1');
    await ok('key', 'disable', 'kv1/k1');
    for (const args of [['get', DISK, '--length', '512'], ['status', DISK], ['put', DISK, '--offset', '0', join(work, 'write.bin')]]) {
      const r = await v(...args, '--json');
      expect(r.code, args.join(' ')).toBe(3);
      expect((JSON.parse(r.stderr) as { error: { code: string } }).error.code).toBe('KeyVaultEncryptionKeyDisabled');
    }
    await ok('key', 'enable', 'kv1/k1');
    const back = await ok('get', DISK, '--length', String(write.length));
    expect(back.stdoutBytes.length).toBe(write.length);
    expect(back.stdoutBytes.equals(write)).toBe(true);
  });

  it('a broken backend file is a typed error (BackendConfigInvalid, exit 1); account update --backend repairs it', async () => {
    const path = join(home, 'backends', `${ACCOUNT}.json`);
    const good = await readFile(path, 'utf8');
    await writeFile(path, good.slice(0, 40), { mode: 0o600 });
    const broken = await v('status', DISK, '--json');
    expect(broken.code, broken.stderr).toBe(1);
    expect((JSON.parse(broken.stderr) as { error: { code: string } }).error.code).toBe('BackendConfigInvalid');
    await ok('account', 'update', ACCOUNT, '--backend', 'azure');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await ok('status', DISK);
  });

  it('--sas-url: an account reached through an account SAS works too, and its signature is never shown', async () => {
    const sas = generateAccountSASQueryParameters({
      expiresOn: new Date(Date.now() + 3_600_000), permissions: AccountSASPermissions.parse('rwdlac'),
      resourceTypes: AccountSASResourceTypes.parse('sco').toString(), services: AccountSASServices.parse('b').toString(),
    }, new StorageSharedKeyCredential('other', accountKey)).toString();
    const sasUrl = `http://127.0.0.1:${server.port}/other?${sas}`;
    const signature = new URLSearchParams(sas).get('sig') ?? '';
    const created = await vdcrypt(['--home', home, 'account', 'create', 'other', '--backend', 'azure', '--json'],
      { env: { VDCRYPT_AZURE_SAS_URL: sasUrl } });
    expect(created.code, created.stderr).toBe(0);
    outputs.push(created);
    expect(json<{ backend: unknown }>(created).backend).toMatchObject({ backend: 'azure', accountName: 'other', credentialType: 'sasUrl' });
    await ok('container', 'create', 'other/disks');
    await ok('blob', 'create', 'other/disks/d', '--size', '1M');
    await ok('put', 'other/disks/d', '--offset', '4096', join(work, 'write.bin'));
    expect((await ok('get', 'other/disks/d', '--offset', '4096', '--length', String(write.length))).stdoutBytes.equals(write)).toBe(true);
    for (const r of outputs) expect(r.stdout + r.stderr).not.toContain(signature);
  });

  it('the connection string and account key never appeared in any output', () => {
    expect(outputs.length).toBeGreaterThan(20);
    for (const r of outputs) {
      for (const text of [r.stdout, r.stderr]) {
        expect(text).not.toContain(accountKey);
        expect(text).not.toContain('AccountKey=');
      }
    }
  });
});
