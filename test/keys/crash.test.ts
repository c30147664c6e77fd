/**
 * Crash safety of vault writes: a child process creates and rotates keys and is killed with SIGKILL at a random
 * point, over and over. After every kill the vault must open, every key file must authenticate, every key must
 * hold the versions it held before (plus at most the ones the child finished since), its newest version must
 * wrap and unwrap, and the audit log must verify.
 *
 * The child runs the compiled key layer (plain JavaScript; Node 20 cannot run TypeScript), built once into the
 * git-ignored `.vdcrypt-tmp/` with the project's own compiler.
 */
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { KeyVaultRegistry, LocalKeyVault } from '../../lib/keys/index.js';
import { tempHome } from './helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BUILD = join(ROOT, '.vdcrypt-tmp', `keys-crash-${process.pid}`);
const CHILD = join(ROOT, 'test/fixtures/keys/crash-child.mjs');
const CYCLES = 110;
const MAX_KILL_DELAY_MS = 40;
const CALLER = 'account:crash';

let home: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ home, cleanup } = await tempHome());
  await mkdir(BUILD, { recursive: true });
  const config = join(BUILD, 'tsconfig.json');
  await writeFile(config, JSON.stringify({
    extends: join(ROOT, 'tsconfig.json'),
    compilerOptions: { rootDir: join(ROOT, 'lib'), outDir: join(BUILD, 'lib'), declaration: false, sourceMap: false },
    include: [join(ROOT, 'lib/keys/**/*.ts')],
  }));
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', config], { stdio: 'pipe' });
}, 120_000);

afterAll(async () => {
  await rm(BUILD, { recursive: true, force: true });
  await cleanup();
});

/** Run the child until it says ready, let it work for a random moment, then SIGKILL it. */
function runAndKill(vaultDir: string, keyFile: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CHILD, join(BUILD, 'lib/keys'), vaultDir, keyFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      if (!killed && d.toString().includes('ready')) {
        killed = true;
        setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * MAX_KILL_DELAY_MS));
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolvePromise();
      else reject(new Error(`child exited with ${code}: ${stderr}`));
    });
  });
}

describe('vault writes under kill -9', () => {
  it(`stay valid over ${CYCLES} random kills during key creation and rotation`, async () => {
    const keyFile = join(home, 'vault.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    const registry = await KeyVaultRegistry.open(home);
    const { directory } = await registry.createVault('crashvault', { region: 'r', credential: { keyFile } });
    registry.close();

    const seen = new Map<string, string[]>();
    let rotationsSeen = 0;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      await runAndKill(directory, keyFile);
      const vault = await LocalKeyVault.open(directory, { keyFile });
      try {
        for (const key of await vault.listKeys()) {
          const versions = key.versions.map((v) => v.version);
          const before = seen.get(key.name) ?? [];
          expect(versions.slice(0, before.length), `key ${key.name} lost versions`).toEqual(before);
          rotationsSeen += versions.length - Math.max(before.length, 1);
          seen.set(key.name, versions);
          if (key.access[CALLER] !== undefined) {
            const secret = randomBytes(64);
            const alg = key.kty === 'RSA' ? 'RSA-OAEP-256' : 'A256KW';
            const wrapped = await vault.wrapKey(key.name, undefined, alg, secret, CALLER);
            const back = await vault.unwrapKey(key.name, key.version, alg, wrapped.value, CALLER);
            expect(Buffer.compare(back.bytes, secret)).toBe(0);
            back.dispose();
          }
        }
        expect(await vault.verifyAuditLog()).toMatchObject({ ok: true });
      } finally {
        vault.close();
      }
    }
    // The kills really landed while the child was working: keys were made and rotated across cycles.
    expect(seen.size).toBeGreaterThan(0);
    expect(rotationsSeen).toBeGreaterThan(CYCLES / 4);
  }, 120_000);
});
