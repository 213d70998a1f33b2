/**
 * Runs tasks one at a time per key and in arrival order, different keys in
 * parallel: a Claude session cannot take two turns at once, but two
 * conversations must never wait for each other.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  /** How many tasks hold or wait for the key. */
  readonly depth = new Map<string, number>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const release = await this.acquire(key);
    try {
      return await task();
    } finally {
      release();
    }
  }

  /** Waits for the key; returns the function that hands it to the next waiter. */
  async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    this.depth.set(key, (this.depth.get(key) ?? 0) + 1);
    await previous;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.depth.get(key) ?? 1) - 1;
      if (left === 0) this.depth.delete(key);
      else this.depth.set(key, left);
      if (this.tails.get(key) === tail) this.tails.delete(key);
      release();
    };
  }

  busy(key: string): boolean {
    return (this.depth.get(key) ?? 0) > 0;
  }
}
