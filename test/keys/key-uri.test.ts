/** Key URIs in Azure's shape, resolving to local vaults. */
import { describe, expect, it } from 'vitest';

import { formatKeyUri, parseKeyUri } from '../../lib/keys/index.js';
import { expectCode } from './helpers.js';

describe('key URIs', () => {
  it('parses with and without a version, and round-trips', () => {
    expect(parseKeyUri('https://my-vault.vault.local/keys/key-1')).toEqual({ vault: 'my-vault', name: 'key-1' });
    const v = 'a'.repeat(32);
    expect(parseKeyUri(`https://my-vault.vault.local/keys/key-1/${v}/`)).toEqual({ vault: 'my-vault', name: 'key-1', version: v });
    expect(formatKeyUri({ vault: 'my-vault', name: 'key-1', version: v })).toBe(`https://my-vault.vault.local/keys/key-1/${v}`);
  });

  it('refuses other shapes with KeyVaultInvalidKeyUri', async () => {
    for (const bad of ['not a url', 'http://v1x.vault.local/keys/k', 'https://v1x.vault.azure.net/keys/k', 'https://v1x.vault.local/secrets/k',
      'https://v1x.vault.local/keys/k/XYZ', 'https://v1x.vault.local/keys', 'https://v1x.vault.local:8443/keys/k', 'https://1ab.vault.local/keys/k',
      'https://v1x.vault.local/keys/k?x=1']) {
      await expectCode(async () => parseKeyUri(bad), 'KeyVaultInvalidKeyUri', 400);
    }
  });
});
