// `npm run bench`: one run, one table. Measures vdcrypt against its peers in the same run, prints the table
// as ratios and rewrites bench/RESULTS.md. Not a test: nothing here asserts; the targets are reported.
//   node bench/run.js [--quick] [--no-write]
import { cpus } from 'node:os';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { runXtsSuite } from './xts.js';

const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const log = (line) => process.stderr.write(`${line}\n`);

const fmt = (n, digits = 2) => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits));

function xtsTable(r) {
  const lines = [
    `| group | case | impl | GB/s | cycles/B | × openssl -bytes 512 | × openssl -bytes 16384 |`,
    `|---|---|---|---:|---:|---:|---:|`,
  ];
  for (const row of r.rows) {
    const cpb = r.clockGhz / row.gbps;
    lines.push(`| ${row.group} | ${row.name} | ${row.impl} | ${fmt(row.gbps)} | ${fmt(cpb, 3)} | ` +
      `${fmt(row.gbps / r.openssl512)} | ${fmt(row.gbps / r.openssl16k)} |`);
  }
  return lines.join('\n');
}

function find(r, pred) {
  return r.rows.find(pred)?.gbps;
}

function xtsTargets(r) {
  const best = r.best;
  const ours = (dir, batch, sectorSize = 512, group = 'in-cache') =>
    find(r, (x) => x.impl === best && x.group === group && x.dir === dir && x.batch === batch && x.sectorSize === sectorSize);
  const batch64 = ours('encrypt', 64);
  const batch512 = ours('encrypt', 512);
  const inCache = Math.min(batch64 ?? 0, batch512 ?? 0);
  const one = ours('encrypt', 1);
  const sync = find(r, (x) => x.mode === 'sync-mib');
  const async = find(r, (x) => x.mode === 'async-mib');
  const decWorst = Math.max(...[1, 8, 64, 512].map((b) => {
    const e = ours('encrypt', b);
    const d = ours('decrypt', b);
    return e === undefined || d === undefined ? 0 : Math.abs(e - d) / e;
  }));
  const check = (ok) => (ok ? 'met' : '**missed**');
  const rows = [
    ['in-cache 512 B sectors, batches >= 64, vs `openssl speed -bytes 512`', `${fmt(inCache / r.openssl512)}x`, '>= 2.0x', check(inCache / r.openssl512 >= 2.0)],
    ['the same vs `openssl speed -bytes 16384`', `${fmt(inCache / r.openssl16k)}x`, '>= 1.7x', check(inCache / r.openssl16k >= 1.7)],
    ['the same in cycles per byte', fmt(r.clockGhz / inCache, 3), '<= 0.33', check(r.clockGhz / inCache <= 0.33)],
    ['one sector per call vs OpenSSL EVP per sector (C)', r.evp === undefined ? '—' : `${fmt(one / r.evp)}x`, '>= 1.0x', r.evp === undefined ? 'not measured' : check(one / r.evp >= 1.0)],
    ['decrypt vs encrypt, worst in-cache batch', `${fmt(decWorst * 100, 1)}% apart`, '<= 10%', check(decWorst <= 0.10)],
    [`async on ${r.cores} cores vs one core, in cache (1 MiB calls)`, `${fmt(async / sync)}x`, '>= 1.7x', check(async / sync >= 1.7)],
  ];
  return ['| target | measured | goal | |', '|---|---:|---|---|', ...rows.map((c) => `| ${c.join(' | ')} |`)].join('\n');
}

// Suites after the XTS engine: each returns a markdown section. `--only xts` (or store, pipeline, remote)
// runs one.
const SUITES = [
  ['store', 'Page blobs on the embedded store (issue 4)', './store.js', 'runStoreSuite'],
  ['pipeline', 'VHD import and export (issue 5)', './pipeline.js', 'runPipelineSuite'],
  ['remote', 'Azure Blob backend against Azurite (issue 7)', './remote.js', 'runRemoteSuite'],
];
const onlyIndex = process.argv.indexOf('--only');
const only = onlyIndex > 0 ? process.argv[onlyIndex + 1] : undefined;

const started = new Date();
const xts = await runXtsSuite({ quick, log });
const sections = [];
for (const [name, title, file, fn] of SUITES) {
  if (only !== undefined && only !== name) continue;
  if (!existsSync(fileURLToPath(new URL(file, import.meta.url)))) continue;
  const suite = await import(file);
  log(`running the ${name} suite…`);
  const result = await suite[fn]({ quick, log });
  sections.push(`## ${title}`, '', result.markdown, '');
}
const cpu = cpus()[0]?.model ?? 'unknown CPU';
const md = [
  '# vdcrypt benchmark results',
  '',
  `Measured ${started.toISOString()} by \`npm run bench${quick ? ' -- --quick' : ''}\` on ${cpus().length} cores of "${cpu}"`,
  `(core clock measured at ${fmt(xts.clockGhz)} GHz for the cycles/byte column; auto-selected XTS path: \`${xts.best}\`).`,
  'Every figure is a median from the same run; the machine is shared and noisy, so read the ratios.',
  '',
  '## AES-256-XTS sector engine',
  '',
  xtsTable(xts),
  '',
  '### Targets (issue 2)',
  '',
  xtsTargets(xts),
  '',
  ...sections,
].join('\n');

process.stdout.write(`${md}\n`);
if (!args.has('--no-write')) {
  const out = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
  writeFileSync(out, md);
  log(`wrote ${out}`);
}
