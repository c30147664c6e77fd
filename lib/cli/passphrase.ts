/**
 * The passphrase of a local key vault: `VDCRYPT_VAULT_PASSPHRASE`, else a prompt on the terminal (no echo),
 * else a usage error. The passphrase is never echoed, logged or put in an error message.
 */
import { UsageError, InterruptedError } from './errors.js';

export const PASSPHRASE_ENV = 'VDCRYPT_VAULT_PASSPHRASE';

const ENTER = new Set(['\r', '\n']);
const CTRL_C = '\u0003';
const CTRL_D = '\u0004';
const BACKSPACE = new Set(['\u007f', '\b']);

export async function readPassphrase(vault: string, env: NodeJS.ProcessEnv, confirm = false): Promise<string> {
  const fromEnv = env[PASSPHRASE_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (process.stdin.isTTY !== true || process.stderr.isTTY !== true) {
    throw new UsageError(`vault '${vault}' needs its passphrase: set ${PASSPHRASE_ENV} (no terminal to prompt on)`);
  }
  const first = await prompt(`Passphrase for vault '${vault}': `);
  if (first === '') throw new UsageError('an empty passphrase is not accepted');
  if (confirm && (await prompt('Repeat the passphrase: ')) !== first) throw new UsageError('the two passphrases differ');
  return first;
}

/** Read one line from the terminal in raw mode, echoing nothing. */
function prompt(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (error?: Error): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (error === undefined) resolve(text);
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString('utf8')) {
        if (ENTER.has(ch) || ch === CTRL_D) return finish();
        if (ch === CTRL_C) return finish(new InterruptedError('passphrase entry cancelled'));
        if (BACKSPACE.has(ch)) text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}
