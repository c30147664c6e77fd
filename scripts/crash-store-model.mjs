// Shared by the crash-suite parent and child: the blob, deterministic page contents and a PRNG.
export const REF = { account: 'crash', container: 'c', blob: 'disk' };
export const MIN_PAGES = 1024;
export const MAX_PAGES = 4096;
export const MAX_TAG_USED = 5;
export const BLOB = { initialPages: 2048 };
const MAGIC = 0x5a17c0de;

/** xorshift32, good enough to pick operations and fill pages. */
export function rng(seed) {
  let x = (seed >>> 0) || 0x9e3779b9;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

/** The 512 bytes written to `page` by operation `id` with `tag`: a header naming all three, then noise. */
export function pageBytes(id, page, tag) {
  const buf = new Uint8Array(512);
  const view = new DataView(buf.buffer);
  view.setUint32(0, MAGIC);
  view.setUint32(4, id);
  view.setUint32(8, page);
  view.setUint32(12, tag);
  let x = (Math.imul(id, 0x9e3779b1) ^ Math.imul(page + 1, 0x85ebca6b)) >>> 0 || 1;
  for (let o = 16; o < 512; o += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    view.setUint32(o, x);
  }
  return buf;
}
