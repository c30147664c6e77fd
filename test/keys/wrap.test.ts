/**
 * Key vault data plane: wrap/unwrap round trips for every key type and algorithm (with node:crypto as an
 * independent oracle for RSA), and one distinct typed refusal per failure.
 */
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { KeyVaultError, KeyVaultRegistry, type LocalKeyVault, RSA_KEY_SIZES, type WrapAlgorithm } from '../../lib/keys/index.js';
import { expectCode, passphrase, tempHome, TestClock } from './helpers.js';

const CALLER = 'account:alice';
const ALL = ['get', 'wrapKey', 'unwrapKey'] as const;

let home: string;
let cleanup: () => Promise<void>;
let registry: KeyVaultRegistry;
let vault: LocalKeyVault;
const clock = new TestClock();

beforeAll(async () => {
  ({ home, cleanup } = await tempHome());
  registry = await KeyVaultRegistry.open(home, { now: clock.now });
  vault = await registry.createVault('vault1', { region: 'westeurope', credential: passphrase() });
});
afterAll(async () => {
  registry.close();
  await cleanup();
});

describe('round trips', () => {
  const cases: { kty: 'RSA' | 'oct'; size?: (typeof RSA_KEY_SIZES)[number]; algs: WrapAlgorithm[] }[] = [
    ...RSA_KEY_SIZES.map((size) => ({ kty: 'RSA' as const, size, algs: ['RSA-OAEP-256', 'RSA-OAEP'] as WrapAlgorithm[] })),
    { kty: 'oct', algs: ['A256KW'] },
  ];
  for (const c of cases) {
    for (const alg of c.algs) {
      it(`${c.kty}${c.size ?? ''} with ${alg}`, async () => {
        const name = `rt-${c.kty}-${c.size ?? 256}-${alg}`.toLowerCase();
        const props = await vault.createKey(name, { kty: c.kty, ...(c.size ? { size: c.size } : {}) });
        expect(props.keySize).toBe(c.size ?? 256);
        await vault.grantAccess(name, CALLER, ALL);
        const secret = randomBytes(64);
        const wrapped = await vault.wrapKey(name, undefined, alg, secret, CALLER);
        expect(wrapped.kid).toBe(`https://vault1.vault.local/keys/${name}/${props.version}`);
        expect(wrapped.value.equals(secret)).toBe(false);
        const back = await vault.unwrapKey(name, props.version, alg, wrapped.value, CALLER);
        expect(Buffer.compare(back.bytes, secret)).toBe(0);
        back.dispose();
        if (c.kty === 'RSA') {
          // Oracle: encrypt with node:crypto under the published public key (JWK n, e); the vault must unwrap it.
          const pub = createPublicKey({ key: { kty: 'RSA', n: props.n ?? '', e: props.e ?? '' }, format: 'jwk' });
          expect(pub.asymmetricKeyDetails?.modulusLength).toBe(c.size);
          const external = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg === 'RSA-OAEP' ? 'sha1' : 'sha256' }, secret);
          const fromOracle = await vault.unwrapKey(name, props.version, alg, external, CALLER);
          expect(Buffer.compare(fromOracle.bytes, secret)).toBe(0);
        } else {
          expect(wrapped.value.length).toBe(secret.length + 8); // RFC 3394 adds one 64-bit block
        }
      }, 30_000);
    }
  }

  it('refuses an algorithm that does not fit the key type', async () => {
    await vault.createKey('alg-oct', { kty: 'oct' });
    await vault.grantAccess('alg-oct', CALLER, ALL);
    await expectCode(vault.wrapKey('alg-oct', undefined, 'RSA-OAEP-256', randomBytes(64), CALLER), 'KeyVaultUnsupportedAlgorithm', 400);
  });
});

describe('refusals, each with its own code', () => {
  let version1: string;
  let wrapped: Buffer;
  const secret = randomBytes(64);

  beforeAll(async () => {
    const props = await vault.createKey('ref', { kty: 'oct' });
    version1 = props.version;
    await vault.grantAccess('ref', CALLER, ALL);
    wrapped = (await vault.wrapKey('ref', undefined, 'A256KW', secret, CALLER)).value;
  });

  const unwrap = (version = version1, caller = CALLER, data: Buffer = wrapped) => vault.unwrapKey('ref', version, 'A256KW', data, caller);

  it('works before anything is changed', async () => {
    expect(Buffer.compare((await unwrap()).bytes, secret)).toBe(0);
  });

  it('unknown key: KeyVaultEncryptionKeyNotFound', async () => {
    await expectCode(vault.unwrapKey('nosuch', version1, 'A256KW', wrapped, CALLER), 'KeyVaultEncryptionKeyNotFound', 403);
  });

  it('wrong key: KeyVaultUnwrapFailed', async () => {
    await vault.createKey('other', { kty: 'oct' });
    await vault.grantAccess('other', CALLER, ALL);
    const other = await vault.describeKey('other');
    await expectCode(vault.unwrapKey('other', other.version, 'A256KW', wrapped, CALLER), 'KeyVaultUnwrapFailed', 403);
    const tampered = Buffer.from(wrapped);
    tampered[3] = (tampered[3] ?? 0) ^ 1;
    await expectCode(unwrap(version1, CALLER, tampered), 'KeyVaultUnwrapFailed', 403);
  });

  it('wrong version: KeyVaultEncryptionKeyVersionNotFound', async () => {
    await expectCode(unwrap('0'.repeat(32)), 'KeyVaultEncryptionKeyVersionNotFound', 403);
  });

  it('access revoked: KeyVaultAccessDenied, restored by a new grant', async () => {
    await vault.revokeAccess('ref', CALLER, ['unwrapKey']);
    await expectCode(unwrap(), 'KeyVaultAccessDenied', 403);
    await expectCode(unwrap(version1, 'account:mallory'), 'KeyVaultAccessDenied', 403);
    await vault.grantAccess('ref', CALLER, ['unwrapKey']);
    expect(Buffer.compare((await unwrap()).bytes, secret)).toBe(0);
  });

  it('disabled: KeyVaultEncryptionKeyDisabled, restored by enabling', async () => {
    await vault.setKeyEnabled('ref', false);
    await expectCode(unwrap(), 'KeyVaultEncryptionKeyDisabled', 403);
    await expectCode(vault.wrapKey('ref', undefined, 'A256KW', secret, CALLER), 'KeyVaultEncryptionKeyDisabled', 403);
    await vault.setKeyEnabled('ref', true);
    expect(Buffer.compare((await unwrap()).bytes, secret)).toBe(0);
  });

  it('expired: KeyVaultEncryptionKeyExpired (by the injected clock)', async () => {
    await vault.setKeyExpiry('ref', new Date(clock.now().getTime() + 1000));
    expect(Buffer.compare((await unwrap()).bytes, secret)).toBe(0);
    clock.advance(1000);
    await expectCode(unwrap(), 'KeyVaultEncryptionKeyExpired', 403);
    await vault.setKeyExpiry('ref', null);
    expect(Buffer.compare((await unwrap()).bytes, secret)).toBe(0);
  });

  it('deleted: KeyVaultEncryptionKeyNotFound; recover restores; purge is final', async () => {
    await vault.deleteKey('ref');
    await expectCode(unwrap(), 'KeyVaultEncryptionKeyNotFound', 403);
    await expectCode(vault.createKey('ref', { kty: 'oct' }), 'KeyVaultKeyAlreadyExists', 409);
    await vault.recoverKey('ref');
    expect(Buffer.compare((await unwrap()).bytes, secret)).toBe(0);
    await expectCode(vault.recoverKey('ref'), 'KeyVaultKeyNotDeleted', 409);
    await vault.createKey('gone', { kty: 'oct' });
    await vault.deleteKey('gone');
    await vault.purgeKey('gone');
    await expectCode(vault.describeKey('gone'), 'KeyVaultEncryptionKeyNotFound');
  });

  it('vault locked: KeyVaultAccessTokenCannotBeAcquired; vault missing: KeyVaultVaultNotFound', async () => {
    registry.lock('vault1');
    await expectCode(unwrap(), 'KeyVaultAccessTokenCannotBeAcquired', 403);
    await expectCode(registry.get('vault1'), 'KeyVaultAccessTokenCannotBeAcquired', 403);
    vault = await registry.unlock('vault1', passphrase());
    expect(Buffer.compare((await unwrap()).bytes, secret)).toBe(0);
    await expectCode(registry.get('nosuchvault'), 'KeyVaultVaultNotFound', 403);
    const other = await registry.createVault('vault2', { region: 'westeurope', credential: passphrase() });
    await rm(other.directory, { recursive: true });
    await expectCode(registry.get('vault2'), 'KeyVaultVaultNotFound', 403);
  });

  it('rotation keeps old versions unwrapping and wraps with the newest', async () => {
    const rotated = await vault.rotateKey('ref');
    expect(rotated.version).not.toBe(version1);
    expect(rotated.versions.map((v) => v.version)).toEqual([version1, rotated.version]);
    expect(Buffer.compare((await unwrap()).bytes, secret)).toBe(0);
    const again = await vault.wrapKey('ref', undefined, 'A256KW', secret, CALLER);
    expect(again.kid.endsWith(rotated.version)).toBe(true);
    expect(again.value.equals(wrapped)).toBe(false);
    await expectCode(unwrap(version1, CALLER, again.value), 'KeyVaultUnwrapFailed');
  });

  it('every refusal is a KeyVaultError 403 whose code is distinct', () => {
    const codes = ['KeyVaultEncryptionKeyNotFound', 'KeyVaultUnwrapFailed', 'KeyVaultEncryptionKeyVersionNotFound', 'KeyVaultAccessDenied',
      'KeyVaultEncryptionKeyDisabled', 'KeyVaultEncryptionKeyExpired', 'KeyVaultVaultNotFound', 'KeyVaultAccessTokenCannotBeAcquired'] as const;
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(new KeyVaultError(code, 'x').status).toBe(403);
  });
});
