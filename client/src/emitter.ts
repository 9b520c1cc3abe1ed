// A small typed event emitter (no dependency). Listener errors are reported
// to `onListenerError` and never break the emitter's caller.

export type Listener<A extends unknown[]> = (...args: A) => void;
type AnyListener = (...args: unknown[]) => void;

export class Emitter<M extends { [K in keyof M]: unknown[] }> {
  private listeners = new Map<keyof M, Set<AnyListener>>();

  constructor(private readonly onListenerError: (error: unknown) => void = (e) => console.error(e)) {}

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof M>(type: K, listener: Listener<M[K]>): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener as unknown as AnyListener);
    return () => this.off(type, listener);
  }

  off<K extends keyof M>(type: K, listener: Listener<M[K]>): void {
    this.listeners.get(type)?.delete(listener as unknown as AnyListener);
  }

  emit<K extends keyof M>(type: K, ...args: M[K]): void {
    const set = this.listeners.get(type);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as unknown as Listener<M[K]>)(...args);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}
