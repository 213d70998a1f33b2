/**
 * What brainstem needs only for some requests (the chart libraries, the DOM
 * library, the HTTP client), loaded on its first use instead of at start-up: start-up
 * time and idle memory are paid for what serves. `load` runs once; every call
 * gets its promise. A failed load is tried again by the next call.
 *
 *   const dom = onFirstUse(() => import('linkedom'));
 *   const { parseHTML } = await dom();
 */
export function onFirstUse<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => {
    loading ??= load().catch((err: unknown) => {
      loading = undefined;
      throw err;
    });
    return loading;
  };
}
