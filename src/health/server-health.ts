// Real-server health from several checkers, as keepalived combines them: a real_server block may
// hold any number of checkers, and the server is alive only while every one of them is up (no
// checkers: always alive). Its weight is the configured one plus each checker's adjustment —
// misc_dynamic sets an absolute weight, contributing (weight - configured), and FILE_CHECK adds its
// offset — never below 0. Fed with the runner's per-checker events, this emits per-server changes
// only, so the daemon sees one up/down/weight stream per real server.

import type { HealthEvent } from "./runner.ts";

export type ServerHealthEvent =
  | { type: "up"; server: string; reason: string; weight: number }
  | { type: "down"; server: string; reason: string }
  | { type: "weight"; server: string; reason: string; weight: number };

interface CheckerState {
  up: boolean;
  weight: number | undefined;
  weightOffset: number | undefined;
}

interface Server {
  configuredWeight: number;
  checkers: Map<string, CheckerState>;
  up: boolean;
  weight: number;
}

export class ServerHealth {
  readonly #onChange: (e: ServerHealthEvent) => void;
  readonly #servers = new Map<string, Server>();
  readonly #serverOf = new Map<string, string>();

  constructor(onChange: (e: ServerHealthEvent) => void) {
    this.#onChange = onChange;
  }

  /**
   * Register a real server and its checkers with their initial states (runner.state(id): up, or
   * down with alpha). Emits nothing; read the initial verdict with state().
   */
  addServer(server: string, configuredWeight: number, checkers: { id: string; up: boolean }[]): void {
    if (this.#servers.has(server)) throw new Error(`Real server "${server}" already registered`);
    for (const c of checkers)
      if (this.#serverOf.has(c.id))
        throw new Error(`Checker "${c.id}" already belongs to "${this.#serverOf.get(c.id)}"`);
    const s: Server = { configuredWeight, checkers: new Map(), up: true, weight: configuredWeight };
    for (const c of checkers) {
      s.checkers.set(c.id, { up: c.up, weight: undefined, weightOffset: undefined });
      this.#serverOf.set(c.id, server);
    }
    s.up = this.#allUp(s);
    this.#servers.set(server, s);
  }

  removeServer(server: string): boolean {
    const s = this.#servers.get(server);
    if (!s) return false;
    for (const id of s.checkers.keys()) this.#serverOf.delete(id);
    this.#servers.delete(server);
    return true;
  }

  /** The configured weight changed (reload): recompute, and report a weight change if up. */
  setConfiguredWeight(server: string, weight: number): void {
    const s = this.#servers.get(server);
    if (!s || s.configuredWeight === weight) return;
    s.configuredWeight = weight;
    this.#update(s, server, "Configured weight changed");
  }

  state(server: string): { up: boolean; weight: number } | undefined {
    const s = this.#servers.get(server);
    return s ? { up: s.up, weight: s.weight } : undefined;
  }

  /** Feed one runner event; events of unknown checkers are ignored. */
  handle(event: HealthEvent): void {
    const server = this.#serverOf.get(event.id);
    if (server === undefined) return;
    const s = this.#servers.get(server) as Server;
    const c = s.checkers.get(event.id) as CheckerState;
    if (event.type === "down") {
      c.up = false;
      c.weight = undefined;
      c.weightOffset = undefined;
    } else {
      if (event.type === "up") c.up = true;
      c.weight = event.weight;
      c.weightOffset = event.weightOffset;
    }
    this.#update(s, server, event.reason);
  }

  #allUp(s: Server): boolean {
    for (const c of s.checkers.values()) if (!c.up) return false;
    return true;
  }

  #weight(s: Server): number {
    let w = s.configuredWeight;
    for (const c of s.checkers.values()) {
      if (c.weight !== undefined) w += c.weight - s.configuredWeight;
      if (c.weightOffset !== undefined) w += c.weightOffset;
    }
    return Math.max(0, w);
  }

  #update(s: Server, server: string, reason: string): void {
    const up = this.#allUp(s);
    const weight = this.#weight(s);
    if (up !== s.up) {
      s.up = up;
      s.weight = weight;
      this.#onChange(up ? { type: "up", server, reason, weight } : { type: "down", server, reason });
    } else if (up && weight !== s.weight) {
      s.weight = weight;
      this.#onChange({ type: "weight", server, reason, weight });
    } else s.weight = weight;
  }
}
