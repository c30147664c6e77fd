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
import { LocalPageStore } from '../store/index.js';
import { resolveHome, STORE_DIR } from './home.js';
import { readPassphrase } from './passphrase.js';

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
  #store: Promise<LocalPageStore> | undefined;
  #blobs: PageBlobService | undefined;

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

  /** The page-blob service over the home's embedded store, with the vaults of `accounts` unlocked. */
  async blobs(...accounts: string[]): Promise<PageBlobService> {
    const service = await this.accounts();
    for (const account of new Set(accounts)) await this.unlockVaultOf(account);
    this.#store ??= LocalPageStore.open(join(this.home, STORE_DIR));
    const store = await this.#store;
    this.#blobs ??= new PageBlobService(store, service);
    return this.#blobs;
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
      store?.then((s) => s.close()),
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
