// Pipeline suite (issue 5): import of a 1 GiB fixed VHD of random data into an encrypted page blob on the
// local store, against `qemu-img convert -O luks` and `cp` of the same file on the same disk in the same run,
// beside the disk's own durable ceiling for the same bytes (`dd oflag=direct conv=fdatasync`); and import of a
// 2 TiB dynamic VHD holding 64 MiB of data (time and peak RSS). Every import runs in a child process of its own
// (this file, `--child`), so its peak RSS is its own. Used by bench/run.js; needs the compiled library
// (`npx tsc -p tsconfig.build.json`).
//   node bench/pipeline.js [--quick]        prints the table
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ddSeconds, GiB, MiB, TiB, median, timed } from './util.js';

const SELF = fileURLToPath(import.meta.url);


/** A fixed VHD: `bytes` of random data followed by its footer. */
async function writeRandomFixedVhd(path, bytes) {
  const { encodeFooter } = await import('../dist/lib/vhd/index.js');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(4 * MiB);
  for (let off = 0; off < bytes; off += chunk.length) writeSync(fd, randomFillSync(chunk), 0, Math.min(chunk.length, bytes - off), off);
  writeSync(fd, encodeFooter({ diskType: 'fixed', virtualSize: bytes }), 0, 512, bytes);
  closeSync(fd);
}

/** A dynamic VHD of `size` bytes with `data` random bytes in 2 MiB pieces spread evenly over the disk. */
async function writeSparseDynamicVhd(path, size, data) {
  const { createImageWriter } = await import('../dist/lib/vhd/index.js');
  const writer = await createImageWriter(path, { format: 'dynamic', virtualSize: size });
  const piece = 2 * MiB;
  const pieces = data / piece;
  const stride = Math.floor(size / pieces / piece) * piece;
  const buf = Buffer.alloc(piece);
  for (let i = 0; i < pieces; i++) await writer.write(i * stride, randomFillSync(buf));
  await writer.finish();
}

/** Import `image` in a fresh child process; returns its figures. */
function importInChild(home, image, what = 'import') {
  execFileSync('sync'); // see timed()
  const started = process.hrtime.bigint();
  const out = execFileSync(process.execPath, [SELF, '--child', home, image, what], { encoding: 'utf8' });
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { ...JSON.parse(out.trim().split('\n').pop()), wallSeconds };
}

/**
 * Child: open a fresh home and store, create an encrypted account, import, report. With `what` = `fill-floor`,
 * instead write the same number of bytes straight to the store with one fillPages stream of 4 MiB extents (no
 * image, no encryption): the durable-write floor of LocalPageStore that an import cannot beat; `floor`, the
 * same as sequential 4 MiB writePages, each durable on its own (the floor before the bulk path).
 */
async function child(home, image, what) {
  const { AccountService } = await import('../dist/lib/account/index.js');
  const { PageBlobService } = await import('../dist/lib/blob/index.js');
  const { LocalPageStore } = await import('../dist/lib/store/index.js');
  const { importImage } = await import('../dist/lib/pipeline/index.js');
  const accounts = await AccountService.open(home, { env: {} });
  const store = await LocalPageStore.open(join(home, 'store'));
  const blobs = new PageBlobService(store, accounts);
  await accounts.createAccount('bench', { encryption: true });
  await blobs.createContainer('bench', 'disks');
  const ref = { account: 'bench', container: 'disks', blob: 'disk.vhd' };
  if (what === 'floor' || what === 'fill-floor') {
    const { statSync } = await import('node:fs');
    const bytes = statSync(image).size - 512;
    await blobs.createBlob(ref, bytes);
    const buf = randomFillSync(Buffer.alloc(4 * MiB));
    const t0 = process.hrtime.bigint();
    if (what === 'floor') {
      for (let off = 0; off < bytes; off += buf.length) await store.writePages(ref, off, buf.subarray(0, Math.min(buf.length, bytes - off)), 0);
    } else {
      // The bulk path, durable per 64 MiB batch (the store's default), fed the way the import reader feeds it:
      // a few reused page-aligned 4 MiB buffers, each taken back when the store releases it.
      const { AlignedBufferPool } = await import('../dist/lib/xts/index.js');
      const pool = new AlignedBufferPool(4 * MiB, 8);
      async function* extents() {
        for (let off = 0; off < bytes; off += buf.length) {
          const data = pool.take(Math.min(buf.length, bytes - off));
          buf.copy(data, 0, 0, data.length);
          yield { offset: off, data, tag: 0, release: () => pool.give(data) };
        }
      }
      await store.fillPages(ref, extents());
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await store.close();
    await accounts.close();
    process.stdout.write(`${JSON.stringify({ seconds, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
    return;
  }
  const t = process.hrtime.bigint();
  const result = await importImage(blobs, image, ref);
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  const status = await blobs.getEncryptionStatus(ref);
  await store.close();
  await accounts.close();
  process.stdout.write(`${JSON.stringify({
    seconds, bytesWritten: result.bytesWritten, bytesSkipped: result.bytesSkipped, serverEncrypted: status.serverEncrypted,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
  })}\n`);
}

export async function runPipelineSuite({ quick = false, log = () => {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'vdcrypt-bench-pipeline-'));
  try {
    const bytes = quick ? 256 * MiB : GiB;
    // cp's time swings several-fold here (page-cache memory that the host has taken back must be faulted in
    // again), so the full run takes the median of 5.
    const runs = quick ? 1 : 5;
    const fixed = join(dir, 'fixed.vhd');
    log(`pipeline suite: writing a ${bytes / MiB} MiB fixed VHD of random data…`);
    await writeRandomFixedVhd(fixed, bytes);

    const cpTimes = [];
    const cpSyncTimes = [];
    const ddDirectTimes = [];
    const luksTimes = [];
    const ours = [];
    const floors = [];
    const fillFloors = [];
    for (let r = 0; r < runs; r++) {
      log(`pipeline suite: run ${r + 1}/${runs}: cp, qemu-img convert -O luks, vdcrypt import…`);
      cpTimes.push(timed(() => execFileSync('cp', [fixed, join(dir, 'copy.vhd')])));
      rmSync(join(dir, 'copy.vhd'), { force: true });
      cpSyncTimes.push(timed(() => execFileSync('sh', ['-c', 'cp "$1" "$2" && sync "$2"', 'cp', fixed, join(dir, 'copy.vhd')])));
      rmSync(join(dir, 'copy.vhd'), { force: true });
      // The disk's durable ceiling for the same bytes.
      ddDirectTimes.push(ddSeconds(fixed, join(dir, 'dd.raw'), bytes, { direct: true }));
      try {
        // iter-time=10: a 10 ms PBKDF instead of qemu's default 2 s, so the figure is the conversion itself.
        luksTimes.push(timed(() => execFileSync('qemu-img', ['convert', '-f', 'vpc', '-O', 'luks',
          '--object', 'secret,id=s0,data=x', '-o', 'key-secret=s0,cipher-alg=aes-256,cipher-mode=xts,ivgen-alg=plain64,iter-time=10',
          fixed, join(dir, 'out.luks')], { stdio: 'ignore' })));
      } catch {
        log('pipeline suite: qemu-img failed or is missing; its column is left out');
      }
      rmSync(join(dir, 'out.luks'), { force: true });
      const home = join(dir, `import-${r}`);
      ours.push(importInChild(home, fixed));
      rmSync(home, { recursive: true, force: true });
      floors.push(importInChild(home, fixed, 'floor'));
      rmSync(home, { recursive: true, force: true });
      fillFloors.push(importInChild(home, fixed, 'fill-floor'));
      rmSync(home, { recursive: true, force: true });
    }
    rmSync(fixed, { force: true });
    const cp = median(cpTimes);
    const cpSync = median(cpSyncTimes);
    const ddDirect = median(ddDirectTimes);
    const luks = luksTimes.length > 0 ? median(luksTimes) : undefined;
    const imp = median(ours.map((o) => o.seconds));
    const impWall = median(ours.map((o) => o.wallSeconds));
    const floor = median(floors.map((o) => o.seconds));
    const fillFloor = median(fillFloors.map((o) => o.seconds));

    const sparseSize = 2 * TiB;
    const sparseData = 64 * MiB;
    const dynamic = join(dir, 'sparse.vhd');
    log('pipeline suite: writing a 2 TiB dynamic VHD holding 64 MiB…');
    await writeSparseDynamicVhd(dynamic, sparseSize, sparseData);
    const sparseRuns = [];
    for (let r = 0; r < runs; r++) {
      log(`pipeline suite: sparse import ${r + 1}/${runs}…`);
      const home = join(dir, `sparse-${r}`);
      sparseRuns.push(importInChild(home, dynamic));
      rmSync(home, { recursive: true, force: true });
    }
    const sparse = median(sparseRuns.map((o) => o.seconds));
    const sparseRss = Math.max(...sparseRuns.map((o) => o.maxRssBytes));
    const fixedRss = Math.max(...ours.map((o) => o.maxRssBytes));

    const fmt = (n, d = 2) => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(d));
    const check = (ok) => (ok ? 'met' : '**missed**');
    const gbps = (t) => bytes / t / 1e9;
    const rows = [
      { case: `import ${bytes / MiB} MiB fixed VHD → encrypted blob (LocalPageStore)`, seconds: imp, gbps: gbps(imp) },
      { case: 'the same, child process wall time (node start, account set-up)', seconds: impWall, gbps: gbps(impWall) },
      { case: 'floor: the same bytes as store.fillPages (4 MiB reused extents, durable per 64 MiB batch), plaintext, no pipeline', seconds: fillFloor, gbps: gbps(fillFloor) },
      { case: 'floor before the bulk path: sequential 4 MiB store.writePages, each durable on its own', seconds: floor, gbps: gbps(floor) },
      { case: '`qemu-img convert -f vpc -O luks` (aes-256 xts plain64, iter-time=10)', seconds: luks, gbps: luks === undefined ? undefined : gbps(luks) },
      { case: '`cp` of the same file', seconds: cp, gbps: gbps(cp) },
      { case: '`cp` then `sync` of the copy (a durable copy; reference only)', seconds: cpSync, gbps: gbps(cpSync) },
      { case: '`dd bs=4M oflag=direct conv=fdatasync` of the same bytes (the disk\'s durable ceiling)', seconds: ddDirect, gbps: gbps(ddDirect) },
      { case: 'import 2 TiB dynamic VHD holding 64 MiB', seconds: sparse, gbps: sparseData / sparse / 1e9, maxRssBytes: sparseRss },
    ];
    const vsLuks = luks === undefined ? undefined : luks / imp;
    const vsCp = cp / imp;
    const targets = [
      ['import vs `qemu-img convert -O luks`', `${fmt(vsLuks)}x`, '>= 5x', vsLuks === undefined ? 'not measured' : check(vsLuks >= 5)],
      ['import vs `cp`', `${fmt(vsCp)}x`, '>= 0.5x', check(vsCp >= 0.5)],
      ['the disk\'s durable ceiling (dd above) vs `cp`: the most a durable import could reach', `${fmt(cp / ddDirect)}x`, '(reference)', ''],
      ['2 TiB dynamic / 64 MiB import time', `${fmt(sparse, 3)} s`, '< 2 s', check(sparse < 2)],
      ['2 TiB dynamic / 64 MiB import peak RSS (whole child process)', `${fmt(sparseRss / MiB, 0)} MiB`, '< 200 MiB', check(sparseRss < 200 * MiB)],
      [`${bytes / MiB} MiB fixed import peak RSS (whole child process)`, `${fmt(fixedRss / MiB, 0)} MiB`, '—', ''],
    ];
    const markdown = [
      `Medians of ${runs} run(s) in one temporary directory on the same disk; page cache not dropped (the source is warm ` +
      'for every tool), with a `sync` (not timed) before each tool so none pays for the writeback of another. The import is timed inside its child process (store and account already open) and is durable ' +
      '(PageBlobService.fillPages: an fdatasync, a SQLite commit and a checkpoint per 256 MiB batch, not per 4 MiB Put Page; ' +
      'the image is read into a few reused buffers, the ciphertext written from a few others with O_DIRECT); `cp` does not sync. Peak RSS: `process.resourceUsage().maxRSS` ' +
      'of the child, node itself included.',
      '',
      '| case | seconds | GB/s |',
      '|---|---:|---:|',
      ...rows.map((r) => `| ${r.case} | ${fmt(r.seconds, 3)} | ${fmt(r.gbps)} |`),
      '',
      '| target | measured | goal | |',
      '|---|---:|---|---|',
      ...targets.map((t) => `| ${t.join(' | ')} |`),
    ].join('\n');
    return { rows, markdown, targets, cp, cpSync, ddDirect, luks, import: imp, floor, fillFloor, sparse, sparseRss, fixedRss };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === SELF) {
  if (process.argv[2] === '--child') {
    await child(process.argv[3], process.argv[4], process.argv[5]);
  } else {
    const quick = process.argv.includes('--quick');
    const { markdown } = await runPipelineSuite({ quick, log: (line) => process.stderr.write(`${line}\n`) });
    process.stdout.write(`${markdown}\n`);
  }
}
