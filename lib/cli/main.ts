/**
 * The vdcrypt command line. Until the full CLI lands, `vdcrypt demo` (what `npm start` runs) is a short
 * self-check of the XTS engine: the selected CPU path, a known-answer check against node:crypto, and one
 * throughput line per implementation.
 */
import { createCipheriv, randomBytes } from 'node:crypto';

import { availableImplementations, cpuFeatures, XtsCipher } from '../xts/index.js';

function selfCheck(out: (line: string) => void): number {
  const features = cpuFeatures();
  const shown = Object.entries(features).filter(([, on]) => on).map(([name]) => name).join(' ');
  out(`vdcrypt self-check: CPU features: ${shown || 'none'}`);
  out(`implementations here, fastest first: ${availableImplementations().join(', ')}`);
  let key = randomBytes(64);
  while (key.subarray(0, 32).equals(key.subarray(32))) key = randomBytes(64);
  const sector = randomBytes(512);
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64LE(1234n);
  const cipher = createCipheriv('aes-256-xts', key, iv);
  const expected = Buffer.concat([cipher.update(sector), cipher.final()]);
  const batch = randomBytes(64 * 512);
  for (const impl of availableImplementations()) {
    const xts = new XtsCipher(key, { impl });
    const ok = Buffer.from(xts.encrypt(sector, 1234)).equals(expected);
    if (!ok) {
      out(`${impl}: MISMATCH against node:crypto`);
      return 1;
    }
    const rounds = impl === 'portable' ? 2_000 : 20_000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) xts.encrypt(batch, i * 64, batch);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const gbps = (batch.length * rounds) / seconds / 1e9;
    out(`${impl.padEnd(8)} matches node:crypto; ${gbps.toFixed(2)} GB/s encrypting 64-sector batches`);
    xts.dispose();
  }
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const out = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const [command] = argv;
  if (command === undefined || command === 'demo' || command === 'selfcheck') return selfCheck(out);
  process.stderr.write(`vdcrypt: unknown command '${command}'\n`);
  return 2;
}
