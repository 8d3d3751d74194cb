// Injected time. Core never reads the wall clock: callers pass a Clock (or a `now` in
// milliseconds) so tests can step time exactly and the daemon can use a monotonic source.

export interface Clock {
  /** Milliseconds on a monotonic scale. */
  now(): number;
}

/** A clock that only moves when told to; for tests and simulations. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start = 0) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): number {
    this.#now += ms;
    return this.#now;
  }
  set(ms: number): void {
    this.#now = ms;
  }
}
