/**
 * RoutedPageStore (lib/cli/routed-store.ts): calls go to the store of their account, stores open once per key
 * and only when used, a failed selection is retried on the next call, and close() closes every opened store.
 */
import { describe, expect, it } from 'vitest';

import { RoutedPageStore, type StoreSelector } from '../../lib/cli/routed-store.js';
import { MemoryPageStore, PAGE_SIZE, type PageStore, StoreError } from '../../lib/store/index.js';

function fixture(): { router: RoutedPageStore; stores: Map<string, MemoryPageStore>; opens: string[]; fail: Set<string> } {
  const stores = new Map<string, MemoryPageStore>();
  const opens: string[] = [];
  const fail = new Set<string>();
  const select: StoreSelector = async (account) => {
    if (fail.has(account)) throw new StoreError('StoreIoFailed', `no setting for ${account}`);
    const key = account.startsWith('az') ? `azure:${account}` : 'local';
    return {
      key,
      open: async (): Promise<PageStore> => {
        opens.push(key);
        const store = new MemoryPageStore();
        stores.set(key, store);
        return store;
      },
    };
  };
  return { router: new RoutedPageStore(select), stores, opens, fail };
}

describe('RoutedPageStore', () => {
  it('routes blob and container calls by account; local accounts share one store, opened once', async () => {
    const { router, stores, opens } = fixture();
    for (const account of ['loc1', 'loc2', 'az1']) {
      await router.createContainer(account, 'disks');
      await router.createBlob({ account, container: 'disks', blob: 'd' }, 8 * PAGE_SIZE);
      await router.writePages({ account, container: 'disks', blob: 'd' }, 0, new Uint8Array(PAGE_SIZE).fill(account.length), 1);
    }
    expect(opens.sort()).toEqual(['azure:az1', 'local']);
    expect((await stores.get('local')?.listContainers('loc2'))?.map((c) => c.container)).toEqual(['disks']);
    expect(await stores.get('azure:az1')?.listContainers('loc1')).toEqual([]);
    expect(await router.listRanges({ account: 'az1', container: 'disks', blob: 'd' })).toEqual([{ start: 0, end: PAGE_SIZE - 1, tag: 1 }]);
    const ranges = [];
    for await (const r of router.iterateRanges({ account: 'loc1', container: 'disks', blob: 'd' })) ranges.push(r);
    expect(ranges).toHaveLength(1);
    expect(await router.storeFor('az1')).toBe(stores.get('azure:az1'));
  });

  it('a failed selection rejects the call and is asked again next time', async () => {
    const { router, fail } = fixture();
    fail.add('az2');
    await expect(router.listContainers('az2')).rejects.toMatchObject({ code: 'StoreIoFailed' });
    fail.delete('az2');
    await expect(router.listContainers('az2')).resolves.toEqual([]);
  });

  it('close() closes every opened store; later calls reject with StoreClosed', async () => {
    const { router, stores } = fixture();
    await router.listContainers('loc1');
    await router.listContainers('az1');
    await router.close();
    for (const store of stores.values()) await expect(store.listContainers('loc1')).rejects.toMatchObject({ code: 'StoreClosed' });
    await expect(router.listContainers('loc1')).rejects.toMatchObject({ code: 'StoreClosed' });
  });

  it('argument type errors are TypeErrors', async () => {
    const { router } = fixture();
    await expect(router.getBlob(null as never)).rejects.toThrow(TypeError);
    await expect(router.listContainers(7 as never)).rejects.toThrow(TypeError);
    expect(() => new RoutedPageStore('x' as never)).toThrow(TypeError);
  });
});
