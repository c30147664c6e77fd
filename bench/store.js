// Store suite: page blobs on the embedded local store (lib/store LocalPageStore + lib/blob), against `cp` and
// `qemu-img convert -O luks` of the same bytes on the same disk, plus durable random 4 KiB writes with
// encryption on and off, and the peak RSS of a long sequential fill. Used by bench/run.js.
import { execFileSync } from 'node:child_process';
import { randomBytes, randomFillSync } from 'node:crypto';
import { mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { AccountService } from '../dist/lib/account/index.js';
import { PageBlobService } from '../dist/lib/blob/index.js';
import { LocalPageStore } from '../dist/lib/store/index.js';
import { ddSeconds, GiB, MiB, median, timed } from './util.js';

const FILL_CHILD = fileURLToPath(new URL('./store-fill.js', import.meta.url));


function writeRandomFile(path, bytes) {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(4 * MiB);
  for (let off = 0; off < bytes; off += chunk.length) writeSync(fd, randomFillSync(chunk), 0, Math.min(chunk.length, bytes - off));
  closeSync(fd);
}

/** Fill a new blob in a child process: `path` 'fill' (PageBlobService.fillPages) or 'put' (4 MiB putPages × 4). */
function fill(home, bytes, encrypt, path = 'fill') {
  execFileSync('sync'); // see timed()
  const out = execFileSync(process.execPath, [FILL_CHILD, home, String(bytes), encrypt ? '1' : '0', '4', path], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop());
}

/** Random 4 KiB put-pages, one at a time (each durable before the next), for `seconds`. */
async function randomWrites(dir, encrypt, seconds) {
  const accounts = await AccountService.open(join(dir, `home-${encrypt}`), { env: {} });
  const store = await LocalPageStore.open(join(dir, `home-${encrypt}`, 'store'));
  const blobs = new PageBlobService(store, accounts);
  await accounts.createAccount('rnd', { encryption: encrypt });
  await blobs.createContainer('rnd', 'c');
  const ref = { account: 'rnd', container: 'c', blob: 'disk' };
  const size = 256 * MiB;
  await blobs.createBlob(ref, size);
  const data = randomBytes(4096);
  let ops = 0;
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const started = process.hrtime.bigint();
  while (process.hrtime.bigint() < end) {
    const page = Math.floor(Math.random() * (size / 4096)) * 4096;
    await blobs.putPages(ref, page, data);
    ops++;
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  await store.close();
  await accounts.close();
  return ops / elapsed;
}

export async function runStoreSuite({ quick = false, log = () => {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'vdcrypt-bench-store-'));
  try {
    const bytes = quick ? 256 * MiB : GiB;
    // cp's time swings several-fold here (page-cache memory that the host has taken back must be faulted in
    // again), so the full run takes the median of 5.
    const runs = quick ? 1 : 5;
    const source = join(dir, 'source.raw');
    log(`store suite: writing a ${bytes / MiB} MiB random source file…`);
    writeRandomFile(source, bytes);
    const ddTimes = [];
    const ddDirectTimes = [];
    const cpTimes = [];
    const luksTimes = [];
    const ourTimes = [];
    const putTimes = [];
    for (let r = 0; r < runs; r++) {
      log(`store suite: run ${r + 1}/${runs}: cp, qemu-img convert -O luks, vdcrypt fill (bulk, then per call)…`);
      cpTimes.push(timed(() => execFileSync('cp', [source, join(dir, 'copy.raw')])));
      rmSync(join(dir, 'copy.raw'), { force: true });
      // The disk's own ceiling for durable sequential writes, through the page cache and past it.
      ddTimes.push(ddSeconds('/dev/zero', join(dir, 'dd.raw'), bytes));
      ddDirectTimes.push(ddSeconds('/dev/zero', join(dir, 'dd.raw'), bytes, { direct: true }));
      try {
        luksTimes.push(timed(() => execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'luks',
          '--object', 'secret,id=sec0,data=benchmark', '-o', 'key-secret=sec0,cipher-alg=aes-256,cipher-mode=xts,ivgen-alg=plain64,iter-time=10',
          source, join(dir, 'out.luks')], { stdio: 'ignore' })));
      } catch {
        log('store suite: qemu-img is not installed; its column is left out');
      }
      rmSync(join(dir, 'out.luks'), { force: true });
      const home = join(dir, `fill-${r}`);
      // Alternate which path goes first: the disk (a cloud volume here) slows down after a burst.
      for (const path of r % 2 === 0 ? ['fill', 'put'] : ['put', 'fill']) {
        (path === 'fill' ? ourTimes : putTimes).push(fill(home, bytes, true, path).seconds);
        rmSync(home, { recursive: true, force: true });
      }
    }
    const gbps = (t) => bytes / t / 1e9;
    const cp = gbps(median(cpTimes));
    const dd = gbps(median(ddTimes));
    const ddDirect = gbps(median(ddDirectTimes));
    const luks = luksTimes.length > 0 ? gbps(median(luksTimes)) : undefined;
    const ours = gbps(median(ourTimes));
    const oursPut = gbps(median(putTimes));

    log('store suite: durable random 4 KiB writes, encryption on and off…');
    const seconds = quick ? 2 : 5;
    const opsOn = await randomWrites(dir, true, seconds);
    const opsOff = await randomWrites(dir, false, seconds);

    const rssBytes = quick ? GiB : 8 * GiB;
    log(`store suite: peak RSS while writing ${rssBytes / GiB} GiB…`);
    const rssHome = join(dir, 'rss');
    const rss = fill(rssHome, rssBytes, true);
    rmSync(rssHome, { recursive: true, force: true });

    const fmt = (n, d = 2) => (n === undefined ? '—' : n.toFixed(d));
    const rows = [
      ['sequential fill of a new blob, encryption on, fillPages (4 MiB reused extents, O_DIRECT, durable per 64 MiB batch)', `${fmt(ours)} GB/s`,
        `${fmt(ours / cp)}x cp (goal >= 0.5x)`, luks === undefined ? '—' : `${fmt(ours / luks)}x qemu-img luks (goal >= 5x)`],
      ['the same as 4 MiB put-pages, 4 in flight, each durable on its own', `${fmt(oursPut)} GB/s`, `${fmt(oursPut / cp)}x cp`,
        luks === undefined ? '—' : `${fmt(oursPut / luks)}x qemu-img luks`],
      ['`cp` of the same file', `${fmt(cp)} GB/s`, '', ''],
      ['`dd bs=4M conv=fdatasync` (the disk\'s durable ceiling: one sync at the end)', `${fmt(dd)} GB/s`,
        `fill = ${fmt(ours / dd)}x of it`, `itself ${fmt(dd / cp)}x cp`],
      ['`dd bs=4M oflag=direct conv=fdatasync` (the same past the page cache)', `${fmt(ddDirect)} GB/s`,
        `fill = ${fmt(ours / ddDirect)}x of it`, `itself ${fmt(ddDirect / cp)}x cp`],
      ['`qemu-img convert -O luks` (aes-256 xts plain64)', luks === undefined ? '—' : `${fmt(luks)} GB/s`, '', ''],
      ['random 4 KiB put-pages, durable, encryption on', `${fmt(opsOn, 0)} ops/s`, `${fmt(opsOn / opsOff)}x of encryption off`, ''],
      ['random 4 KiB put-pages, durable, encryption off', `${fmt(opsOff, 0)} ops/s`, '', ''],
      [`peak RSS writing ${rssBytes / GiB} GiB sequentially (fillPages)`, `${fmt(rss.maxRssBytes / MiB, 0)} MiB`, 'goal < 200 MiB',
        `${fmt(rssBytes / rss.seconds / 1e9)} GB/s`],
    ];
    const markdown = [
      `Sequential figures are medians of ${runs} run(s) of ${bytes / MiB} MiB on the same disk, each tool in turn within a run after a \`sync\` (page cache not dropped; cp and qemu-img do not fsync their output, vdcrypt does). No durable write beats the disk's own durable ceiling, so the dd rows' ratio to cp is the most any durable fill could reach in this run.`,
      '',
      '| case | measured | ratio | ratio |',
      '|---|---:|---|---|',
      ...rows.map((r) => `| ${r.join(' | ')} |`),
    ].join('\n');
    return { markdown, cp, dd, ddDirect, luks, ours, oursPut, opsOn, opsOff, rss };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
