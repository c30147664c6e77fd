/**
 * A fair readers-writer lock per key (one per blob): reads share, writes are exclusive and run in arrival
 * order, so overlapping writes are applied in call order and readers never see a half-applied write.
 */
interface Waiter {
  exclusive: boolean;
  grant: () => void;
}

interface LockState {
  readers: number;
  writer: boolean;
  queue: Waiter[];
}

export class KeyedRwLock {
  readonly #locks = new Map<string, LockState>();

  /** Run `fn` holding the lock for `key`, shared or exclusive. */
  async with<T>(key: string, exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    await this.#acquire(key, exclusive);
    try {
      return await fn();
    } finally {
      this.#release(key, exclusive);
    }
  }

  /** Hold several keys exclusively (taken in sorted order, so two callers cannot deadlock). */
  async withAll<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const held: string[] = [];
    try {
      for (const k of sorted) {
        await this.#acquire(k, true);
        held.push(k);
      }
      return await fn();
    } finally {
      for (const k of held) this.#release(k, true);
    }
  }

  /** True when no key is held or waited for. */
  get idle(): boolean {
    return this.#locks.size === 0;
  }

  #acquire(key: string, exclusive: boolean): Promise<void> {
    let s = this.#locks.get(key);
    if (s === undefined) {
      s = { readers: 0, writer: false, queue: [] };
      this.#locks.set(key, s);
    }
    const free = exclusive ? !s.writer && s.readers === 0 : !s.writer;
    if (free && s.queue.length === 0) {
      if (exclusive) s.writer = true;
      else s.readers++;
      return Promise.resolve();
    }
    const state = s;
    return new Promise((resolve) => state.queue.push({ exclusive, grant: resolve }));
  }

  #release(key: string, exclusive: boolean): void {
    const s = this.#locks.get(key);
    if (s === undefined) return;
    if (exclusive) s.writer = false;
    else s.readers--;
    while (s.queue.length > 0) {
      const next = s.queue[0] as Waiter;
      if (next.exclusive) {
        if (s.readers > 0 || s.writer) break;
        s.writer = true;
      } else {
        if (s.writer) break;
        s.readers++;
      }
      s.queue.shift();
      next.grant();
      if (next.exclusive) break;
    }
    if (!s.writer && s.readers === 0 && s.queue.length === 0) this.#locks.delete(key);
  }
}
