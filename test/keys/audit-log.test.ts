/**
 * The audit log: one record per key operation and refusal, hash-chained; verification reports the first
 * altered, missing, reordered or cut-off record, and truncation behind the head.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { AUDIT_LOG_FILE, type AuditRecord, KeyVaultRegistry, type LocalKeyVault, verifyAuditLog } from '../../lib/keys/index.js';
import { expectCode, passphrase, tempHome } from './helpers.js';

const CALLER = 'account:carol';
let home: string;
let cleanup: () => Promise<void>;
let registry: KeyVaultRegistry;
let vault: LocalKeyVault;
let logPath: string;

async function records(): Promise<AuditRecord[]> {
  return (await readFile(logPath, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as AuditRecord);
}

async function lines(): Promise<string[]> {
  return (await readFile(logPath, 'utf8')).split('\n').slice(0, -1);
}

/** A vault with a dozen audited operations, successes and refusals. */
beforeEach(async () => {
  ({ home, cleanup } = await tempHome());
  registry = await KeyVaultRegistry.open(home);
  vault = await registry.createVault('audited', { region: 'r', credential: passphrase() });
  logPath = join(vault.directory, AUDIT_LOG_FILE);
  await vault.createKey('k', { kty: 'oct' });
  await vault.grantAccess('k', CALLER, ['get', 'wrapKey', 'unwrapKey']);
  const { value, kid } = await vault.wrapKey('k', undefined, 'A256KW', randomBytes(64), CALLER);
  const version = kid.split('/').at(-1) ?? '';
  (await vault.unwrapKey('k', version, 'A256KW', value, CALLER)).dispose();
  await vault.rotateKey('k');
  await vault.setKeyEnabled('k', false);
  await expectCode(vault.unwrapKey('k', version, 'A256KW', value, CALLER), 'KeyVaultEncryptionKeyDisabled');
  await vault.setKeyEnabled('k', true);
  await vault.revokeAccess('k', CALLER);
  await expectCode(vault.unwrapKey('k', version, 'A256KW', value, CALLER), 'KeyVaultAccessDenied');
  await vault.deleteKey('k');
});
afterEach(async () => {
  registry.close();
  await cleanup();
});

describe('records', () => {
  it('logs every operation and refusal with time, op, key, version, caller, result and code', async () => {
    const log = await records();
    expect(log.map((r) => `${r.op}:${r.result}${r.code ? `:${r.code}` : ''}`)).toEqual([
      'createVault:success', 'createKey:success', 'grantAccess:success', 'wrapKey:success', 'unwrapKey:success', 'rotateKey:success',
      'disableKey:success', 'unwrapKey:refused:KeyVaultEncryptionKeyDisabled', 'enableKey:success', 'revokeAccess:success',
      'unwrapKey:refused:KeyVaultAccessDenied', 'deleteKey:success',
    ]);
    for (const [i, r] of log.entries()) {
      expect(r.seq).toBe(i + 1);
      expect(Number.isNaN(Date.parse(r.time))).toBe(false);
      expect(r.vault).toBe('audited');
    }
    const unwrap = log[4];
    expect(unwrap).toMatchObject({ key: 'k', caller: CALLER, result: 'success', code: null });
    expect(unwrap?.version).toMatch(/^[0-9a-f]{32}$/);
    expect(log[7]?.caller).toBe(CALLER);
    expect(log[1]?.caller).toBe('operator');
  });

  it('verifies clean, and the chain links each record to the previous one', async () => {
    expect(await vault.verifyAuditLog()).toEqual({ ok: true, records: 12 });
    expect(await registry.verifyAuditLog('audited')).toEqual({ ok: true, records: 12 });
    const log = await records();
    expect(log[0]?.prev).toBe('0'.repeat(64));
    expect(new Set(log.map((r) => r.prev)).size).toBe(log.length);
  });
});

describe('tamper evidence', () => {
  for (const target of [1, 5, 8, 12]) {
    it(`reports a flipped byte in record ${target}`, async () => {
      const all = await lines();
      const line = all[target - 1] ?? '';
      // Flip a byte inside the caller/op text so the line stays valid JSON (the subtle case).
      const at = line.indexOf('"op":"') + 7;
      all[target - 1] = line.slice(0, at) + String.fromCharCode(line.charCodeAt(at) ^ 1) + line.slice(at + 1);
      await writeFile(logPath, `${all.join('\n')}\n`);
      const result = await verifyAuditLog(vault.directory);
      expect(result.ok).toBe(false);
      expect(result.firstBroken?.seq).toBe(target);
    });
  }

  it('reports a raw byte flip that breaks the JSON', async () => {
    const data = await readFile(logPath);
    const offset = data.indexOf('\n', data.length / 2) + 3;
    data[offset] = 0x00;
    await writeFile(logPath, data);
    const result = await verifyAuditLog(vault.directory);
    expect(result.ok).toBe(false);
    expect(result.firstBroken?.problem).toBe('malformed-record');
  });

  it('reports a record changed in its prev field', async () => {
    const all = await lines();
    const r = JSON.parse(all[6] ?? '') as AuditRecord;
    all[6] = JSON.stringify({ ...r, prev: 'f'.repeat(64) });
    await writeFile(logPath, `${all.join('\n')}\n`);
    expect((await verifyAuditLog(vault.directory)).firstBroken?.seq).toBe(7);
  });

  it('reports truncation of whole records behind the head', async () => {
    const all = await lines();
    await writeFile(logPath, `${all.slice(0, 9).join('\n')}\n`);
    const result = await verifyAuditLog(vault.directory);
    expect(result).toMatchObject({ ok: false, firstBroken: { seq: 10, problem: 'truncated' } });
  });

  it('reports a record cut in the middle', async () => {
    const data = await readFile(logPath);
    await writeFile(logPath, data.subarray(0, data.length - 20));
    const result = await verifyAuditLog(vault.directory);
    expect(result.ok).toBe(false);
    expect(result.firstBroken?.seq).toBe(12);
  });

  it('reports a deleted middle record and reordered records', async () => {
    const all = await lines();
    await writeFile(logPath, `${[...all.slice(0, 3), ...all.slice(4)].join('\n')}\n`);
    expect((await verifyAuditLog(vault.directory)).firstBroken).toMatchObject({ seq: 4, problem: 'sequence-gap' });
    const swapped = [...all];
    [swapped[5], swapped[6]] = [all[6] ?? '', all[5] ?? ''];
    await writeFile(logPath, `${swapped.join('\n')}\n`);
    expect((await verifyAuditLog(vault.directory)).firstBroken).toMatchObject({ seq: 6, problem: 'sequence-gap' });
  });

  it('reports the last record altered (the head no longer matches)', async () => {
    const all = await lines();
    const last = JSON.parse(all[11] ?? '') as AuditRecord;
    all[11] = JSON.stringify({ ...last, caller: 'someone-else' });
    await writeFile(logPath, `${all.join('\n')}\n`);
    expect((await verifyAuditLog(vault.directory)).firstBroken).toMatchObject({ seq: 12, problem: 'head-mismatch' });
  });
});

describe('crash repair on open', () => {
  it('drops a cut-off append beyond the head and keeps chaining', async () => {
    registry.close();
    await appendFile(logPath, '{"seq":13,"time":"20');
    expect((await verifyAuditLog(vault.directory)).firstBroken?.problem).toBe('partial-record');
    const reopened = await registry.unlock('audited', passphrase());
    expect(await reopened.verifyAuditLog()).toEqual({ ok: true, records: 12 });
    await reopened.createKey('after', { kty: 'oct' });
    expect(await reopened.verifyAuditLog()).toEqual({ ok: true, records: 13 });
  });
});
