/**
 * AccountService: the SSE account rules, re-wrapping without changing the AEK, revocation that blocks and
 * restores, AEK generations, and the key cache (vault-change drop, TTL with an injected clock).
 */
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { AccountService, accountIdentity } from '../../lib/account/index.js';
import type { KeyVault, LocalKeyVault, VaultChange } from '../../lib/keys/index.js';
import { expectCode, passphrase, tempHome, TestClock } from '../keys/helpers.js';

const PAGE = 512;
const ALL = ['get', 'wrapKey', 'unwrapKey'] as const;
let home: string;
let cleanup: () => Promise<void>;
let clock: TestClock;
let svc: AccountService;
let vault: LocalKeyVault;

async function accountFile(name: string): Promise<{ generations: { wrapped: Record<string, unknown> }[] }> {
  return JSON.parse(await readFile(join(home, 'accounts', `${name}.json`), 'utf8')) as { generations: { wrapped: Record<string, unknown> }[] };
}

async function auditOps(v: LocalKeyVault, op: string): Promise<number> {
  return (await readFile(join(v.directory, 'audit.log'), 'utf8')).trim().split('\n').filter((l) => (JSON.parse(l) as { op: string; result: string }).op === op).length;
}

beforeEach(async () => {
  ({ home, cleanup } = await tempHome());
  clock = new TestClock();
  svc = await AccountService.open(home, { keyCacheTtlMs: 10_000, now: clock.now, env: {} });
  vault = await svc.vaults.createVault('cmkvault', { region: 'westus', credential: passphrase() });
  await vault.createKey('rsakey', { kty: 'RSA', size: 2048 });
  await vault.createKey('aeskey', { kty: 'oct' });
  for (const k of ['rsakey', 'aeskey']) await vault.grantAccess(k, accountIdentity('acct1'), ALL);
});
afterEach(async () => {
  await svc.close();
  await cleanup();
});

async function encryptSample(name: string): Promise<{ plain: Buffer; ct: Uint8Array; generation: number }> {
  const plain = randomBytes(4 * PAGE);
  const { cipher, generation } = await svc.getCipher(name);
  return { plain, ct: cipher.encrypt(plain, 7), generation };
}

async function decrypts(name: string, sample: { plain: Buffer; ct: Uint8Array; generation: number }): Promise<boolean> {
  const { cipher } = await svc.getCipher(name, sample.generation);
  return Buffer.from(cipher.decrypt(sample.ct, 7)).equals(sample.plain);
}

describe('account rules', () => {
  it('creates accounts with service-managed keys and encryption on, with Azure property names', async () => {
    const props = await svc.createAccount('acct1', { region: 'westus' });
    expect(props.encryption.keySource).toBe('Microsoft.Storage');
    expect(props.encryption.services.blob).toEqual({ enabled: true, lastEnabledTime: clock.now().toISOString(), keyType: 'Account' });
    expect(props.encryption.keyvaultproperties).toBeUndefined();
    expect(props).toMatchObject({ region: 'westus', currentGeneration: 1 });
    expect(await svc.listAccounts()).toEqual(['acct1']);
    expect(await svc.isEncryptionEnabled('acct1')).toBe(true);
    await expectCode(svc.createAccount('acct1'), 'StorageAccountAlreadyExists', 409);
    await expectCode(svc.getAccount('nobody'), 'StorageAccountNotFound', 404);
    await expectCode(async () => svc.createAccount('Bad_Name'), 'AccountNameInvalid', 400);
    await expectCode(async () => svc.createAccount('acct2', { keySource: 'Microsoft.Keyvault' } as object), 'InvalidKeyVaultProperties', 400);
    expect((await stat(join(home, 'accounts', 'acct1.json'))).mode & 0o777).toBe(0o600);
  });

  it('toggles encryption under service-managed keys and records lastEnabledTime', async () => {
    await svc.createAccount('acct1', { region: 'westus' });
    expect((await svc.updateAccount('acct1', { encryption: false })).encryption.services.blob.enabled).toBe(false);
    expect(await svc.isEncryptionEnabled('acct1')).toBe(false);
    clock.advance(5000);
    const on = await svc.updateAccount('acct1', { encryption: true });
    expect(on.encryption.services.blob.lastEnabledTime).toBe(clock.now().toISOString());
  });

  it('a toggle made by another process is seen at the next write decision, however fast they follow', async () => {
    await svc.createAccount('acct1', { region: 'westus' });
    const other = await AccountService.open(home, { env: {} }); // a second process on the same home
    try {
      for (let i = 0; i < 20; i++) {
        const on = i % 2 === 1;
        await other.updateAccount('acct1', { encryption: on });
        expect(await svc.isEncryptionEnabled('acct1')).toBe(on);
      }
      // Even an edit in place (same inode, same size) is seen: its change time moves.
      const path = join(home, 'accounts', 'acct1.json');
      const text = await readFile(path, 'utf8');
      expect(await svc.isEncryptionEnabled('acct1')).toBe(true);
      expect(text.match(/"enabled": true/g)?.length).toBe(1);
      await writeFile(path, text.replace('"enabled": true', '"enabled":false')); // the same length
      expect((await stat(path)).size).toBe(Buffer.byteLength(text));
      expect(await svc.isEncryptionEnabled('acct1')).toBe(false);
    } finally {
      await other.close();
    }
  });

  it('refuses to disable encryption while customer-managed keys are in use', async () => {
    await svc.createAccount('acct1', { region: 'westus' });
    await svc.updateAccount('acct1', { keySource: 'Microsoft.Keyvault', keyUri: 'https://cmkvault.vault.local/keys/rsakey' });
    await expectCode(svc.updateAccount('acct1', { encryption: false }), 'EncryptionCannotBeDisabledWithCustomerManagedKeys', 409);
    expect(await svc.isEncryptionEnabled('acct1')).toBe(true);
    await svc.updateAccount('acct1', { keySource: 'Microsoft.Storage' });
    expect((await svc.updateAccount('acct1', { encryption: false })).encryption.services.blob.enabled).toBe(false);
  });

  it('refuses a vault in another region', async () => {
    await svc.createAccount('acct1', { region: 'eastus' });
    await expectCode(svc.updateAccount('acct1', { keyUri: 'https://cmkvault.vault.local/keys/rsakey' }), 'KeyVaultRegionMismatch', 409);
    expect((await svc.getAccount('acct1')).encryption.keySource).toBe('Microsoft.Storage');
  });

  it('refuses Microsoft.Keyvault without a key and malformed key URIs', async () => {
    await svc.createAccount('acct1', { region: 'westus' });
    await expectCode(svc.updateAccount('acct1', { keySource: 'Microsoft.Keyvault' }), 'InvalidKeyVaultProperties', 400);
    await expectCode(svc.updateAccount('acct1', { keyUri: 'https://cmkvault.vault.azure.net/keys/rsakey' }), 'KeyVaultInvalidKeyUri', 400);
    await expectCode(svc.updateAccount('acct1', { keyUri: 'https://nosuch.vault.local/keys/rsakey' }), 'KeyVaultVaultNotFound', 403);
  });
});

describe('re-wrapping keeps the AEK', () => {
  for (const keyName of ['rsakey', 'aeskey']) {
    it(`switching Microsoft.Storage -> ${keyName} -> pinned version -> Microsoft.Storage re-wraps only`, async () => {
      await svc.createAccount('acct1', { region: 'westus' });
      const sample = await encryptSample('acct1');
      const wrapped0 = JSON.stringify((await accountFile('acct1')).generations[0]?.wrapped);

      const cmk = await svc.updateAccount('acct1', { keyUri: `https://cmkvault.vault.local/keys/${keyName}` });
      const key = await vault.describeKey(keyName);
      expect(cmk.encryption.keySource).toBe('Microsoft.Keyvault');
      expect(cmk.encryption.keyvaultproperties).toMatchObject({
        keyname: keyName, keyversion: '', keyvaulturi: 'https://cmkvault.vault.local',
        currentVersionedKeyIdentifier: key.kid, lastKeyRotationTimestamp: clock.now().toISOString(),
      });
      const wrapped1 = JSON.stringify((await accountFile('acct1')).generations[0]?.wrapped);
      expect(wrapped1).not.toBe(wrapped0);
      expect(wrapped1).toContain(keyName === 'rsakey' ? 'RSA-OAEP-256' : 'A256KW');
      expect(await decrypts('acct1', sample)).toBe(true);

      const pinned = await svc.updateAccount('acct1', { keyUri: key.kid });
      expect(pinned.encryption.keyvaultproperties?.keyversion).toBe(key.version);
      expect(await decrypts('acct1', sample)).toBe(true);

      const back = await svc.updateAccount('acct1', { keySource: 'Microsoft.Storage' });
      expect(back.encryption.keyvaultproperties).toBeUndefined();
      expect(JSON.stringify((await accountFile('acct1')).generations[0]?.wrapped)).not.toBe(wrapped1);
      expect(await decrypts('acct1', sample)).toBe(true);
    });
  }

  it('follows the newest key version when keyversion is empty: rotation re-wraps on next use', async () => {
    await svc.createAccount('acct1', { region: 'westus' });
    await svc.updateAccount('acct1', { keyUri: 'https://cmkvault.vault.local/keys/rsakey' });
    const sample = await encryptSample('acct1');
    const before = (await svc.getAccount('acct1')).encryption.keyvaultproperties;
    const wrappedBefore = JSON.stringify((await accountFile('acct1')).generations[0]?.wrapped);
    clock.advance(1000);
    const rotated = await vault.rotateKey('rsakey');
    expect(await decrypts('acct1', sample)).toBe(true);
    const after = (await svc.getAccount('acct1')).encryption.keyvaultproperties;
    expect(after?.currentVersionedKeyIdentifier).toBe(rotated.kid);
    expect(after?.currentVersionedKeyIdentifier).not.toBe(before?.currentVersionedKeyIdentifier);
    expect(after?.lastKeyRotationTimestamp).toBe(clock.now().toISOString());
    expect(JSON.stringify((await accountFile('acct1')).generations[0]?.wrapped)).not.toBe(wrappedBefore);
  });

  it('a pinned version is not followed after a rotation', async () => {
    await svc.createAccount('acct1', { region: 'westus' });
    const kid = (await vault.describeKey('aeskey')).kid;
    await svc.updateAccount('acct1', { keyUri: kid });
    await vault.rotateKey('aeskey');
    await svc.getCipher('acct1');
    expect((await svc.getAccount('acct1')).encryption.keyvaultproperties?.currentVersionedKeyIdentifier).toBe(kid);
  });
});

describe('revocation blocks and restoring restores', () => {
  const cases: [string, (v: LocalKeyVault) => Promise<unknown>, (v: LocalKeyVault) => Promise<unknown>, string][] = [
    ['disable', (v) => v.setKeyEnabled('rsakey', false), (v) => v.setKeyEnabled('rsakey', true), 'KeyVaultEncryptionKeyDisabled'],
    ['delete', (v) => v.deleteKey('rsakey'), (v) => v.recoverKey('rsakey'), 'KeyVaultEncryptionKeyNotFound'],
    ['revoke access', (v) => v.revokeAccess('rsakey', accountIdentity('acct1')), (v) => v.grantAccess('rsakey', accountIdentity('acct1'), ALL), 'KeyVaultAccessDenied'],
    ['expire', (v) => v.setKeyExpiry('rsakey', new Date(clock.now().getTime() - 1)), (v) => v.setKeyExpiry('rsakey', null), 'KeyVaultEncryptionKeyExpired'],
  ];
  for (const [what, revoke, restore, code] of cases) {
    it(`${what}: the cached cipher is wiped, getCipher answers ${code} 403, then works again`, async () => {
      await svc.createAccount('acct1', { region: 'westus' });
      await svc.updateAccount('acct1', { keyUri: 'https://cmkvault.vault.local/keys/rsakey' });
      const sample = await encryptSample('acct1');
      const { cipher } = await svc.getCipher('acct1');
      await revoke(vault);
      expect(cipher.disposed).toBe(true);
      expect(svc.cachedCiphers).toBe(0);
      await expectCode(svc.getCipher('acct1'), code, 403);
      await expectCode(svc.getCipher('acct1', 1), code, 403);
      await restore(vault);
      expect(await decrypts('acct1', sample)).toBe(true);
    });
  }

  it('a forgotten vault: KeyVaultVaultNotFound; a locked vault: KeyVaultAccessTokenCannotBeAcquired', async () => {
    await svc.createAccount('acct1', { region: 'westus' });
    await svc.updateAccount('acct1', { keyUri: 'https://cmkvault.vault.local/keys/aeskey' });
    await svc.getCipher('acct1');
    svc.vaults.lock('cmkvault');
    await expectCode(svc.getCipher('acct1'), 'KeyVaultAccessTokenCannotBeAcquired', 403);
    vault = await svc.vaults.unlock('cmkvault', passphrase());
    await svc.getCipher('acct1');
    await svc.vaults.forget('cmkvault');
    await expectCode(svc.getCipher('acct1'), 'KeyVaultVaultNotFound', 403);
  });

  it('service-managed accounts are unaffected by vault changes', async () => {
    await svc.createAccount('acct2', { region: 'westus' });
    const { cipher } = await svc.getCipher('acct2');
    await vault.setKeyEnabled('rsakey', false);
    expect(cipher.disposed).toBe(false);
    expect((await svc.getCipher('acct2')).cipher).toBe(cipher);
  });
});

describe('key cache', () => {
  it('logs the unwrap that fills the cache, not the hits', async () => {
    await svc.createAccount('acct1', { region: 'westus' });
    await svc.updateAccount('acct1', { keyUri: (await vault.describeKey('aeskey')).kid });
    const before = await auditOps(vault, 'unwrapKey');
    const first = await svc.getCipher('acct1');
    const [a, b] = await Promise.all([svc.getCipher('acct1'), svc.getCipher('acct1', 1)]);
    expect(a.cipher).toBe(first.cipher);
    expect(b.cipher).toBe(first.cipher);
    expect(await auditOps(vault, 'unwrapKey')).toBe(before + 1);
  });

  it('a remote vault (no change events) keeps a revoked key working only until the TTL passes', async () => {
    // A remote vault: the local vault's data plane behind the KeyVault interface, with no change notifications.
    await vault.createKey('remotekey', { kty: 'oct' });
    await vault.grantAccess('remotekey', accountIdentity('acct1'), ALL);
    const remote: KeyVault = {
      name: 'remotevault', region: 'westus', uri: 'https://remotevault.vault.local', local: false,
      getKey: (n, v, c) => vault.getKey(n, v, c),
      wrapKey: async (n, v, a, k, c) => {
        const r = await vault.wrapKey(n, v, a, k, c);
        return { ...r, kid: r.kid.replace('cmkvault', 'remotevault') };
      },
      unwrapKey: (n, v, a, w, c) => vault.unwrapKey(n, v, a, w, c),
      onChange: (_listener: (c: VaultChange) => void) => () => undefined,
    };
    svc.vaults.attach(remote);
    await svc.createAccount('acct1', { region: 'westus' });
    await svc.updateAccount('acct1', { keyUri: 'https://remotevault.vault.local/keys/remotekey' });
    const { cipher } = await svc.getCipher('acct1');
    // Revoke behind the account's back: the local vault's event names 'cmkvault', not 'remotevault'.
    await vault.revokeAccess('remotekey', accountIdentity('acct1'));
    clock.advance(svc.keyCacheTtlMs - 1);
    expect((await svc.getCipher('acct1')).cipher).toBe(cipher);
    clock.advance(1);
    await expectCode(svc.getCipher('acct1'), 'KeyVaultAccessDenied', 403);
    expect(cipher.disposed).toBe(true);
  });

  it('close() disposes every cached cipher', async () => {
    await svc.createAccount('acct1', { region: 'westus' });
    const { cipher } = await svc.getCipher('acct1');
    await svc.close();
    expect(cipher.disposed).toBe(true);
  });
});

describe('AEK generations', () => {
  it('rolls a new data key for future writes and keeps older generations readable, across key-source changes', async () => {
    await svc.createAccount('acct1', { region: 'westus' });
    const s1 = await encryptSample('acct1');
    const rolled = await svc.rollDataKey('acct1');
    expect(rolled.currentGeneration).toBe(2);
    expect(rolled.dataKeyGenerations.map((g) => g.generation)).toEqual([1, 2]);
    const s2 = await encryptSample('acct1');
    expect(s2.generation).toBe(2);
    expect(Buffer.from(s2.ct).equals(Buffer.from((await svc.getCipher('acct1', 1)).cipher.encrypt(s2.plain, 7)))).toBe(false);
    await svc.updateAccount('acct1', { keyUri: 'https://cmkvault.vault.local/keys/rsakey' });
    const s3 = await svc.rollDataKey('acct1');
    expect(s3.dataKeyGenerations.every((g) => g.keySource === 'Microsoft.Keyvault')).toBe(true);
    expect(await decrypts('acct1', s1)).toBe(true);
    expect(await decrypts('acct1', s2)).toBe(true);
    await expectCode(svc.getCipher('acct1', 9), 'DataKeyGenerationNotFound', 404);
  });

  it('persists across a reopen of the home (same service master key)', async () => {
    await svc.createAccount('acct1', { region: 'westus' });
    const sample = await encryptSample('acct1');
    await svc.close();
    svc = await AccountService.open(home, { now: clock.now, env: {} });
    expect(await decrypts('acct1', sample)).toBe(true);
  });
});
