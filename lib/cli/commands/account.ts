/** `vdcrypt account create|update|show|list`: storage accounts and their SSE settings (Azure property names). */
import type { Command } from 'commander';

import type { AccountProperties, UpdateAccountPatch } from '../../account/index.js';
import { action } from '../action.js';
import type { CliContext } from '../context.js';
import { vaultNameOf } from '../context.js';
import { UsageError } from '../errors.js';
import { parseOnOff } from '../parse.js';

const KEY_SOURCE_NAMES: Record<string, UpdateAccountPatch['keySource']> = {
  microsoft: 'Microsoft.Storage', 'microsoft.storage': 'Microsoft.Storage',
  keyvault: 'Microsoft.Keyvault', 'microsoft.keyvault': 'Microsoft.Keyvault',
};

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

async function update(ctx: CliContext, name: string, opts: { encryption?: string; keySource?: string; keyUri?: string; rollDataKey?: boolean }): Promise<void> {
  const patch: UpdateAccountPatch = {};
  if (opts.encryption !== undefined) patch.encryption = parseOnOff(opts.encryption, '--encryption');
  if (opts.keySource !== undefined) {
    const source = KEY_SOURCE_NAMES[opts.keySource.toLowerCase()];
    if (source === undefined) throw new UsageError(`--key-source must be microsoft or keyvault, got '${opts.keySource}'`);
    patch.keySource = source;
  }
  if (opts.keyUri !== undefined) patch.keyUri = opts.keyUri;
  const changes = Object.keys(patch).length;
  if (changes === 0 && opts.rollDataKey !== true) {
    throw new UsageError('nothing to change: give --encryption, --key-source, --key-uri or --roll-data-key');
  }
  const service = await ctx.accounts();
  // Re-wrapping needs the current key (to unwrap) and the new one (to wrap): unlock both vaults.
  await ctx.unlockVaultOf(name);
  const target = opts.keyUri === undefined ? undefined : vaultNameOf(opts.keyUri);
  if (target !== undefined && (await service.vaults.list()).some((v) => v.name === target && v.local)) await ctx.vault(target);
  let props = changes > 0 ? await service.updateAccount(name, patch) : await service.getAccount(name);
  if (opts.rollDataKey === true) props = await service.rollDataKey(name);
  ctx.emit(props, () => describeAccount(props));
}

export function registerAccountCommands(program: Command): void {
  const account = program.command('account').description('storage accounts and their encryption settings');
  account.command('create <account>')
    .description('create a storage account (service-managed keys; encryption on unless --encryption off)')
    .option('--region <region>', 'region of the account (a vault must be in the same one)', 'local')
    .option('--encryption <on|off>', 'blob encryption of new writes', 'on')
    .action(action(async (ctx, name: string, opts: { region: string; encryption: string }) => {
      const encryption = parseOnOff(opts.encryption, '--encryption');
      const props = await (await ctx.accounts()).createAccount(name, { region: opts.region, encryption });
      ctx.emit(props, () => describeAccount(props));
    }));
  account.command('update <account>')
    .description('change encryption, key source or key; re-wraps the data keys, never rewrites data')
    .option('--encryption <on|off>', 'blob encryption of new writes')
    .option('--key-source <source>', 'microsoft (service-managed) or keyvault (customer-managed)')
    .option('--key-uri <uri>', 'customer key: https://<vault>.vault.local/keys/<name>[/<version>]; no version = follow the newest')
    .option('--roll-data-key', 'start a new data key generation for future writes')
    .action(action(update));
  account.command('show <account>')
    .description('account properties, with the Azure names under --json (encryption.keySource, ...)')
    .action(action(async (ctx, name: string) => {
      const props = await (await ctx.accounts()).getAccount(name);
      ctx.emit(props, () => describeAccount(props));
    }));
  account.command('list')
    .description('account names in this home')
    .action(action(async (ctx) => {
      const names = await (await ctx.accounts()).listAccounts();
      ctx.emit({ accounts: names }, () => names);
    }));
}
