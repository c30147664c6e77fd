/** `vdcrypt account create|update|show|list`: storage accounts and their SSE settings (Azure property names). */
import type { Command } from 'commander';

import type { AccountProperties, UpdateAccountPatch } from '../../account/index.js';
import { action } from '../action.js';
import {
  BackendConfigError, type BackendOptions, type BackendSetting, CONNECTION_STRING_ENV, describeBackend, resolveBackendOptions, summarizeBackend,
  writeBackend,
} from '../backends.js';
import type { CliContext } from '../context.js';
import { vaultNameOf } from '../context.js';
import { UsageError } from '../errors.js';
import { parseOnOff } from '../parse.js';

const KEY_SOURCE_NAMES: Record<string, UpdateAccountPatch['keySource']> = {
  microsoft: 'Microsoft.Storage', 'microsoft.storage': 'Microsoft.Storage',
  keyvault: 'Microsoft.Keyvault', 'microsoft.keyvault': 'Microsoft.Keyvault',
};

/** `account show` and friends: the properties with the backend (never its credential). */
function withBackend(p: AccountProperties, setting: BackendSetting): AccountProperties & { backend: ReturnType<typeof summarizeBackend> } {
  return { ...p, backend: summarizeBackend(setting) };
}

function emitAccount(ctx: CliContext, p: AccountProperties, setting: BackendSetting): void {
  ctx.emit(withBackend(p, setting), () => [...describeAccount(p), `backend            ${describeBackend(setting)}`]);
}

export function describeAccount(p: AccountProperties): string[] {
  const blob = p.encryption.services.blob;
  const lines = [
    `account            ${p.name}`,
    `region             ${p.region}`,
    `encryption         ${blob.enabled ? 'enabled' : 'disabled'}${blob.lastEnabledTime === undefined ? '' : ` (last enabled ${blob.lastEnabledTime})`}`,
    `keySource          ${p.encryption.keySource}`,
  ];
  const kv = p.encryption.keyvaultproperties;
  if (kv !== undefined) {
    lines.push(`key                ${kv.keyvaulturi}/keys/${kv.keyname}${kv.keyversion === '' ? ' (follows the newest version)' : `/${kv.keyversion}`}`);
    lines.push(`current key        ${kv.currentVersionedKeyIdentifier}`);
    lines.push(`last key rotation  ${kv.lastKeyRotationTimestamp}`);
  }
  lines.push(`data key           generation ${p.currentGeneration} of ${p.dataKeyGenerations.length}`);
  return lines;
}

interface UpdateFlags extends BackendOptions { encryption?: string; keySource?: string; keyUri?: string; rollDataKey?: boolean }

async function update(ctx: CliContext, name: string, opts: UpdateFlags): Promise<void> {
  const backend = await resolveBackendOptions(opts, ctx.env);
  const patch: UpdateAccountPatch = {};
  if (opts.encryption !== undefined) patch.encryption = parseOnOff(opts.encryption, '--encryption');
  if (opts.keySource !== undefined) {
    const source = KEY_SOURCE_NAMES[opts.keySource.toLowerCase()];
    if (source === undefined) throw new UsageError(`--key-source must be microsoft or keyvault, got '${opts.keySource}'`);
    patch.keySource = source;
  }
  if (opts.keyUri !== undefined) patch.keyUri = opts.keyUri;
  const changes = Object.keys(patch).length;
  if (changes === 0 && opts.rollDataKey !== true && backend === undefined) {
    throw new UsageError('nothing to change: give --encryption, --key-source, --key-uri, --roll-data-key or --backend');
  }
  const service = await ctx.accounts();
  if (backend !== undefined) {
    await service.getAccount(name); // AccountNotFound before anything is written
    // Only where the blobs are looked for changes: nothing is moved between backends.
    await writeBackend(ctx.home, name, backend);
    if (changes === 0 && opts.rollDataKey !== true) {
      emitAccount(ctx, await service.getAccount(name), backend);
      return;
    }
  }
  // Re-wrapping needs the current key (to unwrap) and the new one (to wrap): unlock both vaults.
  await ctx.unlockVaultOf(name);
  const target = opts.keyUri === undefined ? undefined : vaultNameOf(opts.keyUri);
  if (target !== undefined && (await service.vaults.list()).some((v) => v.name === target && v.local)) await ctx.vault(target);
  let props = changes > 0 ? await service.updateAccount(name, patch) : await service.getAccount(name);
  if (opts.rollDataKey === true) props = await service.rollDataKey(name);
  emitAccount(ctx, props, await ctx.backend(name));
}

const BACKEND_HELP = 'where the blobs live: local (the embedded store of this home) or azure (an Azure storage account)';
const CONNECTION_STRING_HELP = `Azure Storage connection string (prefer ${CONNECTION_STRING_ENV}: arguments show in ps)`;
const SAS_URL_HELP = 'Azure blob service SAS URL (or VDCRYPT_AZURE_SAS_URL)';

export function registerAccountCommands(program: Command): void {
  const account = program.command('account').description('storage accounts and their encryption settings');
  account.command('create <account>')
    .description('create a storage account (service-managed keys; encryption on unless --encryption off)')
    .option('--region <region>', 'region of the account (a vault must be in the same one)', 'local')
    .option('--encryption <on|off>', 'blob encryption of new writes', 'on')
    .option('--backend <local|azure>', BACKEND_HELP)
    .option('--connection-string <string>', CONNECTION_STRING_HELP)
    .option('--sas-url <url>', SAS_URL_HELP)
    .action(action(async (ctx, name: string, opts: BackendOptions & { region: string; encryption: string }) => {
      const encryption = parseOnOff(opts.encryption, '--encryption');
      const backend = (await resolveBackendOptions(opts, ctx.env)) ?? { backend: 'local' };
      const props = await (await ctx.accounts()).createAccount(name, { region: opts.region, encryption });
      try {
        await writeBackend(ctx.home, name, backend);
      } catch (error) {
        throw new BackendConfigError(`account ${name} was created on the local backend, but its backend settings could not be saved ` +
          `(${(error as Error).message}); run vdcrypt account update ${name} --backend azure`);
      }
      emitAccount(ctx, props, backend);
    }));
  account.command('update <account>')
    .description('change encryption, key source or key; re-wraps the data keys, never rewrites data')
    .option('--encryption <on|off>', 'blob encryption of new writes')
    .option('--key-source <source>', 'microsoft (service-managed) or keyvault (customer-managed)')
    .option('--key-uri <uri>', 'customer key: https://<vault>.vault.local/keys/<name>[/<version>]; no version = follow the newest')
    .option('--roll-data-key', 'start a new data key generation for future writes')
    .option('--backend <local|azure>', `${BACKEND_HELP}; changes where blobs are looked for, moves nothing`)
    .option('--connection-string <string>', `${CONNECTION_STRING_HELP}; e.g. after a key rotation`)
    .option('--sas-url <url>', SAS_URL_HELP)
    .action(action(update));
  account.command('show <account>')
    .description('account properties, with the Azure names under --json (encryption.keySource, ...)')
    .action(action(async (ctx, name: string) => {
      const props = await (await ctx.accounts()).getAccount(name);
      emitAccount(ctx, props, await ctx.backend(name));
    }));
  account.command('list')
    .description('account names in this home')
    .action(action(async (ctx) => {
      const names = await (await ctx.accounts()).listAccounts();
      ctx.emit({ accounts: names }, () => names);
    }));
}
