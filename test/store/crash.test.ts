/**
 * The crash suite, bounded for `npm test`: >= 50 SIGKILL cycles of a child process writing to a LocalPageStore
 * (bulk fills included), then a fault-injection run under fiu-run (fdatasync/fsync/pwrite failing at random inside the child's libc).
 * The long run is `VDCRYPT_CRASH_CYCLES=500 node scripts/crash-store.mjs`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

import { beforeAll, describe, expect, it } from 'vitest';

import { runCrashSuite } from '../../scripts/crash-store.mjs';
import { ensureDist } from '../support/dist.js';

const CYCLES = Number(process.env.VDCRYPT_CRASH_TEST_CYCLES ?? 50);
const HAVE_FIU = spawnSync('fiu-run', ['-h'], { stdio: 'ignore' }).error === undefined;

describe('LocalPageStore crash suite', () => {
  beforeAll(() => {
    ensureDist(); // the child is a plain node process: it needs the compiled store
    expect(existsSync('dist/lib/store/index.js')).toBe(true);
  }, 180_000);

  it(`${CYCLES} kill -9 cycles: acknowledged writes survive, in-flight ones are all-or-nothing, no torn pages`, async () => {
    const r = await runCrashSuite({ cycles: CYCLES, maxKillMs: 250 });
    expect(r.violations).toEqual([]);
    expect(r.acked).toBeGreaterThan(CYCLES);
    expect(r.inFlightApplied + r.inFlightDropped).toBeGreaterThan(0);
    // Bulk fills ran, with batches acknowledged one by one (a fill cut by a kill is checked against them).
    expect(r.fillsAcked).toBeGreaterThan(0);
    expect(r.fillBatchesAcked).toBeGreaterThan(r.fillsAcked);
  }, 180_000);

  it.skipIf(!HAVE_FIU)('fsync / write failures (fiu-run) surface as rejections and lose nothing acknowledged', async () => {
    const r = await runCrashSuite({ cycles: 15, fiu: true, maxKillMs: 250 });
    expect(r.violations).toEqual([]);
    expect(r.failures).toBeGreaterThan(0); // the preload really reached Node's fdatasync/pwrite
    // Every failure is followed by refusals (a wrong answer is a violation above), unless the child was killed
    // before its next call: so at least one refusal, never more than failures.
    expect(r.refusedAfterFailure).toBeGreaterThan(0);
    expect(r.refusedAfterFailure).toBeLessThanOrEqual(r.failures);
  }, 120_000);
});
