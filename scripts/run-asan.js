// Runs the native XTS tests against the ASan + UBSan build (build-asan/, made by `npm run build:asan`).
// Node itself is not instrumented, so the sanitizer runtimes are preloaded and leak checking (which would
// report Node's own allocations) is off; any memory error or undefined behaviour in the addon aborts the run.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const addon = `${root}build-asan/Release/vdcrypt.node`;
if (!existsSync(addon)) {
  console.error('run-asan: build-asan/Release/vdcrypt.node is missing; run `npm run build:asan` first');
  process.exit(1);
}
const runtime = (name) => execFileSync('g++', [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
const env = {
  ...process.env,
  LD_PRELOAD: [runtime('libasan.so'), runtime('libubsan.so')].join(' '),
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1',
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  VDCRYPT_ADDON: addon,
};
const vitest = fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url));
const result = spawnSync(process.execPath, [vitest, 'run', 'test/xts'], { cwd: root, env, stdio: 'inherit' });
process.exit(result.status ?? 1);
