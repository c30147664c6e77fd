// `npm run bench:upload-ab [-- --rounds N] [-- --mib N]`: the long A/B behind issue 7's upload figure.
//
// One upload of `--mib` MiB of random data (default 1024) with the plain SDK (4 MiB Put Pages, 8 in flight, no
// checksum) and one through vdcrypt (sealExtents → uploadExtents: XTS, CRC64 per request, state blob) in each
// of `--rounds` rounds (default 30), each upload on a fresh Azurite after an untimed `sync` (bench/remote.js
// withServer and measureUpload, as in `npm run bench`), the order alternating from round to round. Prints every
// upload (wall time, client CPU, its main thread's, Azurite's) and then the median, quartiles and mean of the
// per-round ratios, plain time over vdcrypt time (the goal: >= 0.95), and the ratio of the median
// times. Single runs of ten rounds swing by several percent on a shared 2-core machine; thirty rounds narrow
// the median to about ±1.5%. About 5 s a round (2.5 minutes for 30 on the 2-core bench machine). Writes
// nothing; not a test.
import { randomBytes } from 'node:crypto';

import { sealExtents } from '../dist/lib/remote/index.js';
import { ACCOUNT, CHUNK, CONCURRENCY, extentsOf, measureUpload, plainUpload, withServer } from './remote.js';
import { MiB, median } from './util.js';

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`--${name} takes a whole number >= 1, got ${process.argv[i + 1]}`);
  return value;
}

/** The value below which a fraction `q` of the sorted values `s` lie (linear between neighbours). */
function quantile(s, q) {
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (at - lo);
}

const rounds = option('rounds', 30);
const bytes = option('mib', 1024) * MiB;
if (bytes % CHUNK !== 0) throw new RangeError(`--mib must be a multiple of ${CHUNK / MiB}`);
const data = randomBytes(bytes);
const times = { plain: [], vdcrypt: [] };
const fmt = (x, d = 2) => (x === undefined ? '—' : x.toFixed(d));

for (let round = 0; round < rounds; round++) {
  for (const kind of round % 2 === 0 ? ['plain', 'vdcrypt'] : ['vdcrypt', 'plain']) {
    const m = await withServer(async ({ store, blobs, container, azurite }) => {
      if (kind === 'plain') {
        const blob = container.getPageBlobClient('disk.vhd');
        await blob.create(bytes);
        return measureUpload(azurite, () => plainUpload(blob, data, false));
      }
      const ref = { account: ACCOUNT, container: 'bench', blob: 'disk.vhd' };
      await store.createBlob(ref, bytes);
      return measureUpload(azurite, () => store.uploadExtents(ref, sealExtents(blobs, ACCOUNT, extentsOf(data)), { concurrency: CONCURRENCY }));
    });
    times[kind].push(m.seconds);
    console.log(`round ${String(round + 1).padStart(2)} ${kind.padEnd(7)} ${fmt(m.seconds, 3)} s  client CPU ${fmt(m.client)} s ` +
      `(main thread ${fmt(m.clientMain)})  Azurite CPU ${fmt(m.server)} s`);
  }
}

const ratios = times.plain.map((t, i) => t / times.vdcrypt[i]).sort((a, b) => a - b);
const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
console.log(`\n${rounds} rounds of ${bytes / MiB} MiB: plain / vdcrypt per round: median ${fmt(median(ratios), 3)}x, quartiles ` +
  `${fmt(quantile(ratios, 0.25), 3)}x and ${fmt(quantile(ratios, 0.75), 3)}x, mean ${fmt(mean, 3)}x, range ` +
  `${fmt(ratios[0], 3)}-${fmt(ratios[ratios.length - 1], 3)}x; ratio of the median times ${fmt(median(times.plain) / median(times.vdcrypt), 3)}x ` +
  `(${fmt(median(times.plain), 3)} s against ${fmt(median(times.vdcrypt), 3)} s); goal >= 0.95x`);
