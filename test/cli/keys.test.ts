/**
 * End to end: vaults, keys, customer-managed keys on an account, revocation (exit 3 with the 403 family),
 * audit, passphrase handling, and that no secret is ever printed.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { ensureBuilt, json, tempDir, vdcrypt, type RunResult } from './helpers.js';

const PASSPHRASE = 'correct horse battery staple 7f3a';
let home = '';
const outputs: RunResult[] = [];
async function v(...args: string[]): Promise<RunResult> {
  const r = await vdcrypt(['--home', home, ...args], { env: { VDCRYPT_VAULT_PASSPHRASE: PASSPHRASE } });
  outputs.push(r);
  return r;
}

beforeAll(async () => {
  await ensureBuilt();
  home = await tempDir();
  for (const args of [['account', 'create', 'cmk1'], ['container', 'create', 'cmk1/disks'], ['blob', 'create', 'cmk1/disks/d', '--size', '1M']]) {
    expect((await v(...args)).code).toBe(0);
  }
  const work = await tempDir();
  await writeFile(join(work, 'p.bin'), Buffer.alloc(4096, 0x5a));
  expect((await v('put', 'cmk1/disks/d', '--offset', '0', join(work, 'p.bin'))).code).toBe(0);
  expect((await v('vault', 'create', 'vault1', '--scrypt-n', '1024')).code).toBe(0);
});

describe('customer-managed keys', () => {
  it('key create/grant and account update --key-uri switch the account to Microsoft.Keyvault', async () => {
    const key = json<{ kty: string; keySize: number; kid: string; d?: unknown }>(await v('key', 'create', 'vault1/k1', '--kty', 'RSA', '--size', '2048', '--json'));
    expect(key).toMatchObject({ kty: 'RSA', keySize: 2048 });
    expect((await v('key', 'grant', 'vault1/k1', '--account', 'cmk1')).code).toBe(0);
    const props = json<{ encryption: { keySource: string; keyvaultproperties: Record<string, string> } }>(
      await v('account', 'update', 'cmk1', '--key-source', 'keyvault', '--key-uri', 'https://vault1.vault.local/keys/k1', '--json'));
    expect(props.encryption.keySource).toBe('Microsoft.Keyvault');
    expect(props.encryption.keyvaultproperties).toMatchObject({ keyname: 'k1', keyversion: '', keyvaulturi: 'https://vault1.vault.local' });
    expect(props.encryption.keyvaultproperties['currentVersionedKeyIdentifier']).toBe(key.kid);
    const data = await v('get', 'cmk1/disks/d', '--length', '4096');
    expect(data.code).toBe(0);
    expect(data.stdoutBytes.every((b) => b === 0x5a)).toBe(true);
  });

  it('disable, delete or revoke access → every read refused, exit 3 with the 403 code; restore → readable', async () => {
    for (const [block, restore] of [
      [['key', 'disable', 'vault1/k1'], ['key', 'enable', 'vault1/k1']],
      [['key', 'revoke', 'vault1/k1', '--account', 'cmk1'], ['key', 'grant', 'vault1/k1', '--account', 'cmk1']],
    ] as const) {
      expect((await v(...block)).code).toBe(0);
      for (const args of [['get', 'cmk1/disks/d', '--length', '512'], ['status', 'cmk1/disks/d'], ['ranges', 'cmk1/disks/d']]) {
        const r = await v(...args, '--json');
        expect(r.code, args.join(' ')).toBe(3);
        const error = (JSON.parse(r.stderr) as { error: { code: string; status: number } }).error;
        expect(error.status).toBe(403);
        expect(error.code).toMatch(/^KeyVault/);
      }
      expect((await v(...restore)).code).toBe(0);
      expect((await v('get', 'cmk1/disks/d', '--length', '512')).code).toBe(0);
    }
  });

  it('key rotate is followed without rewriting data; key list and audit show it', async () => {
    const before = json(await v('status', 'cmk1/disks/d', '--json'));
    const rotated = json<{ kid: string; versions: unknown[] }>(await v('key', 'rotate', 'vault1/k1', '--json'));
    expect(rotated.versions).toHaveLength(2);
    expect((await v('get', 'cmk1/disks/d', '--length', '512')).code).toBe(0);
    const props = json<{ encryption: { keyvaultproperties: { currentVersionedKeyIdentifier: string } } }>(await v('account', 'show', 'cmk1', '--json'));
    expect(props.encryption.keyvaultproperties.currentVersionedKeyIdentifier).toBe(rotated.kid);
    expect(json(await v('status', 'cmk1/disks/d', '--json'))).toEqual(before);
    const list = json<{ keys: Array<{ name: string; n?: string }> }>(await v('key', 'list', 'vault1', '--json'));
    expect(list.keys.map((k) => k.name)).toEqual(['k1']);
    const audit = json<{ records: Array<{ op: string; result: string }> }>(await v('audit', 'vault1', '--json'));
    expect(audit.records.some((r) => r.result === 'refused')).toBe(true);
    expect(audit.records.some((r) => r.op === 'rotateKey')).toBe(true);
    expect(json(await v('audit', 'vault1', '--verify', '--json'))).toMatchObject({ ok: true });
  });

  it('key delete refuses the account (exit 3); unknown vaults and keys are refusals too', async () => {
    expect((await v('key', 'create', 'vault1/k2', '--kty', 'oct')).code).toBe(0);
    expect((await v('key', 'delete', 'vault1/k2')).code).toBe(0);
    expect((await v('key', 'rotate', 'vault1/k2')).code).toBe(3);
    expect((await v('key', 'list', 'novault')).code).toBe(3);
    expect((await v('key', 'create', 'vault1/k3', '--size', '1000')).code).toBe(2);
    expect((await v('key', 'grant', 'vault1/k1')).code).toBe(2); // --account missing
  });

  it('a missing passphrase is a usage error (no terminal); a wrong one is exit 3', async () => {
    const none = await vdcrypt(['--home', home, 'key', 'list', 'vault1']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('VDCRYPT_VAULT_PASSPHRASE');
    const noneData = await vdcrypt(['--home', home, 'get', 'cmk1/disks/d', '--length', '512']);
    expect(noneData.code).toBe(2);
    const wrong = await vdcrypt(['--home', home, 'key', 'list', 'vault1', '--json'], { env: { VDCRYPT_VAULT_PASSPHRASE: 'not it' } });
    expect(wrong.code).toBe(3);
    expect(JSON.parse(wrong.stderr)).toMatchObject({ error: { code: 'KeyVaultAuthenticationFailed', status: 401 } });
    expect(wrong.stderr).not.toContain('not it');
  });

  it('the passphrase never appears in any output', () => {
    expect(outputs.length).toBeGreaterThan(20);
    for (const r of outputs) {
      expect(r.stdout).not.toContain(PASSPHRASE);
      expect(r.stderr).not.toContain(PASSPHRASE);
    }
  });
});
