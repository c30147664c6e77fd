/**
 * `vdcrypt key create|rotate|enable|disable|delete|grant|revoke|list`: the customer's key management in a
 * local vault. Output shows public key properties only (never key material).
 */
import type { Command } from 'commander';

import { accountIdentity } from '../../account/index.js';
import { KEY_PERMISSIONS, type KeyProperties, RSA_KEY_SIZES, type RsaKeySize } from '../../keys/index.js';
import { action } from '../action.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { parseKeyAddress } from '../parse.js';

/** Key properties without the RSA modulus (long, and of no use at a terminal). */
function publicView(k: KeyProperties): Omit<KeyProperties, 'n' | 'e'> {
  const { n: _n, e: _e, ...rest } = k;
  return rest;
}

function describeKey(k: KeyProperties): string {
  const state = k.deleted ? 'deleted' : k.enabled ? 'enabled' : 'disabled';
  const access = Object.entries(k.access).map(([who, perms]) => `${who}(${perms.join(',')})`).join(' ') || 'nobody';
  return `${k.vault}/${k.name}  ${k.kty}-${k.keySize}  ${state}  version ${k.version} of ${k.versions.length}  kid ${k.kid}  access: ${access}`;
}

type KeyOp = (ctx: CliContext, vault: string, key: string) => Promise<KeyProperties>;

function keyAction(op: KeyOp): (...args: unknown[]) => Promise<void> {
  return action(async (ctx, address: string) => {
    const { vault, key } = parseKeyAddress(address);
    const props = await op(ctx, vault, key);
    ctx.emit(publicView(props), () => describeKey(props));
  });
}

function simple(program: Command, name: string, description: string, op: KeyOp): void {
  program.command(`${name} <vault/key>`).description(description).action(keyAction(op));
}

export function registerKeyCommands(program: Command): void {
  const key = program.command('key').description('customer-managed keys in a local vault');
  key.command('create <vault/key>')
    .description('create a key (RSA 2048/3072/4096 or oct = AES-256)')
    .option('--kty <type>', 'RSA or oct', 'RSA')
    .option('--size <bits>', `RSA modulus size (${RSA_KEY_SIZES.join(', ')})`)
    .action(action(async (ctx, address: string, opts: { kty: string; size?: string }) => {
      const { vault, key: name } = parseKeyAddress(address);
      const kty = opts.kty.toUpperCase() === 'RSA' ? 'RSA' : opts.kty.toLowerCase() === 'oct' ? 'oct' : undefined;
      if (kty === undefined) throw new UsageError(`--kty must be RSA or oct, got '${opts.kty}'`);
      let size: RsaKeySize | undefined;
      if (opts.size !== undefined) {
        const n = Number(opts.size);
        if (kty === 'oct' ? n !== 256 : !RSA_KEY_SIZES.includes(n as RsaKeySize)) {
          throw new UsageError(kty === 'oct' ? `oct keys are 256 bits, got --size ${opts.size}` : `--size must be one of ${RSA_KEY_SIZES.join(', ')}, got '${opts.size}'`);
        }
        if (kty === 'RSA') size = n as RsaKeySize;
      }
      const props = await (await ctx.vault(vault)).createKey(name, { kty, ...(size === undefined ? {} : { size }) });
      ctx.emit(publicView(props), () => describeKey(props));
    }));
  simple(key, 'rotate', 'add a new key version (accounts that follow the newest re-wrap on next use; no data is rewritten)',
    async (ctx, vault, name) => (await ctx.vault(vault)).rotateKey(name));
  simple(key, 'enable', 'enable a key (restores access to accounts that use it)',
    async (ctx, vault, name) => (await ctx.vault(vault)).setKeyEnabled(name, true));
  simple(key, 'disable', 'disable a key: every account that uses it is refused (403) until it is enabled',
    async (ctx, vault, name) => (await ctx.vault(vault)).setKeyEnabled(name, false));
  key.command('delete <vault/key>')
    .description('soft-delete a key (accounts that use it are refused)')
    .action(action(async (ctx, address: string) => {
      const { vault, key: name } = parseKeyAddress(address);
      const v = await ctx.vault(vault);
      await v.deleteKey(name);
      const props = await v.describeKey(name);
      ctx.emit(publicView(props), () => describeKey(props));
    }));
  for (const [verb, grant] of [['grant', true], ['revoke', false]] as const) {
    key.command(`${verb} <vault/key>`)
      .description(grant ? `give an account ${KEY_PERMISSIONS.join(', ')} on the key` : 'remove an account\'s access to the key (it is refused)')
      .requiredOption('--account <account>', 'the storage account')
      .action(action(async (ctx, address: string, opts: { account: string }) => {
        const { vault, key: name } = parseKeyAddress(address);
        const v = await ctx.vault(vault);
        const identity = accountIdentity(opts.account);
        const props = grant ? await v.grantAccess(name, identity, KEY_PERMISSIONS) : await v.revokeAccess(name, identity);
        ctx.emit(publicView(props), () => describeKey(props));
      }));
  }
  key.command('list <vault>')
    .description('keys of a vault')
    .action(action(async (ctx, vault: string) => {
      const keys = await (await ctx.vault(vault)).listKeys();
      ctx.emit({ keys: keys.map(publicView) }, () => keys.map(describeKey));
    }));
}
