#!/usr/bin/env node
// Long-form VHD fuzz: runs test/vhd/fuzz.test.ts with VDCRYPT_FUZZ_CASES (default 100,000).
// Usage: node scripts/fuzz-vhd.mjs [cases] [seed]    (or set VDCRYPT_FUZZ_CASES / VDCRYPT_FUZZ_SEED)
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [casesArg, seedArg] = process.argv.slice(2);
const env = { ...process.env, VDCRYPT_FUZZ_CASES: casesArg ?? process.env.VDCRYPT_FUZZ_CASES ?? '100000' };
if (seedArg !== undefined) env.VDCRYPT_FUZZ_SEED = seedArg;
const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const result = spawnSync(process.execPath, [vitest, 'run', 'test/vhd/fuzz.test.ts'], { cwd: root, env, stdio: 'inherit' });
process.exit(result.status ?? 1);
