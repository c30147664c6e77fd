/**
 * Per-key FIFO mutex: the calls on one blob are applied one at a time in call order (PageStore's concurrency
 * contract). `acquire` is called synchronously by each public method, before its first await, so the queue
 * order is the call order.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  acquire(key: string): Promise<() => void> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    const tail = previous.then(() => held);
    this.#tails.set(key, tail);
    return previous.then(() => () => {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
  }
}
