/**
 * Key hygiene: secrets live in their own `Buffer.alloc` memory (not Node's shared pool) and are zeroized on
 * dispose; no key bytes reach error messages, the audit log, JSON output, account or vault files, or
 * `util.inspect` of key-holding objects.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AccountService, accountIdentity } from '../../lib/account/index.js';
import { VdcryptError } from '../../lib/errors.js';
import { generateAccountKey, type LocalKeyVault, SecretBytes, SERVICE_MASTER_KEY_FILE } from '../../lib/keys/index.js';
import { passphrase, tempHome } from './helpers.js';

/** Every way a secret could be spelled in text. */
function spellings(secret: Uint8Array): string[] {
  const b = Buffer.from(secret);
  const halves = [b.subarray(0, b.length / 2), b.subarray(b.length / 2)];
  return [b, ...halves].flatMap((part) => [part.toString('hex'), part.toString('base64'), part.toString('base64url')]);
}

function expectFree(text: string, secrets: Uint8Array[], where: string): void {
  for (const secret of secrets) for (const s of spellings(secret)) expect(text.includes(s), `${where} leaks a key`).toBe(false);
}

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await allFiles(path)));
    else out.push(path);
  }
  return out;
}

describe('SecretBytes', () => {
  it('uses unpooled Buffer.alloc memory and zeroizes on dispose', () => {
    for (const secret of [SecretBytes.alloc(32), SecretBytes.random(64), generateAccountKey()]) {
      const bytes = secret.bytes;
      expect(bytes.byteOffset).toBe(0);
      expect(bytes.buffer.byteLength).toBe(secret.length); // a pool slice would sit in a larger ArrayBuffer
      bytes.fill(0xab);
      secret.dispose();
      expect(bytes.every((b) => b === 0)).toBe(true);
      expect(secret.disposed).toBe(true);
      expect(() => secret.bytes).toThrow(VdcryptError);
    }
  });

  it('adopt() wipes the source it copied', () => {
    const source = Buffer.alloc(32, 7);
    const secret = SecretBytes.adopt(source);
    expect(source.every((b) => b === 0)).toBe(true);
    expect(secret.bytes.every((b) => b === 7)).toBe(true);
  });

  it('shows no bytes through inspect, JSON or String', () => {
    const secret = SecretBytes.random(64);
    const texts = [inspect(secret), JSON.stringify(secret), String(secret), `${secret}`, inspect({ nested: secret }, { depth: 5 })];
    for (const text of texts) expectFree(text, [secret.bytes], 'SecretBytes rendering');
    expect(inspect(secret)).toContain('length: 64');
  });

  it('generateAccountKey gives 64 bytes with distinct halves', () => {
    const aek = generateAccountKey();
    expect(aek.length).toBe(64);
    expect(aek.bytes.subarray(0, 32).equals(aek.bytes.subarray(32))).toBe(false);
  });
});

describe('no key bytes in output', () => {
  let home: string;
  let cleanup: () => Promise<void>;
  let svc: AccountService;
  let vault: LocalKeyVault;
  let aek: Buffer;
  let serviceKey: Buffer;
  const errors: unknown[] = [];

  beforeAll(async () => {
    ({ home, cleanup } = await tempHome());
    svc = await AccountService.open(home, { env: {} });
    vault = await svc.vaults.createVault('hygiene', { region: 'local', credential: passphrase() });
    await vault.createKey('k', { kty: 'oct' });
    await vault.grantAccess('k', accountIdentity('acct'), ['get', 'wrapKey', 'unwrapKey']);
    await svc.createAccount('acct');
    await svc.updateAccount('acct', { keyUri: 'https://hygiene.vault.local/keys/k' });
    // Oracle: unwrap the AEK through the vault, as the account layer does.
    const record = JSON.parse(await readFile(join(home, 'accounts', 'acct.json'), 'utf8')) as { generations: { wrapped: { kid: string; value: string } }[] };
    const wrapped = record.generations[0]?.wrapped;
    const unwrapped = await vault.unwrapKey('k', wrapped?.kid.split('/').at(-1) ?? '', 'A256KW', Buffer.from(wrapped?.value ?? '', 'base64'), accountIdentity('acct'));
    aek = Buffer.from(unwrapped.bytes);
    unwrapped.dispose();
    serviceKey = await readFile(join(home, SERVICE_MASTER_KEY_FILE));
    // Provoke failures that touch key material.
    const tampered = Buffer.from(wrapped?.value ?? '', 'base64');
    tampered[0] = (tampered[0] ?? 0) ^ 1;
    for (const attempt of [
      () => vault.unwrapKey('k', wrapped?.kid.split('/').at(-1) ?? '', 'A256KW', tampered, accountIdentity('acct')),
      () => vault.unwrapKey('k', wrapped?.kid.split('/').at(-1) ?? '', 'A256KW', Buffer.from(wrapped?.value ?? '', 'base64'), 'account:eve'),
      async () => { await vault.setKeyEnabled('k', false); return svc.getCipher('acct'); },
    ]) {
      try {
        await attempt();
      } catch (error) {
        errors.push(error);
      }
    }
    await vault.setKeyEnabled('k', true);
  });
  afterAll(async () => {
    await svc.close();
    await cleanup();
  });

  it('the AEK is a real key (the oracle works)', async () => {
    const { cipher } = await svc.getCipher('acct');
    const { XtsCipher } = await import('../../lib/xts/index.js');
    const mine = new XtsCipher(aek);
    const page = Buffer.alloc(512, 1);
    expect(Buffer.from(cipher.encrypt(page, 3)).equals(Buffer.from(mine.encrypt(page, 3)))).toBe(true);
    mine.dispose();
  });

  it('errors carry codes and no key bytes in message, JSON or inspect', () => {
    expect(errors.length).toBe(3);
    for (const error of errors) {
      expect(error).toBeInstanceOf(VdcryptError);
      const text = [String((error as Error).message), JSON.stringify(error), inspect(error, { depth: 10 })].join('\n');
      expectFree(text, [aek, serviceKey], 'an error');
    }
  });

  it('files on disk (accounts, vault, audit log) hold no key in the clear', async () => {
    for (const path of await allFiles(home)) {
      if (path.endsWith(SERVICE_MASTER_KEY_FILE)) continue;
      const data = await readFile(path);
      expect(data.includes(aek), path).toBe(false);
      expectFree(data.toString('latin1'), [aek, serviceKey], path);
    }
  });

  it('JSON and inspect of accounts, vaults, the service and ciphers hold no key', async () => {
    const { cipher } = await svc.getCipher('acct');
    const texts = [
      JSON.stringify(await svc.getAccount('acct')), JSON.stringify(await vault.listKeys()), JSON.stringify(svc), JSON.stringify(vault),
      inspect(svc, { depth: 10, showHidden: true }), inspect(vault, { depth: 10, showHidden: true }), inspect(cipher), JSON.stringify(cipher),
      inspect(svc.vaults, { depth: 10, showHidden: true }),
    ];
    for (const text of texts) expectFree(text, [aek, serviceKey], text.slice(0, 40));
  });
});
