/**
 * Where a vdcrypt home lives: `--home DIR`, else `VDCRYPT_HOME`, else the per-user data directory
 * (`$XDG_DATA_HOME/vdcrypt`, or `~/.local/share/vdcrypt` as the XDG base directory specification defaults it).
 * A home holds the service master key, the accounts, the vault registry and vaults, and the page store
 * (`<home>/store`).
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const HOME_ENV = 'VDCRYPT_HOME';
export const STORE_DIR = 'store';

export function resolveHome(option: string | undefined, env: NodeJS.ProcessEnv): string {
  if (option !== undefined && option !== '') return resolve(option);
  const fromEnv = env[HOME_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  const xdg = env['XDG_DATA_HOME'];
  const base = xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.local', 'share');
  return join(resolve(base), 'vdcrypt');
}
