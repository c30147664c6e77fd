/**
 * The blob-level crash suite, bounded for `npm test`: SIGKILL cycles of a child putting encrypted and
 * base-image pages, clearing, toggling encryption, rolling the AEK and rewriting (scripts/crash-blob.mjs).
 * The long run is `npm run test:crash` (500 cycles).
 */
import { expect, it } from 'vitest';

import { runBlobCrashSuite } from '../../scripts/crash-blob.mjs';
import { ensureDist } from '../support/dist.js';

const CYCLES = Number(process.env.VDCRYPT_BLOB_CRASH_TEST_CYCLES ?? 25);

it(`${CYCLES} kill -9 cycles: pages decrypt to what was written, states follow the rules, nothing acknowledged is lost`, async () => {
  ensureDist(); // the child is a plain node process running the compiled code
  const r = await runBlobCrashSuite({ cycles: CYCLES, maxKillMs: 300 });
  expect(r.violations).toEqual([]);
  expect(r.acked).toBeGreaterThan(CYCLES);
  expect(r.encryptedPagesSeen).toBeGreaterThan(0);
  expect(r.plaintextPagesSeen).toBeGreaterThan(0);
  expect(r.inFlightApplied + r.inFlightDropped + r.inFlightPartial).toBeGreaterThan(0);
}, 240_000);
