/**
 * Vault storage: the master key (passphrase via scrypt, or key file), authenticated key files (tamper and
 * corruption detected), 0600 files, the service master key file and its environment override, atomic writes.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  KeyVaultRegistry, LocalKeyVault, loadServiceMasterKey, SERVICE_MASTER_KEY_ENV, SERVICE_MASTER_KEY_FILE, writeFileAtomic,
} from '../../lib/keys/index.js';
import { expectCode, FAST_SCRYPT, passphrase, tempHome } from './helpers.js';

const CALLER = 'account:bob';
let home: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ home, cleanup } = await tempHome());
});
afterEach(async () => cleanup());

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

describe('vault master key', () => {
  it('stores scrypt parameters and refuses a wrong passphrase', async () => {
    const registry = await KeyVaultRegistry.open(home);
    const vault = await registry.createVault('pvault', { region: 'r1', credential: passphrase('right') });
    await vault.createKey('k', { kty: 'oct' });
    registry.close();
    const header = JSON.parse((await readFile(join(vault.directory, 'vault.json'), 'utf8')).split('\n')[0] ?? '') as { kdf: Record<string, unknown> };
    expect(header.kdf).toMatchObject({ type: 'scrypt', ...FAST_SCRYPT });
    expect(typeof header.kdf['salt']).toBe('string');
    await expectCode(LocalKeyVault.open(vault.directory, passphrase('wrong')), 'KeyVaultAuthenticationFailed', 401);
    await expectCode(registry.unlock('pvault', passphrase('wrong')), 'KeyVaultAuthenticationFailed', 401);
    const reopened = await registry.unlock('pvault', passphrase('right'));
    expect((await reopened.describeKey('k')).kty).toBe('oct');
    registry.close();
  });

  it('unlocks from a key file by itself, and refuses another key file', async () => {
    const keyFile = join(home, 'vault.key');
    await writeFile(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
    const registry = await KeyVaultRegistry.open(home);
    await registry.createVault('kvault', { region: 'r1', credential: { keyFile } });
    registry.close();
    const again = await KeyVaultRegistry.open(home);
    const vault = await again.local('kvault'); // auto-unlocked with the registered key file
    expect(vault.region).toBe('r1');
    const wrongFile = join(home, 'wrong.key');
    await writeFile(wrongFile, randomBytes(32));
    await expectCode(LocalKeyVault.open(vault.directory, { keyFile: wrongFile }), 'KeyVaultAuthenticationFailed');
    await expectCode(LocalKeyVault.open(vault.directory, passphrase()), 'KeyVaultAuthenticationFailed');
    again.close();
  });

  it('refuses invalid vault and key names, and an existing vault', async () => {
    const registry = await KeyVaultRegistry.open(home);
    await expectCode(registry.createVault('Bad_Name', { region: 'r', credential: passphrase() }), 'KeyVaultInvalidName', 400);
    const vault = await registry.createVault('okvault', { region: 'r', credential: passphrase() });
    await expectCode(registry.createVault('okvault', { region: 'r', credential: passphrase() }), 'KeyVaultAlreadyExists', 409);
    await expectCode(vault.createKey('bad/name', { kty: 'oct' }), 'KeyVaultInvalidName', 400);
    await expect(vault.createKey('r', { kty: 'RSA', size: 1024 as 2048 })).rejects.toThrow(RangeError);
    registry.close();
  });
});

describe('tamper and corruption of vault files', () => {
  async function setup(): Promise<{ registry: KeyVaultRegistry; vault: LocalKeyVault; keyPath: string }> {
    const registry = await KeyVaultRegistry.open(home);
    const vault = await registry.createVault('tvault', { region: 'r1', credential: passphrase() });
    await vault.createKey('k', { kty: 'oct' });
    await vault.grantAccess('k', CALLER, ['get', 'wrapKey', 'unwrapKey']);
    return { registry, vault, keyPath: join(vault.directory, 'keys', 'k.json') };
  }

  it('detects a flipped byte anywhere in a key file', async () => {
    const { registry, vault, keyPath } = await setup();
    const original = await readFile(keyPath);
    const positions = [0, 10, Math.floor(original.length / 3), Math.floor(original.length / 2), original.length - 40, original.length - 2];
    for (const at of positions) {
      const bad = Buffer.from(original);
      bad[at] = (bad[at] ?? 0) ^ 0x01;
      await writeFile(keyPath, bad);
      await expectCode(vault.wrapKey('k', undefined, 'A256KW', randomBytes(32), CALLER), 'KeyVaultCorrupted', 500);
      await expectCode(vault.describeKey('k'), 'KeyVaultCorrupted');
    }
    await writeFile(keyPath, original.subarray(0, original.length - 10)); // truncation
    await expectCode(vault.describeKey('k'), 'KeyVaultCorrupted');
    await writeFile(keyPath, original);
    expect((await vault.describeKey('k')).name).toBe('k');
    registry.close();
  });

  it('detects key material sealed for another key (file swapped in)', async () => {
    const { registry, vault, keyPath } = await setup();
    await vault.createKey('k2', { kty: 'oct' });
    await writeFile(keyPath, await readFile(join(vault.directory, 'keys', 'k2.json')));
    await expectCode(vault.describeKey('k'), 'KeyVaultCorrupted');
    registry.close();
  });

  it('refuses a vault.json with a flipped byte', async () => {
    const { registry, vault } = await setup();
    registry.close();
    const path = join(vault.directory, 'vault.json');
    const original = await readFile(path);
    for (const at of [5, Math.floor(original.length / 2), original.length - 5]) {
      const bad = Buffer.from(original);
      bad[at] = (bad[at] ?? 0) ^ 0x02;
      await writeFile(path, bad);
      let caught: unknown;
      try {
        await LocalKeyVault.open(vault.directory, passphrase());
      } catch (error) {
        caught = error;
      }
      expect(['KeyVaultCorrupted', 'KeyVaultAuthenticationFailed']).toContain((caught as { code?: string }).code);
    }
  });

  it('writes every vault file 0600 and leaves no temp files', async () => {
    const { registry, vault } = await setup();
    await vault.rotateKey('k');
    for (const file of ['vault.json', 'audit.log', 'audit.head', 'keys/k.json']) expect(await modeOf(join(vault.directory, file))).toBe(0o600);
    expect(await modeOf(join(home, 'vaults.json'))).toBe(0o600);
    expect((await readdir(join(vault.directory, 'keys'))).filter((f) => f.includes('.tmp-'))).toEqual([]);
    registry.close();
  });
});

describe('service master key', () => {
  it('is created once, 0600, 32 bytes, and reused', async () => {
    const first = await loadServiceMasterKey(home, {});
    const second = await loadServiceMasterKey(home, {});
    const path = join(home, SERVICE_MASTER_KEY_FILE);
    expect(await modeOf(path)).toBe(0o600);
    expect((await readFile(path)).length).toBe(32);
    expect(Buffer.compare(first.bytes, second.bytes)).toBe(0);
    expect(first.bytes.some((b) => b !== 0)).toBe(true);
  });

  it('is taken from the environment (hex or base64) when set, and refused when malformed', async () => {
    const raw = randomBytes(32);
    for (const text of [raw.toString('hex'), raw.toString('base64')]) {
      const key = await loadServiceMasterKey(home, { [SERVICE_MASTER_KEY_ENV]: text });
      expect(Buffer.compare(key.bytes, raw)).toBe(0);
    }
    await expect(stat(join(home, SERVICE_MASTER_KEY_FILE))).rejects.toThrow(); // env given: no file made
    await expectCode(loadServiceMasterKey(home, { [SERVICE_MASTER_KEY_ENV]: 'abcd' }), 'ServiceMasterKeyInvalid');
    await expectCode(loadServiceMasterKey(home, { [SERVICE_MASTER_KEY_ENV]: randomBytes(31).toString('base64') }), 'ServiceMasterKeyInvalid');
  });
});

describe('writeFileAtomic', () => {
  it('replaces content, sets the mode, and leaves no temp file', async () => {
    const path = join(home, 'f.json');
    await writeFileAtomic(path, 'one');
    await writeFileAtomic(path, 'two', { mode: 0o640 });
    expect(await readFile(path, 'utf8')).toBe('two');
    expect(await modeOf(path)).toBe(0o640);
    expect((await readdir(home)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
