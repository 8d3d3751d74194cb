// The scheduler registry: built from an explicit list (no import side effects), like the kernel's
// ip_vs_schedulers list. Duplicate names throw at construction.

import type { Scheduler } from "./types.ts";

export class SchedulerRegistry {
  readonly #byName = new Map<string, Scheduler>();

  constructor(schedulers: readonly Scheduler[]) {
    for (const s of schedulers) {
      if (this.#byName.has(s.name)) throw new Error(`Duplicate scheduler "${s.name}"`);
      this.#byName.set(s.name, s);
    }
  }

  get(name: string): Scheduler | undefined {
    return this.#byName.get(name);
  }

  names(): string[] {
    return [...this.#byName.keys()];
  }
}
