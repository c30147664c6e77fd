/**
 * Account encryption keys (AEKs): the data keys of Storage Service Encryption.
 *
 * An AEK is 64 random bytes, key1 || key2 of AES-256-XTS (IEEE 1619); generation draws again until the halves
 * differ (XTS refuses equal halves, FIPS 140-3 IG C.I). Under service-managed keys (`Microsoft.Storage`) it is
 * sealed with AES-256-GCM under the service master key, with the account name and AEK generation as associated
 * data, so a sealed AEK cannot be moved to another account or generation.
 */
import { open, seal, type SealedBox } from './aead.js';
import { bytesEqual, SecretBytes } from './secret.js';

export const ACCOUNT_KEY_BYTES = 64;
const HALF = ACCOUNT_KEY_BYTES / 2;

/** A fresh AEK with distinct halves. */
export function generateAccountKey(): SecretBytes {
  for (;;) {
    const key = SecretBytes.random(ACCOUNT_KEY_BYTES);
    if (!bytesEqual(key.bytes.subarray(0, HALF), key.bytes.subarray(HALF))) return key;
    key.dispose(); // probability 2^-256; kept for the rule's sake
  }
}

function aad(account: string, generation: number): string {
  return `vdcrypt-account-key-v1|${account}|${generation}`;
}

export function sealAccountKey(serviceKey: SecretBytes, aek: SecretBytes, account: string, generation: number): SealedBox {
  return seal(serviceKey, aek.bytes, aad(account, generation));
}

export function openAccountKey(serviceKey: SecretBytes, box: unknown, account: string, generation: number): SecretBytes {
  return open(serviceKey, box, aad(account, generation), `account key generation ${generation} of '${account}'`);
}
