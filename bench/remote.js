// Azure backend suite (issue 7), against a local Azurite started here (127.0.0.1, a free port, a temporary
// location removed afterwards). Used by bench/run.js, and its server and upload helpers by bench/upload-ab.js;
// prints nothing itself.
//
// 1. Upload of random data encrypted through vdcrypt (sealExtents → AzurePageStore.uploadExtents: XTS, CRC64
//    per request, write-ahead state blob) vs a plain SDK page upload of the same bytes (uploadPages in 4 MiB
//    chunks, same concurrency, without a checksum: the target; with Content-MD5: a reference). A fourth kind,
//    also a reference, is vdcrypt's upload of extents sealed before the timer starts: the same requests, state
//    writes and CRC64s without the XTS pass, so the two vdcrypt rows split the gap into what the upload path
//    costs and what the encryption's CPU costs. vdcrypt's ciphertext buffers are shared by the uploads of a
//    process (lib/remote/cipher-pool.ts), so a fifth kind, also a reference, is the vdcrypt upload with that
//    pool emptied first: what the first upload of a process (a one-shot CLI import) pays. Rounds rotate the
//    order (ten rounds: each kind twice in each position), each upload after an untimed `sync`; the ratios are
//    medians of per-round ratios. Each upload also reports the CPU seconds of the client and of Azurite, which
//    share the machine's cores.
// 2. A 2 TiB sparse disk holding 64 MiB of data (plus 64 MiB of explicit zeros): bytes sent and skipped.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, Socket } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { BlobServiceClient } from '@azure/storage-blob';

import { AccountService } from '../dist/lib/account/index.js';
import { PageBlobService } from '../dist/lib/blob/index.js';
import { AzurePageStore, sealExtents, sharedCipherPool } from '../dist/lib/remote/index.js';
import { GiB, MiB, TiB, median } from './util.js';

export const CHUNK = 4 * MiB;
export const CONCURRENCY = 8;
const HOST = '127.0.0.1';
export const ACCOUNT = 'acct';
const KEY = Buffer.alloc(64, 7).toString('base64');
const CLOCK_TICKS = 100; // USER_HZ of /proc/<pid>/stat on Linux

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function answers(port) {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
    s.connect(port, HOST);
  });
}

async function startAzurite() {
  const location = mkdtempSync(join(tmpdir(), 'vdcrypt-bench-azurite-'));
  const port = await freePort();
  const main = join(dirname(createRequire(import.meta.url).resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
  const child = spawn(process.execPath, [main, '--blobHost', HOST, '--blobPort', String(port), '--location', location,
    '--silent', '--skipApiVersionCheck', '--loose', '--disableProductStyleUrl', '--disableTelemetry'], {
    env: { ...process.env, AZURITE_ACCOUNTS: `${ACCOUNT}:${KEY}` }, stdio: 'ignore',
  });
  const kill = () => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } };
  process.once('exit', kill);
  const deadline = Date.now() + 30_000;
  while (!(await answers(port))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('azurite did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    /** CPU seconds Azurite has used so far (Linux /proc; undefined elsewhere). */
    cpuSeconds: () => processCpuSeconds(child.pid),
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};BlobEndpoint=http://${HOST}:${port}/${ACCOUNT};`,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      kill();
      await exited;
      process.removeListener('exit', kill);
      rmSync(location, { recursive: true, force: true });
    },
  };
}

/**
 * CPU seconds (user + system) a process has used, from /proc/<pid>/stat (`pid` may also be `<pid>/task/<tid>`: one
 * thread); undefined where that is missing.
 */
function processCpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** The plain SDK upload: 4 MiB Put Pages, `CONCURRENCY` in flight. */
export async function plainUpload(client, data, md5) {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const at = next;
      next += CHUNK;
      if (at >= data.length) return;
      const body = data.subarray(at, at + CHUNK);
      await client.uploadPages(body, at, body.length,
        md5 ? { transactionalContentMD5: createHash('md5').update(body).digest() } : {});
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

export function* extentsOf(data, base = 0) {
  for (let at = 0; at < data.length; at += CHUNK) yield { offset: base + at, data: data.subarray(at, at + CHUNK) };
}

const fmt = (x, d = 2) => x.toFixed(d);

/**
 * A fresh Azurite with the bench account and container, and vdcrypt's store on it, for `fn`; torn down after.
 * Every upload gets its own: Azurite slows down as its files grow and its extent GC runs in the background,
 * which made ratios between uploads on one long-lived server swing from 0.5x to 1.0x.
 */
export async function withServer(fn) {
  const azurite = await startAzurite();
  const home = mkdtempSync(join(tmpdir(), 'vdcrypt-bench-home-'));
  const accounts = await AccountService.open(home, { env: {} });
  const retry = { maxTries: 5, retryDelayInMs: 200, maxRetryDelayInMs: 2000 };
  const store = new AzurePageStore({ accounts: { [ACCOUNT]: { connectionString: azurite.connectionString } }, retry });
  const blobs = new PageBlobService(store, accounts);
  const svc = BlobServiceClient.fromConnectionString(azurite.connectionString, { retryOptions: retry });
  try {
    await accounts.createAccount(ACCOUNT, { region: 'westus' });
    await blobs.createContainer(ACCOUNT, 'bench');
    return await fn({ store, blobs, container: svc.getContainerClient('bench'), azurite });
  } finally {
    await store.close();
    await accounts.close();
    await azurite.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

/**
 * Time one upload on `azurite` (from withServer) after an untimed `sync`: its wall time, and the CPU seconds of
 * this process (the client; `clientMain`: its main thread alone, where /proc has it) and of Azurite during it.
 * On a machine where both share the cores, the client's extra CPU is what lengthens the upload.
 */
export async function measureUpload(azurite, upload) {
  // As the other suites do (util.js timed()): the previous upload's server wrote 1 GiB and was removed; what
  // the kernel still does for those files (journal, discards) must not land in this upload's time.
  execFileSync('sync');
  const server0 = azurite.cpuSeconds();
  const main0 = processCpuSeconds(`${process.pid}/task/${process.pid}`);
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  await upload();
  const wall = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(client0);
  const main1 = processCpuSeconds(`${process.pid}/task/${process.pid}`);
  const server1 = azurite.cpuSeconds();
  const delta = (a, b) => (a === undefined || b === undefined ? undefined : b - a);
  return { seconds: wall, client: (used.user + used.system) / 1e6, clientMain: delta(main0, main1), server: delta(server0, server1) };
}

export async function runRemoteSuite({ quick = false, log = () => {} } = {}) {
  const total = quick ? 256 * MiB : GiB;
  // Each round uploads all five kinds, in a rotated order, each on a fresh server (withServer); the target is
  // the median of the per-round ratios. Ten rounds put every kind in every position of a round twice.
  const kinds = ['plain', 'plainMd5', 'vdcrypt', 'presealed', 'coldPool'];
  const rounds = quick ? 1 : 2 * kinds.length;
  const rows = [];
  const data = randomBytes(total);
  const times = Object.fromEntries(kinds.map((k) => [k, []]));
  const cpu = Object.fromEntries(Object.keys(times).map((k) => [k, { client: [], server: [] }]));
  for (let round = 0; round < rounds; round++) {
    for (const kind of [...kinds.slice(round % kinds.length), ...kinds.slice(0, round % kinds.length)]) {
      log(`remote: ${kind} upload of ${total / MiB} MiB, round ${round + 1}/${rounds}`);
      const { seconds, client, server } = await withServer(async ({ store, blobs, container, azurite }) => {
        const measure = (upload) => measureUpload(azurite, upload);
        if (kind === 'vdcrypt' || kind === 'presealed' || kind === 'coldPool') {
          const ref = { account: ACCOUNT, container: 'bench', blob: 'disk.vhd' };
          await store.createBlob(ref, total);
          if (kind === 'coldPool') sharedCipherPool.drain(); // as in a process that has not uploaded before
          if (kind === 'vdcrypt' || kind === 'coldPool') {
            return measure(() => store.uploadExtents(ref, sealExtents(blobs, ACCOUNT, extentsOf(data)), { concurrency: CONCURRENCY }));
          }
          // Sealed (XTS, zero runs, CRC64s) before the timer, each extent in a buffer of its own (none is released
          // before the upload sends it); the upload gives them back to the shared pool, so the order of the kinds
          // does not decide whether the next vdcrypt upload finds the pool warm.
          const sealed = [];
          for await (const e of sealExtents(blobs, ACCOUNT, extentsOf(data))) sealed.push(e);
          return measure(() => store.uploadExtents(ref, sealed, { concurrency: CONCURRENCY }));
        }
        const blob = container.getPageBlobClient('disk.vhd');
        await blob.create(total);
        return measure(() => plainUpload(blob, data, kind === 'plainMd5'));
      });
      times[kind].push(seconds);
      cpu[kind].client.push(client);
      if (server !== undefined) cpu[kind].server.push(server);
    }
  }
  return withServer(async ({ store, blobs, container }) => {
    const mbps = (s) => total / MiB / s;
    const plain = median(times.plain);
    const plainMd5 = median(times.plainMd5);
    const ours = median(times.vdcrypt);
    const cpuOf = (kind) => ({ client: median(cpu[kind].client), server: cpu[kind].server.length > 0 ? median(cpu[kind].server) : undefined });
    rows.push({ group: 'upload', name: 'plain SDK uploadPages, no checksum', bytes: total, seconds: plain, mibps: mbps(plain), ...cpuOf('plain') });
    rows.push({ group: 'upload', name: 'plain SDK uploadPages + Content-MD5', bytes: total, seconds: plainMd5, mibps: mbps(plainMd5), ...cpuOf('plainMd5') });
    rows.push({ group: 'upload', name: 'vdcrypt encrypted (XTS + CRC64 per request + state blob)', bytes: total, seconds: ours, mibps: mbps(ours), ...cpuOf('vdcrypt') });
    const presealed = median(times.presealed);
    rows.push({ group: 'upload', name: 'vdcrypt, extents sealed before the timer (no XTS in the upload)', bytes: total, seconds: presealed, mibps: mbps(presealed), ...cpuOf('presealed') });
    const coldPool = median(times.coldPool);
    rows.push({ group: 'upload', name: 'vdcrypt encrypted, ciphertext buffers made afresh (a process\'s first upload)', bytes: total, seconds: coldPool, mibps: mbps(coldPool), ...cpuOf('coldPool') });

    // The sparse disk: 2 TiB, 64 MiB of data in 16 places, 64 MiB of explicit zeros beside it.
    log('remote: 2 TiB sparse disk holding 64 MiB');
    const sparseRef = { account: ACCOUNT, container: 'bench', blob: 'sparse.vhd' };
    await store.createBlob(sparseRef, 2 * TiB);
    const piece = randomBytes(CHUNK);
    const zeros = Buffer.alloc(CHUNK);
    function* sparse() {
      for (let i = 0; i < 16; i++) {
        const at = i * 128 * GiB;
        yield { offset: at, data: piece };
        yield { offset: at + CHUNK, data: zeros };
      }
    }
    const sealed = { bytesSkipped: 0 };
    const t0 = performance.now();
    const result = await store.uploadExtents(sparseRef, sealExtents(blobs, ACCOUNT, sparse(), { stats: sealed }), { concurrency: CONCURRENCY });
    const sparseSeconds = (performance.now() - t0) / 1000;
    const allocated = ((await container.getPageBlobClient('sparse.vhd').getPageRanges()).pageRange ?? [])
      .reduce((n, r) => n + r.count + 1, 0);
    const visited = 16 * 2 * CHUNK;
    rows.push({
      group: 'sparse', name: '2 TiB disk, 64 MiB of data', bytes: 2 * TiB, seconds: sparseSeconds, sent: result.bytesSent,
      zeroSkipped: sealed.bytesSkipped + result.bytesSkipped, unvisited: 2 * TiB - visited, allocated,
    });
    const sp = rows[rows.length - 1];
    const perRound = (base, ours = 'vdcrypt') => times[base].map((t, i) => t / times[ours][i]);
    const ratio = median(perRound('plainMd5'));
    const ratioNoMd5 = median(perRound('plain'));
    const perRoundPresealed = perRound('plain', 'presealed');
    const perRoundCold = perRound('plain', 'coldPool');
    const spread = (xs) => `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;
    const check = (ok) => (ok ? 'met' : '**missed**');
    const markdown = [
      `Azurite ${createRequire(import.meta.url)('azurite/package.json').version} on 127.0.0.1, data on local disk; ${total / MiB} MiB of random data,`,
      `4 MiB Put Pages, ${CONCURRENCY} in flight, each upload on a fresh Azurite after a \`sync\` (not timed); times are medians of ${rounds} round(s), each`,
      'uploading the five kinds in a rotated order; the ratios are medians of the per-round ratios (their range in brackets).',
      'vdcrypt\'s ciphertext buffers are shared by the uploads of a process and kept 30 s after the last one: the target row',
      'reuses those of the earlier vdcrypt uploads in this suite; the "made afresh" row empties the pool first, as a one-shot',
      'CLI import would start.',
      '',
      '| upload | seconds | MiB/s | client CPU s | Azurite CPU s |',
      '|---|---:|---:|---:|---:|',
      ...rows.filter((r) => r.group === 'upload').map((r) =>
        `| ${r.name} | ${fmt(r.seconds)} | ${fmt(r.mibps, 0)} | ${fmt(r.client)} | ${r.server === undefined ? '—' : fmt(r.server)} |`),
      '',
      `CPU seconds are medians over the rounds, of this process (the client: its main thread and the libuv pool) and`,
      `of the Azurite process, during each upload. Both share this machine's ${availableParallelism()} core(s), so every CPU-second`,
      'the client adds beyond the plain upload lengthens the wall time (see the note on issue 7).',
      '',
      '| sparse disk | value |',
      '|---|---:|',
      `| blob size | 2 TiB |`,
      `| bytes sent | ${sp.sent / MiB} MiB |`,
      `| zero bytes seen and skipped | ${sp.zeroSkipped / MiB} MiB |`,
      `| never visited (unallocated in the source) | ${fmt(sp.unvisited / TiB, 4)} TiB |`,
      `| allocated on Azure afterwards | ${sp.allocated / MiB} MiB |`,
      `| time | ${fmt(sp.seconds)} s |`,
      '',
      '| target (issue 7) | measured | goal | |',
      '|---|---:|---|---|',
      `| encrypted upload vs plain SDK upload (no checksum) | ${fmt(ratioNoMd5)}x (${spread(perRound('plain'))}) | >= 0.95x | ${check(ratioNoMd5 >= 0.95)} |`,
      `| encrypted upload vs plain SDK upload with Content-MD5 | ${fmt(ratio)}x (${spread(perRound('plainMd5'))}) | (reference) | |`,
      `| vdcrypt's upload path without the XTS pass (sealed before the timer) vs plain SDK upload | ${fmt(median(perRoundPresealed))}x (${spread(perRoundPresealed)}) | (reference) | |`,
      `| the same encrypted upload as a process's first (ciphertext buffers made afresh) vs plain SDK upload | ${fmt(median(perRoundCold))}x (${spread(perRoundCold)}) | (reference) | |`,
      `| 2 TiB sparse disk with 64 MiB of data sends | ${sp.sent / MiB} MiB | 64 MiB | ${check(sp.sent === 64 * MiB)} |`,
    ].join('\n');
    return { rows, markdown };
  });
}
