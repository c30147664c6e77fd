/** `vdcrypt vault create|list` and `vdcrypt audit`: local key vaults and their audit logs. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Command } from 'commander';

import { AUDIT_LOG_FILE, type AuditRecord, MIN_SCRYPT_N, type ScryptParams, DEFAULT_SCRYPT } from '../../keys/index.js';
import { action } from '../action.js';
import type { CliContext } from '../context.js';
import { EXIT_FAILURE, requestExit, UsageError } from '../errors.js';
import { readPassphrase } from '../passphrase.js';

function scryptParams(text: string | undefined): ScryptParams | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < MIN_SCRYPT_N || (n & (n - 1)) !== 0) {
    throw new UsageError(`--scrypt-n must be a power of two of at least ${MIN_SCRYPT_N}, got '${text}'`);
  }
  return { ...DEFAULT_SCRYPT, N: n };
}

async function createVault(ctx: CliContext, name: string, opts: { region: string; scryptN?: string }): Promise<void> {
  const scrypt = scryptParams(opts.scryptN);
  const passphrase = await readPassphrase(name, ctx.env, true);
  const { vaults } = await ctx.accounts();
  const vault = await vaults.createVault(name, { region: opts.region, credential: { passphrase, ...(scrypt === undefined ? {} : { scrypt }) } });
  const value = { name: vault.name, region: vault.region, uri: vault.uri, directory: vault.directory };
  ctx.emit(value, () => [`created vault ${vault.name} (${vault.uri}) in region ${vault.region}`]);
}

async function audit(ctx: CliContext, name: string, opts: { verify?: boolean }): Promise<void> {
  const { vaults } = await ctx.accounts();
  if (opts.verify === true) {
    const result = await vaults.verifyAuditLog(name);
    ctx.emit(result, () => (result.ok
      ? `audit log of vault ${name}: intact, ${result.records} records`
      : `audit log of vault ${name}: BROKEN at record ${result.firstBroken?.seq ?? '?'}: ${result.firstBroken?.message ?? ''}`));
    if (!result.ok) requestExit(EXIT_FAILURE);
    return;
  }
  const info = (await vaults.list()).find((v) => v.name === name && v.local);
  if (info === undefined) {
    await vaults.verifyAuditLog(name); // throws the registry's typed not-found error
    return;
  }
  const text = await readFile(join(info.directory, AUDIT_LOG_FILE), 'utf8').catch(() => '');
  const records = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as AuditRecord);
  ctx.emit({ vault: name, records }, () => records.map((r) =>
    `${String(r.seq).padStart(5)} ${r.time} ${r.op.padEnd(12)} ${(r.key ?? '-').padEnd(16)} ${r.caller.padEnd(20)} ${r.result}${r.code === null ? '' : ` ${r.code}`}`));
}

export function registerVaultCommands(program: Command): void {
  const vault = program.command('vault').description('local key vaults (customer-managed keys)');
  vault.command('create <vault>')
    .description('create a passphrase-protected vault; the passphrase comes from VDCRYPT_VAULT_PASSPHRASE or a prompt')
    .option('--region <region>', 'region of the vault (must match the accounts that use it)', 'local')
    .option('--scrypt-n <N>', `scrypt cost of the passphrase (power of two, >= ${MIN_SCRYPT_N}; default ${DEFAULT_SCRYPT.N})`)
    .action(action(createVault));
  vault.command('list')
    .description('registered vaults')
    .action(action(async (ctx) => {
      const list = await (await ctx.accounts()).vaults.list();
      const value = list.map(({ name, region, directory, local }) => ({ name, region, directory, local }));
      ctx.emit({ vaults: value }, () => value.map((v) => `${v.name.padEnd(24)} ${v.region.padEnd(12)} ${v.directory}`));
    }));
  program.command('audit <vault>')
    .description('the key audit log of a vault (every key use and refusal); --verify checks its hash chain')
    .option('--verify', 'verify the hash chain instead of listing records (exit 1 when broken)')
    .action(action(audit));
}
