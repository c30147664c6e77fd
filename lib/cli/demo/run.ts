/**
 * `vdcrypt demo` (what `npm start` runs): Storage Service Encryption on a virtual disk, end to end, on a fresh
 * temporary home. Each step prints one line: what happened, and what it proved (each proof is checked; a
 * failed check fails the demo).
 *
 *   image ─import (base image)─▶ blob: plaintext ─boot writes─▶ encrypted pages ─map─▶
 *   customer key ─rotate─▶ no rewrite ─disable─▶ 403 everywhere ─enable─▶ back ─encrypt─▶ all encrypted
 *   ─export─▶ fixed VHD == original + boot writes
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AccountService, accountIdentity } from '../../account/index.js';
import { encryptBlob, PageBlobService } from '../../blob/index.js';
import { VdcryptError } from '../../errors.js';
import { KEY_PERMISSIONS } from '../../keys/index.js';
import { exportBlob, importImage } from '../../pipeline/index.js';
import { type BlobRef, LocalPageStore, MAX_WRITE_BYTES, type TaggedRange } from '../../store/index.js';
import { FOOTER_SIZE, inspectImage } from '../../vhd/index.js';
import { buildMap } from '../map/cells.js';
import { renderTerminalMap } from '../map/terminal.js';
import { formatBytes } from '../parse.js';
import { BOOT_WRITES, bootWriteData, DEMO_DISK_SIZE, writeDemoImage } from './image.js';

export interface DemoOptions {
  keep: boolean;
  colour: boolean;
  out: (line: string) => void;
}

interface Row {
  step: string;
  result: string;
  proved: string;
  ms: number;
}

const ACCOUNT = 'demo';
const CONTAINER = 'disks';
const VAULT = 'demovault';
const KEY = 'diskkey';
const RSA_BITS = 2048;

/** A check of the demo: throws (failing the demo) when what a step claims did not happen. */
function prove(condition: boolean, claim: string): void {
  if (!condition) throw new VdcryptError('DemoCheckFailed', `the demo expected: ${claim}`, { status: 500 });
}

function sameRanges(a: TaggedRange[], b: TaggedRange[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const { out } = options;
  const home = await mkdtemp(join(tmpdir(), 'vdcrypt-demo-'));
  const rows: Row[] = [];
  let started = performance.now();
  const step = (name: string, result: string, proved: string): void => {
    const ms = performance.now() - started;
    rows.push({ step: name, result, proved, ms });
    out(`${String(rows.length).padStart(2)}. ${name.padEnd(9)} ${result}; proved: ${proved}`);
    started = performance.now();
  };
  out(`vdcrypt demo: Storage Service Encryption of a virtual disk, on a temporary home ${home}`);
  let accounts: AccountService | undefined;
  let store: LocalPageStore | undefined;
  try {
    // 1. a disk image
    const imagePath = join(home, 'base.vhd');
    const { disk, dataBytes } = await writeDemoImage(imagePath);
    const original = await readFile(imagePath);
    const report = await inspectImage(imagePath);
    prove(report.valid && report.format === 'fixed', 'the image to be a valid fixed VHD');
    step('image', `made a ${formatBytes(DEMO_DISK_SIZE)} fixed VHD with ${formatBytes(dataBytes)} of filesystem-like data`,
      'lib/vhd writes a VHD its own strict reader accepts');

    // 2. account + import as a marketplace base image
    accounts = await AccountService.open(home, { env: {} });
    store = await LocalPageStore.open(join(home, 'store'));
    const blobs = new PageBlobService(store, accounts);
    await accounts.createAccount(ACCOUNT);
    await blobs.createContainer(ACCOUNT, CONTAINER);
    const ref: BlobRef = { account: ACCOUNT, container: CONTAINER, blob: 'vm1.vhd' };
    const imported = await importImage(blobs, imagePath, ref, { baseImage: true });
    let status = await blobs.getEncryptionStatus(ref);
    prove(status.encryptedBytes === 0 && status.plaintextBytes > 0, 'a base image to stay plaintext');
    prove(imported.bytesSkipped > 0, 'zero ranges to be skipped');
    step('import', `imported it as a marketplace base image into encryption-enabled account '${ACCOUNT}': ` +
      `${formatBytes(imported.bytesWritten)} sent, ${formatBytes(imported.bytesSkipped)} of zeros skipped`,
    `the base image is stored plaintext (${formatBytes(status.plaintextBytes)} plaintext, 0 B encrypted), as SSE keeps VHD base images`);

    // 3. after-boot writes
    const expected = Buffer.from(disk);
    let written = 0;
    for (const [offset, length, what] of BOOT_WRITES) {
      const data = bootWriteData(offset, length, what);
      for (let pos = 0; pos < length; pos += MAX_WRITE_BYTES) {
        prove(await blobs.putPages(ref, offset + pos, data.subarray(pos, pos + MAX_WRITE_BYTES)), 'every boot write to be encrypted');
      }
      data.copy(expected, offset);
      written += length;
    }
    status = await blobs.getEncryptionStatus(ref);
    prove(status.encryptedBytes === written && !status.serverEncrypted, 'exactly the boot writes to be encrypted');
    step('boot', `the VM wrote ${formatBytes(written)} after booting (${BOOT_WRITES.length} places)`,
      `every write after boot is encrypted (${formatBytes(status.encryptedBytes)} encrypted, the rest of the base image still plaintext)`);

    // 4. the map
    out('');
    for (const line of renderTerminalMap(buildMap(status), { colour: options.colour })) out(`    ${line}`);
    out('');

    // 5. customer-managed key
    const before = { ranges: await store.listRanges(ref), version: (await store.getBlob(ref)).version };
    const vault = await accounts.vaults.createVault(VAULT, { region: 'local', credential: { passphrase: randomBytes(24).toString('base64') } });
    const key = await vault.createKey(KEY, { kty: 'RSA', size: RSA_BITS });
    await vault.grantAccess(KEY, accountIdentity(ACCOUNT), KEY_PERMISSIONS);
    const props = await accounts.updateAccount(ACCOUNT, { keyUri: `${vault.uri}/keys/${KEY}` });
    await blobs.readRange(ref, 0, FOOTER_SIZE);
    const afterSwitch = { ranges: await store.listRanges(ref), version: (await store.getBlob(ref)).version };
    prove(props.encryption.keySource === 'Microsoft.Keyvault', 'the key source to be Microsoft.Keyvault');
    prove(sameRanges(before.ranges, afterSwitch.ranges) && before.version === afterSwitch.version, 'no page to be rewritten by the key switch');
    step('cmk', `created vault '${VAULT}' with RSA-${RSA_BITS} key '${KEY}' and switched the account to it (keySource Microsoft.Keyvault)`,
      'only the data key was re-wrapped: page ranges and blob version unchanged, no data rewritten');

    // 6. rotate
    const rotated = await vault.rotateKey(KEY);
    await blobs.readRange(ref, 0, FOOTER_SIZE); // first use after rotation re-wraps under the newest version
    const kv = (await accounts.getAccount(ACCOUNT)).encryption.keyvaultproperties;
    const afterRotate = { ranges: await store.listRanges(ref), version: (await store.getBlob(ref)).version };
    prove(kv?.currentVersionedKeyIdentifier === rotated.kid && kv.currentVersionedKeyIdentifier !== key.kid, 'the account to follow the new key version');
    prove(sameRanges(before.ranges, afterRotate.ranges) && before.version === afterRotate.version, 'no page to be rewritten by the rotation');
    step('rotate', `rotated the key to version ${rotated.version.slice(0, 8)}…; the account followed it on next use`,
      `rotation re-wraps only: ${before.ranges.length} stored ranges and blob version ${before.version} unchanged`);

    // 7. revoke
    await vault.setKeyEnabled(KEY, false);
    const attempts: Array<[string, () => Promise<unknown>]> = [
      ['read of plaintext base-image pages', () => blobs.readRange(ref, 4 * 1024 * 1024, 4096)],
      ['read of encrypted pages', () => blobs.readRange(ref, 40 * 1024 * 1024, 4096)],
      ['Get Page Ranges', () => blobs.getPageRanges(ref)],
      ['write', () => blobs.putPages(ref, 0, Buffer.alloc(FOOTER_SIZE))],
      ['export', () => exportBlob(blobs, ref, join(home, 'refused.vhd'))],
    ];
    const codes = new Set<string>();
    for (const [what, attempt] of attempts) {
      try {
        await attempt();
        prove(false, `the ${what} to be refused while the key is disabled`);
      } catch (error) {
        prove(error instanceof VdcryptError && error.status === 403, `the ${what} to be refused with a 403, got ${String(error)}`);
        codes.add((error as VdcryptError).code);
      }
    }
    step('revoke', `disabled the key: ${attempts.length} of ${attempts.length} operations refused (${[...codes].join(', ')})`,
      'revoking the customer key blocks every read and write of the account, plaintext pages included (HTTP 403)');

    // 8. restore
    await vault.setKeyEnabled(KEY, true);
    const back = Buffer.from(await blobs.readRange(ref, 40 * 1024 * 1024, 4096));
    prove(back.equals(expected.subarray(40 * 1024 * 1024, 40 * 1024 * 1024 + 4096)), 'the data to read back after the key is enabled');
    step('restore', 're-enabled the key', 'restoring the key restores service with the data intact');

    // 9. encrypt the base image
    const converted = await encryptBlob(blobs, ref);
    status = await blobs.getEncryptionStatus(ref);
    prove(status.serverEncrypted && status.plaintextBytes === 0, 'the whole blob to be encrypted');
    step('encrypt', `rewrote ${formatBytes(converted.bytesDone)} of plaintext base image under the account key`,
      `existing plaintext is encrypted only by a rewrite; now serverEncrypted: true (${formatBytes(status.encryptedBytes)} encrypted)`);
    out('');
    for (const line of renderTerminalMap(buildMap(status), { colour: options.colour })) out(`    ${line}`);
    out('');

    // 10. export and verify
    const exportPath = join(home, 'exported.vhd');
    const exported = await exportBlob(blobs, ref, exportPath, { format: 'vhd' });
    const expectedFile = Buffer.concat([expected, original.subarray(original.length - FOOTER_SIZE)]);
    const same = await fileEquals(exportPath, expectedFile);
    prove(same, 'the exported VHD to equal the original image plus the boot writes');
    step('export', `exported the blob (decrypted) to a ${formatBytes(exported.fileSize)} fixed VHD`,
      'byte for byte the original image plus the boot writes, with its original footer');

    out('');
    printSummary(rows, out);
  } finally {
    await store?.close();
    await accounts?.close();
    if (options.keep) out(`kept the demo home: ${home}`);
    else await rm(home, { recursive: true, force: true });
  }
}

async function fileEquals(path: string, expected: Buffer): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size !== expected.length) return false;
    const chunk = Buffer.alloc(MAX_WRITE_BYTES);
    for (let pos = 0; pos < size; pos += chunk.length) {
      const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, size - pos), pos);
      if (!chunk.subarray(0, bytesRead).equals(expected.subarray(pos, pos + bytesRead))) return false;
    }
    return true;
  } finally {
    await handle.close();
  }
}

function printSummary(rows: Row[], out: (line: string) => void): void {
  const total = rows.reduce((sum, r) => sum + r.ms, 0);
  const width = Math.max(...rows.map((r) => r.step.length), 'step'.length);
  out(`summary   ${'step'.padEnd(width)}  ${'time'.padStart(7)}  result`);
  for (const r of rows) out(`          ${r.step.padEnd(width)}  ${`${Math.round(r.ms)} ms`.padStart(7)}  ok: ${r.proved}`);
  out(`          ${'total'.padEnd(width)}  ${`${(total / 1000).toFixed(1)} s`.padStart(7)}  ${rows.length} steps, every check passed`);
}
