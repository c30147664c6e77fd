/**
 * Where an account's page blobs live: the embedded store of the home (`local`, the default) or an Azure
 * storage account (`azure`, issue 7). The setting is one file per account, `<home>/backends/<account>.json`,
 * beside (never inside) the account record of lib/account:
 *
 *   { "version": 1, "backend": "azure", "endpoint": "https://x.blob.core.windows.net/", "accountName": "x",
 *     "credential": { "connectionString": "..." } | { "sasUrl": "..." } }
 *
 * The credential is a secret (an account key or a SAS): the file is written atomically with mode 0600 in a
 * 0700 directory, and only `endpoint` and `accountName` are ever shown (`account show`, `--json`, errors).
 * Messages about a bad file or a bad connection string never quote it. A missing file means `local`.
 *
 * Environment: `VDCRYPT_AZURE_CONNECTION_STRING` (or `VDCRYPT_AZURE_SAS_URL`) supplies the credential to
 * `account create --backend azure` when no option gives one; the environment is preferred, since arguments
 * are visible to every user in `ps`.
 */
import { mkdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';

import { VdcryptError } from '../errors.js';
import { PRIVATE_DIR_MODE, SECRET_FILE_MODE, writeFileAtomic } from '../keys/index.js';
import { UsageError } from './errors.js';

export const BACKENDS_DIR = 'backends';
export const CONNECTION_STRING_ENV = 'VDCRYPT_AZURE_CONNECTION_STRING';
export const SAS_URL_ENV = 'VDCRYPT_AZURE_SAS_URL';
export const BACKEND_KINDS = ['local', 'azure'] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

const FORMAT_VERSION = 1;
/** lib/account's rule; other names have no account, hence no backend file (and never a path outside the home). */
const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;
const STATUS_MISCONFIGURED = 500;
/** Bits a secret file must not grant: anything for group or others. */
const GROUP_OTHER_BITS = 0o077;

export type AzureCredential = { connectionString: string } | { sasUrl: string };

export type BackendSetting =
  | { backend: 'local' }
  | { backend: 'azure'; endpoint: string; accountName: string; credential: AzureCredential };

/** What may be shown of a setting: never the credential. */
export type BackendSummary =
  | { backend: 'local' }
  | { backend: 'azure'; endpoint: string; accountName: string; credentialType: 'connectionString' | 'sasUrl' };

/** An account's backend file is unreadable, malformed, or open to other users. */
export class BackendConfigError extends VdcryptError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('BackendConfigInvalid', message, { status: STATUS_MISCONFIGURED, ...options });
  }
}

export function backendPath(home: string, account: string): string {
  if (!ACCOUNT_NAME.test(account)) throw new RangeError(`account must be 3..24 lowercase letters and digits, got '${account}'`);
  return join(home, BACKENDS_DIR, `${account}.json`);
}

export function summarizeBackend(setting: BackendSetting): BackendSummary {
  if (setting.backend === 'local') return { backend: 'local' };
  return {
    backend: 'azure', endpoint: setting.endpoint, accountName: setting.accountName,
    credentialType: 'connectionString' in setting.credential ? 'connectionString' : 'sasUrl',
  };
}

export function describeBackend(setting: BackendSetting | BackendSummary): string {
  return setting.backend === 'local' ? 'local (embedded store of this home)' : `azure ${setting.endpoint}`;
}

function isString(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

/** The account's backend; `local` when no file exists. */
export async function readBackend(home: string, account: string): Promise<BackendSetting> {
  if (!ACCOUNT_NAME.test(account)) return { backend: 'local' }; // the account layer refuses the name
  const path = backendPath(home, account);
  let text: string;
  try {
    const st = await stat(path);
    if ((st.mode & GROUP_OTHER_BITS) !== 0) {
      throw new BackendConfigError(`backend settings of account '${account}' (${path}) are readable by other users; ` +
        `chmod 600 the file, and change the credential if others may have read it`);
    }
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { backend: 'local' };
    if (error instanceof BackendConfigError) throw error;
    throw new BackendConfigError(`cannot read the backend settings of account '${account}' (${path}): ${(error as Error).message}`);
  }
  const bad = (): BackendConfigError => new BackendConfigError(
    `backend settings of account '${account}' (${path}) are malformed; set them again with ` +
    `vdcrypt account update ${account} --backend azure`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad(); // the parser's message may quote the file, which holds the credential
  }
  if (typeof raw !== 'object' || raw === null) throw bad();
  const r = raw as Record<string, unknown>;
  if (r['version'] !== FORMAT_VERSION) throw bad();
  if (r['backend'] === 'local') return { backend: 'local' };
  if (r['backend'] !== 'azure' || !isString(r['endpoint']) || !isString(r['accountName'])) throw bad();
  const c = r['credential'] as Record<string, unknown> | null | undefined;
  if (typeof c !== 'object' || c === null) throw bad();
  let credential: AzureCredential;
  if (isString(c['connectionString'])) credential = { connectionString: c['connectionString'] };
  else if (isString(c['sasUrl'])) credential = { sasUrl: c['sasUrl'] };
  else throw bad();
  return { backend: 'azure', endpoint: r['endpoint'], accountName: r['accountName'], credential };
}

/** Persist the setting (atomically, 0600); `local` removes the file. */
export async function writeBackend(home: string, account: string, setting: BackendSetting): Promise<void> {
  const path = backendPath(home, account);
  if (setting.backend === 'local') {
    await unlink(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    return;
  }
  await mkdir(join(home, BACKENDS_DIR), { recursive: true, mode: PRIVATE_DIR_MODE });
  const body = { version: FORMAT_VERSION, ...setting };
  await writeFileAtomic(path, `${JSON.stringify(body, null, 2)}\n`, { mode: SECRET_FILE_MODE });
}

export interface BackendOptions {
  backend?: string;
  connectionString?: string;
  sasUrl?: string;
}

/** The kind asked for: `--backend`, else azure when a credential option is given, else undefined. */
export function requestedBackend(opts: BackendOptions): BackendKind | undefined {
  if (opts.backend === undefined) return opts.connectionString !== undefined || opts.sasUrl !== undefined ? 'azure' : undefined;
  const kind = opts.backend.toLowerCase();
  if (!(BACKEND_KINDS as readonly string[]).includes(kind)) {
    throw new UsageError(`--backend must be ${BACKEND_KINDS.join(' or ')}, got '${opts.backend}'`);
  }
  return kind as BackendKind;
}

/**
 * Build the setting from options and the environment, checking the credential's shape with the Azure SDK
 * (no request is made). Errors name the option, never its value.
 */
export async function resolveBackendOptions(opts: BackendOptions, env: NodeJS.ProcessEnv): Promise<BackendSetting | undefined> {
  const kind = requestedBackend(opts);
  if (kind === undefined) return undefined;
  if (kind === 'local') {
    if (opts.connectionString !== undefined || opts.sasUrl !== undefined) {
      throw new UsageError('--connection-string and --sas-url go with --backend azure');
    }
    return { backend: 'local' };
  }
  if (opts.connectionString !== undefined && opts.sasUrl !== undefined) {
    throw new UsageError('give one of --connection-string and --sas-url, not both');
  }
  const fromEnv = (name: string): string | undefined => (isString(env[name]) ? env[name] : undefined);
  let credential: AzureCredential;
  let source: string;
  if (opts.connectionString !== undefined) [credential, source] = [{ connectionString: opts.connectionString }, '--connection-string'];
  else if (opts.sasUrl !== undefined) [credential, source] = [{ sasUrl: opts.sasUrl }, '--sas-url'];
  else if (fromEnv(CONNECTION_STRING_ENV) !== undefined) {
    [credential, source] = [{ connectionString: fromEnv(CONNECTION_STRING_ENV) ?? '' }, CONNECTION_STRING_ENV];
  } else if (fromEnv(SAS_URL_ENV) !== undefined) [credential, source] = [{ sasUrl: fromEnv(SAS_URL_ENV) ?? '' }, SAS_URL_ENV];
  else {
    throw new UsageError(`--backend azure needs a credential: set ${CONNECTION_STRING_ENV} (preferred: arguments show in ps), ` +
      `or give --connection-string or --sas-url`);
  }
  const { BlobServiceClient } = await import('@azure/storage-blob');
  let url: string;
  let accountName: string;
  try {
    const client = 'connectionString' in credential
      ? BlobServiceClient.fromConnectionString(credential.connectionString)
      : new BlobServiceClient(new URL(credential.sasUrl).toString());
    url = client.url;
    accountName = client.accountName;
  } catch {
    // The SDK's message may quote the string, key included.
    throw new UsageError(`${source} is not a valid Azure Storage ${'connectionString' in credential ? 'connection string' : 'SAS URL'} ` +
      `(expected AccountName and AccountKey or SharedAccessSignature, with an endpoint, or an https URL with a SAS query)`);
  }
  if ('sasUrl' in credential && new URL(credential.sasUrl).searchParams.get('sig') === null) {
    throw new UsageError(`${source} carries no SAS signature (sig=...)`);
  }
  const endpoint = new URL(url);
  endpoint.search = '';
  return { backend: 'azure', endpoint: endpoint.toString(), accountName: accountName === '' ? '?' : accountName, credential };
}
