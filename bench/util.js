// Helpers shared by the benchmark suites.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;
export const TiB = 1024 ** 4;

/** The median: the middle value, or the mean of the two middle values of an even count. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
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

/**
 * Seconds for `dd` to write `bytes` from `input` to `output` in 4 MiB blocks with one fdatasync at the end
 * (`direct`: past the page cache, as vdcrypt's fills write), after an untimed `sync`; the output is removed.
 * The disk's own durable ceiling, beside which the suites put `cp` and vdcrypt.
 */
export function ddSeconds(input, output, bytes, { direct = false } = {}) {
  const seconds = timed(() => execFileSync('dd', [`if=${input}`, `of=${output}`, 'bs=4M', `count=${bytes / (4 * MiB)}`,
    ...(direct ? ['oflag=direct'] : []), 'conv=fdatasync'], { stdio: 'ignore' }));
  rmSync(output, { force: true });
  return seconds;
}
