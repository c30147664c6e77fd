// Helpers shared by the benchmark suites.
import { execFileSync } from 'node:child_process';

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;
export const TiB = 1024 ** 4;

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Time `fn` after a `sync` (not timed): cp and qemu-img leave their output dirty in the page cache, and its
 * writeback must not land in the next tool's time.
 */
export function timed(fn) {
  execFileSync('sync');
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}
