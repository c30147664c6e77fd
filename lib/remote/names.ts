/**
 * Azure naming rules ("Naming and Referencing Containers, Blobs, and Metadata") on top of the store's own
 * checks (lib/store/validate.ts: 1..1024 characters). Violations are `RangeError`s, raised before any request.
 *
 * - Container: 3..63 characters, lowercase letters, digits and single hyphens, starting and ending with a
 *   letter or digit.
 * - Blob: 1..1024 characters, no control characters, not ending in `.` or `/`, and not ending in
 *   {@link STATE_SUFFIX} (reserved for the companion state blobs).
 * - Metadata names: C# identifiers (they travel as `x-ms-meta-<name>` headers); values: printable ASCII.
 *   Names starting with {@link RESERVED_META_PREFIX} are the backend's own.
 */
import * as v from '../store/validate.js';
import type { Metadata } from '../store/index.js';

/** Suffix of the companion block blob that holds a page blob's tags (see azure-store.ts). */
export const STATE_SUFFIX = '.vdcrypt-state';
/** Metadata names the backend keeps for itself (on snapshots: which state snapshot goes with them). */
export const RESERVED_META_PREFIX = 'vdcrypt_store_';

const CONTAINER = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HEADER_VALUE = /^[\u0020-\u007e]*$/;

export function checkContainerName(container: unknown): string {
  const name = v.checkName('container', container);
  if (!CONTAINER.test(name)) {
    throw new RangeError(`container must be 3..63 lowercase letters, digits and single hyphens (Azure), got '${name}'`);
  }
  return name;
}

export function checkBlobName(blob: unknown): string {
  const name = v.checkName('blob', blob);
  if (CONTROL.test(name) || name.endsWith('.') || name.endsWith('/') || name.endsWith(STATE_SUFFIX)) {
    throw new RangeError(`blob name '${name}' is not usable on Azure (control characters, a trailing '.' or '/', `
      + `or the reserved suffix ${STATE_SUFFIX})`);
  }
  return name;
}

export function checkAzureMetadata(metadata: unknown): Metadata {
  const md = v.checkMetadata(metadata);
  for (const [k, value] of Object.entries(md)) {
    if (!IDENTIFIER.test(k) || k.toLowerCase().startsWith(RESERVED_META_PREFIX)) {
      throw new RangeError(`metadata name '${k}' must be a C# identifier not starting with ${RESERVED_META_PREFIX}`);
    }
    if (!HEADER_VALUE.test(value)) throw new RangeError(`metadata['${k}'] must be printable ASCII`);
  }
  return md;
}

/** User metadata without the backend's reserved names. */
export function userMetadata(metadata: Record<string, string> | undefined): Metadata {
  const out: Metadata = {};
  for (const [k, value] of Object.entries(metadata ?? {})) {
    if (!k.toLowerCase().startsWith(RESERVED_META_PREFIX)) out[k] = value;
  }
  return out;
}
