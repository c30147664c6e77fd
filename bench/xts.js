// XTS engine suite: our implementations against node:crypto, `openssl speed` and a C program calling OpenSSL's
// EVP once per sector, all measured in the same run. Used by bench/run.js; prints nothing itself.
import { execFileSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { Bench } from 'tinybench';

import { availableImplementations, XtsCipher } from '../dist/lib/index.js';
import { native } from '../dist/lib/xts/native.js';

const SECTOR = 512;
const BIG_SECTOR = 4096;
const IN_CACHE_BYTES = 256 * 1024;
const STREAM_BYTES = 64 * 1024 * 1024;
const OUT_DIR = fileURLToPath(new URL('./out/', import.meta.url));

function xtsKey() {
  for (;;) {
    const key = randomBytes(64);
    if (!key.subarray(0, 32).equals(key.subarray(32))) return key;
  }
}

/** `openssl speed -elapsed -evp aes-256-xts -bytes N`, in GB/s. */
function opensslSpeed(bytes, seconds) {
  const out = execFileSync('openssl', ['speed', '-elapsed', '-seconds', String(seconds), '-evp', 'aes-256-xts',
    '-bytes', String(bytes)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const line = out.trim().split('\n').pop() ?? '';
  const m = /([\d.]+)k\s*$/.exec(line);
  if (m === null) throw new Error(`cannot parse openssl speed output: ${line}`);
  return (Number(m[1]) * 1000) / 1e9;
}

/** A careful C user: OpenSSL EVP, context reused, the IV (sector number) set and one update per sector. */
function evpPerSector() {
  const src = fileURLToPath(new URL('./peers/evp_per_sector.c', import.meta.url));
  const bin = `${OUT_DIR}evp_per_sector`;
  mkdirSync(OUT_DIR, { recursive: true });
  try {
    if (!existsSync(bin)) execFileSync('cc', ['-O2', '-o', bin, src, '-lcrypto'], { stdio: 'ignore' });
    return Number(execFileSync(bin, ['1'], { encoding: 'utf8' }).trim());
  } catch {
    return undefined; // no compiler or no libssl-dev headers: the row is left out
  }
}

/** Median GB/s of a task that processes `bytes` per iteration. */
function gbps(task, bytes) {
  const r = task.result;
  if (r.state !== 'completed') throw new Error(`benchmark task ${task.name} ${r.state}: ${r.error ?? ''}`);
  return bytes / (r.latency.p50 * 1e6);
}

export async function runXtsSuite({ quick = false, log = () => {} } = {}) {
  const time = quick ? 100 : 400;
  const bench = new Bench({ time, warmupTime: quick ? 20 : 100, throws: true });
  const rows = [];
  const add = (group, name, impl, bytes, fn, extra = {}) => {
    bench.add(`${impl}: ${name}`, fn);
    rows.push({ group, name, impl, bytes, ...extra });
  };
  const key = xtsKey();
  const cache = randomBytes(IN_CACHE_BYTES);
  const stream = randomBytes(STREAM_BYTES);
  const impls = availableImplementations();
  const best = impls[0];

  for (const impl of impls) {
    for (const dir of ['encrypt', 'decrypt']) {
      const x = new XtsCipher(key, { impl });
      const big = new XtsCipher(key, { impl, sectorSize: BIG_SECTOR });
      for (const batch of [1, 8, 64, 512]) {
        const step = batch * SECTOR;
        const views = [];
        for (let off = 0; off < IN_CACHE_BYTES; off += step) views.push(cache.subarray(off, off + step));
        const call = dir === 'encrypt' ? (v, s) => x.encrypt(v, s, v) : (v, s) => x.decrypt(v, s, v);
        add('in-cache', `${dir} 512 B x ${batch}/call`, impl, IN_CACHE_BYTES, () => {
          for (let i = 0; i < views.length; i++) call(views[i], i * batch);
        }, { dir, batch, sectorSize: SECTOR });
      }
      add('in-cache', `${dir} 4096 B x 64/call`, impl, IN_CACHE_BYTES, () => {
        big[dir](cache, 0, cache);
      }, { dir, batch: 64, sectorSize: BIG_SECTOR });
      const chunk = 2048 * SECTOR;
      add('streaming', `${dir} 512 B x 2048/call, 64 MiB`, impl, STREAM_BYTES, () => {
        for (let off = 0; off < STREAM_BYTES; off += chunk) {
          const v = stream.subarray(off, off + chunk);
          x[dir](v, off / SECTOR, v);
        }
      }, { dir, batch: 2048, sectorSize: SECTOR });
    }
  }

  // Async on all cores, in cache: repeated calls on one 1 MiB buffer (it fits one core's L2), each async call
  // split across the pool, against the same calls made synchronously on one core. Also chains of 256 KiB
  // calls (one pool job each, several in flight), where the per-job hand-off cost shows. Streaming: one
  // 64 MiB call split across the pool.
  const cores = native.parallelism();
  const x = new XtsCipher(key, { impl: best });
  const mib = randomBytes(1024 * 1024);
  const mibRounds = 32;
  add('async', 'encrypt 1 MiB calls, sync (1 core)', best, mib.length * mibRounds, () => {
    for (let r = 0; r < mibRounds; r++) x.encrypt(mib, r * 2048, mib);
  }, { dir: 'encrypt', mode: 'sync-mib' });
  add('async', `encrypt 1 MiB calls, async (${cores} cores)`, best, mib.length * mibRounds, async () => {
    for (let r = 0; r < mibRounds; r++) await x.encryptAsync(mib, r * 2048, mib);
  }, { dir: 'encrypt', mode: 'async-mib' });
  const chains = 2 * cores;
  const own = Array.from({ length: chains }, () => randomBytes(IN_CACHE_BYTES));
  const rounds = 16;
  const manyBytes = IN_CACHE_BYTES * chains * rounds;
  add('async', `encrypt 256 KiB calls, ${chains} buffers, sync (1 core)`, best, manyBytes, () => {
    for (let r = 0; r < rounds; r++) for (const b of own) x.encrypt(b, 0, b);
  }, { dir: 'encrypt', mode: 'sync-many' });
  add('async', `encrypt 256 KiB calls, ${chains} chains in flight, async (${cores} cores)`, best, manyBytes,
    async () => {
      await Promise.all(own.map(async (b) => {
        for (let r = 0; r < rounds; r++) await x.encryptAsync(b, 0, b);
      }));
    }, { dir: 'encrypt', mode: 'async-many' });
  add('async', `encrypt 64 MiB in one async call (${cores} cores)`, best, STREAM_BYTES, async () => {
    await x.encryptAsync(stream, 0, stream);
  }, { dir: 'encrypt', mode: 'async-stream' });

  // Peers in the same process.
  const perSector = cache.subarray(0, 64 * SECTOR);
  const iv = Buffer.alloc(16);
  add('peer', 'node:crypto createCipheriv per 512 B sector', 'node:crypto', perSector.length, () => {
    for (let i = 0; i < 64; i++) {
      iv.writeBigUInt64LE(BigInt(i));
      const c = createCipheriv('aes-256-xts', key, iv);
      c.update(perSector.subarray(i * SECTOR, (i + 1) * SECTOR));
      c.final();
    }
  }, { peer: true });
  const oneMiB = stream.subarray(0, 1024 * 1024);
  add('peer', 'node:crypto one 1 MiB buffer (one data unit)', 'node:crypto', oneMiB.length, () => {
    const c = createCipheriv('aes-256-xts', key, iv);
    c.update(oneMiB);
    c.final();
  }, { peer: true });

  log('running the XTS suite (tinybench)…');
  await bench.run();
  for (const [i, task] of bench.tasks.entries()) {
    const row = rows[i];
    row.gbps = gbps(task, row.bytes);
  }
  log('running openssl speed and the EVP per-sector peer…');
  const seconds = quick ? 1 : 3;
  const openssl512 = opensslSpeed(512, seconds);
  const openssl16k = opensslSpeed(16384, seconds);
  const evp = evpPerSector();
  rows.push({ group: 'peer', name: 'openssl speed -evp aes-256-xts -bytes 512', impl: 'openssl', gbps: openssl512, peer: true });
  rows.push({ group: 'peer', name: 'openssl speed -evp aes-256-xts -bytes 16384', impl: 'openssl', gbps: openssl16k, peer: true });
  if (evp !== undefined) {
    rows.push({ group: 'peer', name: 'OpenSSL EVP from C, IV set + one update per 512 B sector', impl: 'openssl', gbps: evp, peer: true });
  }
  return { rows, openssl512, openssl16k, evp, best, cores, clockGhz: native.measureClockGhz() };
}
