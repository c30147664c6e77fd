/**
 * What every command runs with: the global options, the home's services (opened lazily, closed once), vault
 * unlocking, and output that honours `--json` and `--quiet`.
 *
 * Output rules: results go to stdout (JSON with `--json`, text otherwise; `--quiet` drops the text, never the
 * JSON); notes and progress go to stderr. Nothing secret is ever printed.
 */
import { join } from 'node:path';

import { AccountService } from '../account/index.js';
import { PageBlobService } from '../blob/index.js';
import type { LocalKeyVault } from '../keys/index.js';
import type { AzurePageStore } from '../remote/index.js';
import { LocalPageStore, type PageStore } from '../store/index.js';
import { type BackendSetting, readBackend } from './backends.js';
import { resolveHome, STORE_DIR } from './home.js';
import { readPassphrase } from './passphrase.js';
import { RoutedPageStore } from './routed-store.js';

export interface GlobalOptions {
  home?: string;
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
}

export interface Output {
  write(text: string): void;
  readonly isTTY: boolean;
}

function streamOutput(stream: NodeJS.WriteStream): Output {
  return { write: (text) => void stream.write(text), get isTTY() { return stream.isTTY === true; } };
}

export class CliContext {
  readonly home: string;
  readonly json: boolean;
  readonly quiet: boolean;
  readonly forceProgress: boolean;
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: Output;
  readonly stderr: Output;
  #accounts: Promise<AccountService> | undefined;
  #store: RoutedPageStore | undefined;
  #blobs: PageBlobService | undefined;
  readonly #backends = new Map<string, Promise<BackendSetting>>();

  constructor(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env,
    io: { stdout?: Output; stderr?: Output } = {}) {
    this.env = env;
    this.home = resolveHome(options.home, env);
    this.json = options.json === true;
    this.quiet = options.quiet === true;
    this.forceProgress = options.progress === true;
    this.stdout = io.stdout ?? streamOutput(process.stdout);
    this.stderr = io.stderr ?? streamOutput(process.stderr);
  }

  /** Print a command's result: `value` as JSON with --json, else the text lines (unless --quiet). */
  emit(value: unknown, text: () => string | string[]): void {
    if (this.json) {
      this.stdout.write(`${JSON.stringify(value, jsonSafe, 2)}\n`);
      return;
    }
    if (this.quiet) return;
    const lines = text();
    const body = Array.isArray(lines) ? lines.join('\n') : lines;
    if (body !== '') this.stdout.write(`${body}\n`);
  }

  /** A note for the person at the terminal (stderr; dropped by --quiet and --json). */
  note(line: string): void {
    if (!this.quiet && !this.json) this.stderr.write(`${line}\n`);
  }

  accounts(): Promise<AccountService> {
    this.#accounts ??= AccountService.open(this.home, { env: this.env });
    return this.#accounts;
  }

  /** Where `account`'s blobs live (backends.ts), read once per run. */
  backend(account: string): Promise<BackendSetting> {
    let setting = this.#backends.get(account);
    if (setting === undefined) {
      setting = readBackend(this.home, account);
      this.#backends.set(account, setting);
    }
    return setting;
  }

  /**
   * The page-blob service with the vaults of `accounts` unlocked. Its store routes each account to its
   * backend (routed-store.ts): the home's embedded store, or an AzurePageStore for accounts set to azure.
   */
  async blobs(...accounts: string[]): Promise<PageBlobService> {
    const service = await this.accounts();
    for (const account of new Set(accounts)) await this.unlockVaultOf(account);
    this.#store ??= new RoutedPageStore(async (account) => {
      const setting = await this.backend(account);
      if (setting.backend === 'local') return { key: 'local', open: () => LocalPageStore.open(join(this.home, STORE_DIR)) };
      const { credential } = setting;
      return {
        key: `azure:${account}`,
        open: async (): Promise<PageStore> => {
          const { AzurePageStore } = await import('../remote/index.js'); // the Azure SDK loads only when used
          return new AzurePageStore({ accounts: { [account]: credential } });
        },
      };
    });
    this.#blobs ??= new PageBlobService(this.#store, service);
    return this.#blobs;
  }

  /** The AzurePageStore holding `account`, or undefined when the account is local. Call {@link blobs} first. */
  async azureStore(account: string): Promise<AzurePageStore | undefined> {
    if ((await this.backend(account)).backend !== 'azure' || this.#store === undefined) return undefined;
    return (await this.#store.storeFor(account)) as AzurePageStore;
  }

  /** Unlock a passphrase vault in this process (a key-file vault unlocks itself). */
  async vault(name: string): Promise<LocalKeyVault> {
    const { vaults } = await this.accounts();
    const info = (await vaults.list()).find((v) => v.name === name);
    if (info === undefined || info.keyFile !== undefined || info.unlocked) return vaults.local(name);
    return vaults.unlock(name, { passphrase: await readPassphrase(name, this.env) });
  }

  /** When `account` uses a customer-managed key in a registered local vault, unlock that vault. */
  async unlockVaultOf(account: string): Promise<void> {
    const service = await this.accounts();
    const props = await service.getAccount(account);
    const uri = props.encryption.keySource === 'Microsoft.Keyvault' ? props.encryption.keyvaultproperties?.keyvaulturi : undefined;
    if (uri === undefined) return;
    const vault = vaultNameOf(uri);
    if (vault === undefined) return;
    const known = (await service.vaults.list()).some((v) => v.name === vault && v.local);
    if (known) await this.vault(vault);
  }

  async close(): Promise<void> {
    const store = this.#store;
    const accounts = this.#accounts;
    this.#store = undefined;
    this.#accounts = undefined;
    this.#blobs = undefined;
    await Promise.allSettled([
      store?.close(),
      accounts?.then((a) => a.close()),
    ]);
  }
}

/** JSON replacer: 64-bit fields (bigint) as decimal strings. */
function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** `https://<vault>.vault.local[/...]` → `<vault>`. */
export function vaultNameOf(uri: string): string | undefined {
  try {
    const host = new URL(uri).hostname;
    const dot = host.indexOf('.');
    return dot > 0 ? host.slice(0, dot) : undefined;
  } catch {
    return undefined;
  }
}
