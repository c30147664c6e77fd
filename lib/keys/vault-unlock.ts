/**
 * Obtaining a local vault's master key and its two sub-keys.
 *
 * The master key comes from a passphrase (scrypt, RFC 7914, with the salt and N/r/p stored in `vault.json`) or a
 * key file. It is used once, to derive with HKDF-SHA-256 an encryption sub-key (AES-256-GCM over key material)
 * and a MAC sub-key (HMAC-SHA-256 over the vault's JSON files), and then wiped. `vault.json` is authenticated
 * with the MAC sub-key, so a wrong passphrase or key file is told apart from a good one before anything is read:
 * `KeyVaultAuthenticationFailed`. (A `vault.json` altered on disk answers the same way, or `KeyVaultCorrupted`
 * when it no longer parses.)
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';

import { writeFileAtomic } from './atomic-file.js';
import { KeyVaultError } from './errors.js';
import {
  DEFAULT_SCRYPT, deriveFromPassphrase, deriveSubkey, newScryptSalt, readKeyFile, type ScryptParams, validateScryptParams,
} from './master-key.js';
import type { SecretBytes } from './secret.js';
import {
  asVaultHeader, encodeEnvelope, openEnvelope, splitEnvelope, VAULT_FORMAT, VAULT_HEADER_FILE, type KdfDescriptor,
  type VaultHeader,
} from './vault-files.js';

/** How to unlock a vault: a passphrase (scrypt) or a key file holding the 32-byte master key. */
export type VaultCredential =
  | { passphrase: string | Uint8Array; scrypt?: ScryptParams }
  | { keyFile: string };

const ENC_PURPOSE = 'vdcrypt vault key-material encryption v1';
const MAC_PURPOSE = 'vdcrypt vault file authentication v1';

/** The sub-keys of an unlocked vault. */
export class VaultKeys {
  readonly enc: SecretBytes;
  readonly mac: SecretBytes;

  constructor(master: SecretBytes, vaultName: string) {
    const salt = Buffer.from(vaultName, 'utf8');
    this.enc = deriveSubkey(master, ENC_PURPOSE, salt);
    this.mac = deriveSubkey(master, MAC_PURPOSE, salt);
  }

  dispose(): void {
    this.enc.dispose();
    this.mac.dispose();
  }

  toJSON(): { vaultKeys: string } {
    return { vaultKeys: '[redacted]' };
  }

  [inspect.custom](): string {
    return 'VaultKeys { [redacted] }';
  }
}

function checkCredential(credential: unknown): asserts credential is VaultCredential {
  if (typeof credential !== 'object' || credential === null) throw new TypeError('credential must be { passphrase } or { keyFile }');
  const c = credential as Record<string, unknown>;
  if ('passphrase' in c === 'keyFile' in c) throw new TypeError('credential must have exactly one of passphrase, keyFile');
  if ('keyFile' in c && typeof c['keyFile'] !== 'string') throw new TypeError('keyFile must be a path string');
}

async function masterKey(kdf: KdfDescriptor, credential: VaultCredential): Promise<SecretBytes> {
  if (kdf.type === 'keyfile') {
    if (!('keyFile' in credential)) throw new KeyVaultError('KeyVaultAuthenticationFailed', 'this vault is unlocked with a key file, not a passphrase');
    return readKeyFile(credential.keyFile);
  }
  if (!('passphrase' in credential)) throw new KeyVaultError('KeyVaultAuthenticationFailed', 'this vault is unlocked with a passphrase, not a key file');
  return deriveFromPassphrase(credential.passphrase, Buffer.from(kdf.salt, 'base64'), { N: kdf.N, r: kdf.r, p: kdf.p });
}

/** Write the header of a new vault and return its sub-keys. */
export async function writeVaultHeader(directory: string, base: Omit<VaultHeader, 'format' | 'kdf'>, credential: VaultCredential): Promise<VaultKeys> {
  checkCredential(credential);
  let kdf: KdfDescriptor;
  if ('keyFile' in credential) {
    kdf = { type: 'keyfile' };
  } else {
    const params = credential.scrypt ?? DEFAULT_SCRYPT;
    validateScryptParams(params);
    kdf = { type: 'scrypt', salt: newScryptSalt().toString('base64'), N: params.N, r: params.r, p: params.p };
  }
  const header: VaultHeader = { format: VAULT_FORMAT, name: base.name, region: base.region, created: base.created, kdf };
  const master = await masterKey(kdf, credential);
  const keys = new VaultKeys(master, header.name);
  master.dispose();
  await writeFileAtomic(join(directory, VAULT_HEADER_FILE), encodeEnvelope(header, keys.mac));
  return keys;
}

/** Read `vault.json`, derive the master key from `credential` and check it against the header. */
export async function unlockVault(directory: string, credential: VaultCredential): Promise<{ header: VaultHeader; keys: VaultKeys }> {
  checkCredential(credential);
  const path = join(directory, VAULT_HEADER_FILE);
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new KeyVaultError('KeyVaultVaultNotFound', `no key vault in ${directory}`, { cause: error });
    }
    throw error;
  }
  const header = asVaultHeader(splitEnvelope(data, path).parsed, path);
  const master = await masterKey(header.kdf, credential);
  const keys = new VaultKeys(master, header.name);
  master.dispose();
  try {
    openEnvelope(data, keys.mac, path, () => new KeyVaultError('KeyVaultAuthenticationFailed',
      `wrong passphrase or key file for vault '${header.name}' (or its vault.json was altered)`));
  } catch (error) {
    keys.dispose();
    throw error;
  }
  return { header, keys };
}
