/**
 * Loads the native XTS addon (native/, built by node-gyp or loaded from prebuilds/ by node-gyp-build).
 *
 * `VDCRYPT_ADDON` may name a specific `.node` file (the sanitizer build uses it); otherwise node-gyp-build
 * looks in the package root. The shape of the binding is declared here once; lib/xts/cipher.ts,
 * lib/xts/aligned.ts and lib/xts/checksum.ts are its only callers.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Opaque handle to a key schedule held in native memory. */
export type NativeKeyHandle = { readonly __brand: 'vdcrypt.NativeKeyHandle' };

export interface NativeCpuFeatures {
  aesni: boolean;
  pclmulqdq: boolean;
  sse41: boolean;
  avx: boolean;
  avx2: boolean;
  vaes: boolean;
  vpclmulqdq: boolean;
  avx512f: boolean;
  avx512bw: boolean;
  avx512vl: boolean;
}

export interface NativeBinding {
  createKey(key: Uint8Array, impl: string): NativeKeyHandle;
  disposeKey(handle: NativeKeyHandle): void;
  keyImplementation(handle: NativeKeyHandle): string;
  crypt(handle: NativeKeyHandle, encrypt: boolean, src: Uint8Array, dst: Uint8Array, sectorSize: number,
    firstSector: number | bigint): void;
  cryptAsync(handle: NativeKeyHandle, encrypt: boolean, src: Uint8Array, dst: Uint8Array, sectorSize: number,
    firstSector: number | bigint): Promise<void>;
  dataUnit(handle: NativeKeyHandle, encrypt: boolean, src: Uint8Array, dst: Uint8Array, tweak: Uint8Array): void;
  cpuFeatures(): NativeCpuFeatures;
  implementations(): string[];
  parallelism(): number;
  measureClockGhz(): number;
  alignedBuffer(bytes: number): Buffer;
  poolBuffer(bytes: number): Buffer;
  addressAlignment(view: Uint8Array): number;
  crc64(view: Uint8Array): Buffer;
  crc64(view: Uint8Array, path: string): Buffer | null;
  sealAsync(handle: NativeKeyHandle | null, src: Uint8Array, dst: Uint8Array | null, firstSector: number | bigint,
    maxRunPages: number): Promise<Buffer>;
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'vdcrypt') {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('vdcrypt: cannot find the package root to load the native addon');
    dir = parent;
  }
}

function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  const override = process.env['VDCRYPT_ADDON'];
  if (override !== undefined && override !== '') return require(override) as NativeBinding;
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeBinding;
  return nodeGypBuild(packageRoot());
}

export const native: NativeBinding = load();
