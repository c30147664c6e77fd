// Shared by the blob crash-suite parent and child: names and page contents (the PRNG is the store suite's).
export { rng } from './crash-store-model.mjs';

export const ACCOUNT = 'crashacct';
export const REF = { account: ACCOUNT, container: 'disks', blob: 'disk' };
export const BLOB_PAGES = 512;
const MAGIC = 0x5eed0b1b;

/** The plaintext that operation `id` writes to `page`: a header naming both, then noise derived from them. */
export function pagePlaintext(id, page) {
  const buf = Buffer.alloc(512);
  buf.writeUInt32BE(MAGIC, 0);
  buf.writeUInt32BE(id, 4);
  buf.writeUInt32BE(page, 8);
  let x = (Math.imul(id, 0x9e3779b1) ^ Math.imul(page + 1, 0x85ebca6b)) >>> 0 || 1;
  for (let o = 12; o < 512; o += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    buf.writeUInt32BE(x, o);
  }
  return buf;
}
