// HealthSupervisor unit tests: a real Director and real configurations (keepalived.conf text on
// loopback addresses), with a fake checker whose verdict per real server the test sets, and fake
// timers stepped by hand, so every transition is deterministic. Notify scripts are real tiny shell
// scripts in a temp dir that append a line to a log file.

import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { DirectorConfig } from "../config/director-config.ts";
import { loadConfigText } from "../config/load.ts";
import type { DestSpec } from "../core/dest.ts";
import { createDefaultRegistry } from "../core/sched/all.ts";
import type { Checker, CheckResult } from "../health/checker.ts";
import type { CheckerSpec } from "../health/checker-spec.ts";
import type { TimerSource } from "../health/runner.ts";
import { Director } from "./executor.ts";
import { HealthSupervisor } from "./health-supervisor.ts";
import { createLogger } from "./log.ts";
import { reconcile } from "./reconcile.ts";

/** Timers that fire only when the test advances the clock. */
class ManualTimers implements TimerSource {
  now = 0;
  #next = 1;
  readonly #due = new Map<number, { at: number; fn: () => void }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#due.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.#due.delete(h as number);
  }
  /** Advance to now + ms, firing due timers in order and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      let first: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#due) if (e[1].at <= end && (!first || e[1].at < first[1].at)) first = e;
      if (!first) break;
      this.#due.delete(first[0]);
      this.now = Math.max(this.now, first[1].at);
      first[1].fn();
      await settle();
    }
    this.now = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

interface Rig {
  director: Director;
  sup: HealthSupervisor;
  timers: ManualTimers;
  logs: string[];
  /** The check verdict per "addr:port" (default up). */
  verdict: Map<string, boolean>;
  /** misc_dynamic weight a check reports per "addr:port" (default none). */
  dynamic: Map<string, number>;
  /** Service dests as "addr:port=weight", sorted. */
  dests(service?: string): string[];
  load(text: string): DirectorConfig;
  /** apply + reconcile the effective desired state, as the daemon does. */
  applyConfig(cfg: DirectorConfig): Promise<void>;
}

function makeRig(): Rig {
  const timers = new ManualTimers();
  const clock = { now: () => timers.now };
  const director = new Director({ registry: createDefaultRegistry(), env: { clock, random: () => 0 } });
  const verdict = new Map<string, boolean>();
  const dynamic = new Map<string, number>();
  const logs: string[] = [];
  const log = createLogger({ write: (l) => logs.push(l), level: "debug" });
  const createChecker = (spec: CheckerSpec): Checker => ({
    type: spec.type,
    check: async (t): Promise<CheckResult> => {
      const ok = verdict.get(`${t.address}:${t.port}`) ?? true;
      const res: CheckResult = { ok, reason: ok ? "Fake up" : "Fake down", latencyMs: 0 };
      const w = dynamic.get(`${t.address}:${t.port}`);
      if (ok && w !== undefined) res.weight = w;
      return res;
    },
  });
  const sup = new HealthSupervisor({
    executor: director,
    log,
    clock,
    timers,
    random: () => 0,
    jitter: false,
    createChecker,
    notifyTimeoutMs: 2000,
  });
  const rig: Rig = {
    director,
    sup,
    timers,
    logs,
    verdict,
    dynamic,
    dests(service) {
      const svc = director.services.services().find((s) => service === undefined || s.id === service);
      return (svc?.dests ?? []).map((d) => `${d.addr}:${d.port}=${d.spec().weight}`).sort();
    },
    load(text) {
      const r = loadConfigText("/tmp/keepalived.conf", text, "keepalived");
      assert.ok("config" in r, JSON.stringify(r.diagnostics));
      return r.config;
    },
    async applyConfig(cfg) {
      await sup.apply(cfg);
      const reqs = reconcile(sup.effective(cfg.desired), director.services);
      if (reqs.length > 0) director.exec({ op: "batch", requests: reqs });
      await sup.idle();
    },
  };
  return rig;
}

/** A keepalived virtual_server on 127.0.0.100:80 with the given extra lines and real servers. */
function conf(vsLines: string[], servers: { addr: string; lines?: string[]; check?: string[] }[]): string {
  const rs = servers.map(
    (s) =>
      `  real_server ${s.addr} 80 {\n    weight 1\n${(s.lines ?? []).map((l) => `    ${l}\n`).join("")}    TCP_CHECK {\n      connect_timeout 1\n      retry 2\n      delay_before_retry 1\n${(s.check ?? []).map((l) => `      ${l}\n`).join("")}    }\n  }\n`,
  );
  return `virtual_server 127.0.0.100 80 {\n  delay_loop 5\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n${vsLines.map((l) => `  ${l}\n`).join("")}${rs.join("")}}\n`;
}

function scriptDir(t: { after(fn: () => void): void }): {
  dir: string;
  script(name: string, body?: string): string;
  events(): string[];
} {
  const dir = mkdtempSync(join(tmpdir(), "tvs-notify-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const logFile = join(dir, "events.log");
  return {
    dir,
    script(name, body) {
      const p = join(dir, `${name}.sh`);
      writeFileSync(p, `#!/bin/sh\n${body ?? `echo ${name} "$@" >> ${logFile}`}\n`);
      chmodSync(p, 0o755);
      return p;
    },
    events() {
      try {
        return readFileSync(logFile, "utf8").trim().split("\n").filter(Boolean);
      } catch {
        return [];
      }
    },
  };
}

const A = "127.0.0.11";
const B = "127.0.0.12";
const C = "127.0.0.13";

test("a real server leaves after retry + 1 failures and comes back after one success", async (t) => {
  const r = makeRig();
  t.after(() => r.sup.stop());
  await r.applyConfig(r.load(conf([], [{ addr: A }, { addr: B }])));
  assert.deepEqual(r.dests(), [`${A}:80=1`, `${B}:80=1`]);
  await r.timers.advance(0); // first checks (warmup 0 with random 0): both up
  r.verdict.set(`${A}:80`, false);
  await r.timers.advance(5000); // failure 1
  assert.deepEqual(r.dests(), [`${A}:80=1`, `${B}:80=1`]);
  await r.timers.advance(1000); // failure 2 (retry 2: still up)
  assert.deepEqual(r.dests(), [`${A}:80=1`, `${B}:80=1`]);
  await r.timers.advance(1000); // failure 3 = retry + 1: down
  assert.deepEqual(r.dests(), [`${B}:80=1`]);
  r.verdict.set(`${A}:80`, true);
  await r.timers.advance(5000); // one success
  assert.deepEqual(r.dests(), [`${A}:80=1`, `${B}:80=1`]);
  const st = r.sup.status().find((c) => c.dest === `${A}:80`);
  assert.equal(st?.state, "up");
  assert.equal(st?.lastResult, "ok");
  assert.equal(st?.checker, "TCP_CHECK");
});

test("inhibit_on_failure quiesces to weight 0 and restores the configured weight", async (t) => {
  const r = makeRig();
  t.after(() => r.sup.stop());
  const text = conf([], [{ addr: A, lines: ["inhibit_on_failure"] }, { addr: B }]).replace(
    "weight 1\n    inhibit",
    "weight 3\n    inhibit",
  );
  await r.applyConfig(r.load(text));
  await r.timers.advance(0);
  assert.deepEqual(r.dests(), [`${A}:80=3`, `${B}:80=1`]);
  r.verdict.set(`${A}:80`, false);
  await r.timers.advance(7000);
  assert.deepEqual(r.dests(), [`${A}:80=0`, `${B}:80=1`]);
  r.verdict.set(`${A}:80`, true);
  await r.timers.advance(5000);
  assert.deepEqual(r.dests(), [`${A}:80=3`, `${B}:80=1`]);
});

test("alpha: a real server starts out of the service until a check passes", async (t) => {
  const r = makeRig();
  t.after(() => r.sup.stop());
  r.verdict.set(`${A}:80`, false);
  await r.applyConfig(r.load(conf(["alpha"], [{ addr: A }, { addr: B }])));
  assert.deepEqual(r.dests(), [], "alpha: nothing before the first checks");
  assert.equal(r.sup.status().find((c) => c.dest === `${A}:80`)?.state, "down");
  await r.timers.advance(0);
  assert.deepEqual(r.dests(), [`${B}:80=1`]);
  r.verdict.set(`${A}:80`, true);
  await r.timers.advance(5000);
  assert.deepEqual(r.dests(), [`${A}:80=1`, `${B}:80=1`]);
});

test("quorum with hysteresis: sorry server in at 0, out at quorum + hysteresis; quorum scripts run", async (t) => {
  const r = makeRig();
  const s = scriptDir(t);
  t.after(() => r.sup.stop());
  const text = conf(
    [
      "quorum 2",
      "hysteresis 1",
      "sorry_server 127.0.0.1 80",
      `quorum_up "${s.script("qup")} gained"`,
      `quorum_down "${s.script("qdown")} lost"`,
    ],
    [{ addr: A }, { addr: B }, { addr: C }],
  );
  await r.applyConfig(r.load(text));
  await r.timers.advance(0);
  const all = [`${A}:80=1`, `${B}:80=1`, `${C}:80=1`];
  assert.deepEqual(r.dests(), all);
  // Down one by one: live weight 2, then 1: not below quorum - hysteresis = 1, quorum stays.
  r.verdict.set(`${A}:80`, false);
  await r.timers.advance(7000);
  assert.deepEqual(r.dests(), [`${B}:80=1`, `${C}:80=1`]);
  r.verdict.set(`${B}:80`, false);
  await r.timers.advance(7000);
  assert.deepEqual(r.dests(), [`${C}:80=1`]);
  assert.deepEqual(s.events(), []);
  // Live weight 0: the quorum is lost, the sorry server goes in.
  r.verdict.set(`${C}:80`, false);
  await r.timers.advance(7000);
  assert.deepEqual(r.dests(), ["127.0.0.1:80=1"]);
  await r.sup.notifyIdle();
  assert.deepEqual(s.events(), ["qdown lost"]);
  // Back one by one: weight 1, 2 are below quorum + hysteresis = 3, so the sorry server stays
  // and the alive real servers stay out.
  r.verdict.set(`${A}:80`, true);
  await r.timers.advance(5000);
  assert.deepEqual(r.dests(), ["127.0.0.1:80=1"]);
  r.verdict.set(`${B}:80`, true);
  await r.timers.advance(5000);
  assert.deepEqual(r.dests(), ["127.0.0.1:80=1"]);
  r.verdict.set(`${C}:80`, true);
  await r.timers.advance(5000);
  assert.deepEqual(r.dests(), all);
  await r.sup.notifyIdle();
  assert.deepEqual(s.events(), ["qdown lost", "qup gained"]);
});

test("losing the quorum with a sorry server takes out the remaining alive servers (inhibited ones to weight 0)", async (t) => {
  const r = makeRig();
  t.after(() => r.sup.stop());
  const text = conf(
    ["quorum 3", "sorry_server 127.0.0.1 80"],
    [{ addr: A }, { addr: B, lines: ["inhibit_on_failure"] }, { addr: C }],
  );
  await r.applyConfig(r.load(text));
  await r.timers.advance(0);
  r.verdict.set(`${A}:80`, false);
  await r.timers.advance(7000);
  // Live weight 2 < 3: sorry in; B (alive, inhibit) quiesced, C (alive) removed.
  assert.deepEqual(r.dests(), [`${B}:80=0`, "127.0.0.1:80=1"]);
  r.verdict.set(`${A}:80`, true);
  await r.timers.advance(5000);
  assert.deepEqual(r.dests(), [`${A}:80=1`, `${B}:80=1`, `${C}:80=1`]);
});

test("sorry_server_inhibit keeps the sorry server at weight 0 outside a quorum loss", async (t) => {
  const r = makeRig();
  t.after(() => r.sup.stop());
  const text = conf(["sorry_server 127.0.0.1 80", "sorry_server_inhibit"], [{ addr: A }]);
  await r.applyConfig(r.load(text));
  await r.timers.advance(0);
  assert.deepEqual(r.dests(), [`${A}:80=1`, "127.0.0.1:80=0"]);
  r.verdict.set(`${A}:80`, false);
  await r.timers.advance(7000);
  assert.deepEqual(r.dests(), ["127.0.0.1:80=1"]);
  r.verdict.set(`${A}:80`, true);
  await r.timers.advance(5000);
  assert.deepEqual(r.dests(), [`${A}:80=1`, "127.0.0.1:80=0"]);
});

test("alpha with a sorry server starts with the quorum down and the sorry server in", async (t) => {
  const r = makeRig();
  const s = scriptDir(t);
  t.after(() => r.sup.stop());
  r.verdict.set(`${A}:80`, false);
  const text = conf(["alpha", "sorry_server 127.0.0.1 80", `quorum_down ${s.script("qdown")}`], [{ addr: A }]);
  await r.applyConfig(r.load(text));
  assert.deepEqual(r.dests(), ["127.0.0.1:80=1"]);
  await r.sup.notifyIdle();
  assert.deepEqual(s.events(), ["qdown"]);
  r.verdict.set(`${A}:80`, true);
  await r.timers.advance(0);
  assert.deepEqual(r.dests(), [`${A}:80=1`]);
});

test("reload keeps the state of unchanged servers, checks added ones, runs omega notify_down for removed ones", async (t) => {
  const r = makeRig();
  const s = scriptDir(t);
  t.after(() => r.sup.stop());
  const down = s.script("down");
  const servers = [
    { addr: A, lines: [`notify_down "${down} A"`] },
    { addr: B, lines: [`notify_down "${down} B"`] },
  ];
  await r.applyConfig(r.load(conf(["omega"], servers)));
  await r.timers.advance(0);
  r.verdict.set(`${A}:80`, false);
  await r.timers.advance(7000);
  assert.deepEqual(r.dests(), [`${B}:80=1`]);
  await r.sup.notifyIdle();
  assert.deepEqual(s.events(), ["down A"]);
  // Reload with the same servers: A stays out (not re-added by the reconcile), same checker state.
  const before = r.sup.status().find((c) => c.dest === `${A}:80`);
  await r.applyConfig(r.load(conf(["omega"], servers)));
  assert.deepEqual(r.dests(), [`${B}:80=1`]);
  const after = r.sup.status().find((c) => c.dest === `${A}:80`);
  assert.equal(after?.state, "down");
  assert.equal(after?.lastResult, before?.lastResult);
  // Reload dropping B and adding C: B's omega notify_down runs, C is added and checked.
  await r.applyConfig(r.load(conf(["omega"], [servers[0] as (typeof servers)[0], { addr: C }])));
  assert.deepEqual(r.dests(), [`${C}:80=1`]);
  await r.sup.notifyIdle();
  assert.deepEqual(s.events(), ["down A", "down B"]);
  r.verdict.set(`${A}:80`, true);
  await r.timers.advance(5000);
  assert.deepEqual(r.dests(), [`${A}:80=1`, `${C}:80=1`]);
});

test("stop with omega runs notify_down for alive servers and leaves the table alone", async (t) => {
  const r = makeRig();
  const s = scriptDir(t);
  const down = s.script("down");
  await r.applyConfig(r.load(conf(["omega"], [{ addr: A, lines: [`notify_down "${down} A"`] }])));
  await r.timers.advance(0);
  await r.sup.stop();
  assert.deepEqual(s.events(), ["down A"]);
  assert.deepEqual(r.dests(), [`${A}:80=1`]);
  assert.deepEqual(r.sup.status(), []);
});

test("notify_up/notify_down run on transitions; a hanging script is killed and checks go on", async (t) => {
  const r = makeRig();
  const s = scriptDir(t);
  t.after(() => r.sup.stop());
  const up = s.script("up");
  const hang = s.script("hang", `echo hang >> ${join(s.dir, "events.log")}; exec sleep 30`);
  await r.applyConfig(r.load(conf([], [{ addr: A, lines: [`notify_up "${up} A"`, `notify_down ${hang}`] }])));
  await r.timers.advance(0);
  r.verdict.set(`${A}:80`, false);
  await r.timers.advance(7000);
  assert.deepEqual(r.dests(), []);
  // The hanging notify_down does not hold up the next transition.
  r.verdict.set(`${A}:80`, true);
  await r.timers.advance(5000);
  assert.deepEqual(r.dests(), [`${A}:80=1`]);
  const t0 = Date.now();
  await r.sup.notifyIdle(); // bounded by the 2 s notify time limit
  assert.ok(Date.now() - t0 < 10_000);
  assert.deepEqual(s.events().sort(), ["hang", "up A"]);
  assert.ok(r.logs.some((l) => l.includes("Notify script killed after its time limit")));
});

test("a destination changed or removed by hand is logged, not fatal", async (t) => {
  const r = makeRig();
  t.after(() => r.sup.stop());
  await r.applyConfig(r.load(conf([], [{ addr: A }, { addr: B }])));
  await r.timers.advance(0);
  const key = r.director.services.services()[0]?.key;
  assert.ok(key);
  r.director.exec({ op: "del-dest", key, addr: A, port: 80 }); // operator: ipvsadm -d
  r.verdict.set(`${A}:80`, false);
  await r.timers.advance(7000); // down: del-dest finds nothing
  assert.deepEqual(r.dests(), [`${B}:80=1`]);
  assert.ok(r.logs.some((l) => l.includes("Destination already removed")));
  // Operator adds it back by hand with weight 5; the server comes up: add-dest → EEXIST → edit.
  const spec = r.director.services.services()[0]?.dests[0]?.spec();
  assert.ok(spec);
  r.director.exec({ op: "add-dest", key, dest: { ...spec, addr: A, weight: 5 } });
  r.verdict.set(`${A}:80`, true);
  await r.timers.advance(5000);
  assert.deepEqual(r.dests(), [`${A}:80=1`, `${B}:80=1`]);
  // The service deleted by hand: transitions are logged and ignored.
  r.director.exec({ op: "del-service", key });
  r.verdict.set(`${B}:80`, false);
  await r.timers.advance(7000);
  assert.deepEqual(r.director.services.services(), []);
  assert.ok(r.logs.some((l) => l.includes("not in the table")));
});

test("misc_dynamic weights reach the destination and count toward the quorum", async (t) => {
  const r = makeRig();
  t.after(() => r.sup.stop());
  const text = `virtual_server 127.0.0.100 80 {
  delay_loop 5
  lb_algo wrr
  lb_kind NAT
  protocol TCP
  quorum 4
  sorry_server 127.0.0.1 80
  real_server ${A} 8081 {
    weight 2
    MISC_CHECK {
      misc_path "/bin/true"
      misc_dynamic
    }
  }
  real_server ${B} 8082 {
    weight 2
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`;
  await r.applyConfig(r.load(text));
  r.dynamic.set(`${A}:8081`, 5);
  await r.timers.advance(0);
  assert.deepEqual(r.dests(), [`${A}:8081=5`, `${B}:8082=2`]);
  // Dynamic weight 1 + 2 = 3 < quorum 4: the sorry server takes over.
  r.dynamic.set(`${A}:8081`, 1);
  await r.timers.advance(5000);
  assert.deepEqual(r.dests(), ["127.0.0.1:80=1"]);
  r.dynamic.set(`${A}:8081`, 3);
  await r.timers.advance(5000);
  assert.deepEqual(r.dests(), [`${A}:8081=3`, `${B}:8082=2`]);
});

test("with the plane's adaptation (-g → masq) an unchanged reload sends no request", async (t) => {
  const timers = new ManualTimers();
  const clock = { now: () => timers.now };
  const director = new Director({ registry: createDefaultRegistry(), env: { clock, random: () => 0 } });
  const adaptDest = (_k: unknown, d: DestSpec): DestSpec => (d.fwd === "droute" ? { ...d, fwd: "masq" } : d);
  const sup = new HealthSupervisor({
    executor: director,
    log: createLogger({ write: () => {} }),
    clock,
    timers,
    random: () => 0,
    createChecker: (spec) => ({ type: spec.type, check: async () => ({ ok: true, reason: "up", latencyMs: 0 }) }),
    adaptDest,
  });
  t.after(() => sup.stop());
  const r = loadConfigText("/tmp/keepalived.conf", conf([], [{ addr: A }, { addr: B }]), "keepalived");
  assert.ok("config" in r);
  await sup.apply(r.config);
  const reqs = reconcile(sup.effective(r.config.desired), director.services, { adaptDest });
  director.exec({ op: "batch", requests: reqs });
  await timers.advance(0);
  const before = sup.requests;
  await sup.apply(r.config);
  assert.equal(sup.requests, before);
  assert.deepEqual(
    director.services.services()[0]?.dests.map((d) => d.spec().fwd),
    ["masq", "masq"],
  );
});
