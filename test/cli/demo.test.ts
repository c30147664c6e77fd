/** `vdcrypt demo` (what `npm start` runs): exits 0, prints the map and every step's proof. */
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';

import { beforeAll, expect, it } from 'vitest';

import { ensureBuilt, vdcrypt } from './helpers.js';

beforeAll(ensureBuilt);

it('runs end to end in well under a minute, prints the map, and removes its home', async () => {
  const before = new Set((await readdir(tmpdir())).filter((n) => n.startsWith('vdcrypt-demo-')));
  const started = Date.now();
  const r = await vdcrypt(['demo']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(Date.now() - started).toBeLessThan(30_000);
  for (const step of ['image', 'import', 'boot', 'cmk', 'rotate', 'revoke', 'restore', 'encrypt', 'export']) {
    expect(r.stdout).toMatch(new RegExp(`^ ?\\d+\\. ${step} .*; proved: `, 'm'));
  }
  expect(r.stdout).toMatch(/│[░·▒█]+│/);
  expect(r.stdout).toContain('░ plaintext');
  expect(r.stdout).toContain('█ encrypted, data key 1');
  expect(r.stdout).toContain('serverEncrypted: false');
  expect(r.stdout).toContain('serverEncrypted: true');
  expect(r.stdout).toContain('operations refused (KeyVault');
  expect(r.stdout).toContain('every check passed');
  const after = (await readdir(tmpdir())).filter((n) => n.startsWith('vdcrypt-demo-') && !before.has(n));
  expect(after).toEqual([]);
});
