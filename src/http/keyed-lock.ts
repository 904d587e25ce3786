/**
 * Serializes async work per key within this process, so two identical submissions arriving
 * together cannot both pass the "already active?" check before either has created its run.
 * (Across replicas the Idempotency-Key name is what protects; see docs/http-api.md.)
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await next;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
