/**
 * Runs async tasks one at a time, in the order they were queued: the in-process lock around each vault's and
 * each account's read-modify-write of its files.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task, task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
