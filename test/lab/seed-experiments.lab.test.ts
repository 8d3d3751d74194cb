// The seed experiments of `tvs lab` beyond the four forwarding methods, each run through the
// registry as the command runs it (real namespaces, real kernels' TCP stacks, tvsd on the packet
// plane): each must show what its seed shows, print ipvsadm's tables, and leave no namespace behind.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { SEED001_ADDRESSES } from "../../src/lab/addresses.ts";
import type { LabOutcome, LabValues } from "../../src/lab/lab-experiment.ts";
import { findExperiment } from "../../src/lab/registry.ts";

const root = process.getuid?.() === 0;
const TVS = join(import.meta.dirname, "..", "..", "bin", "tvs.js");

/** Run a registered experiment with its defaults and `values`; its printed lines and summary. */
async function runLab(name: string, values: LabValues = {}): Promise<{ out: string; outcome: LabOutcome }> {
  const entry = findExperiment(name);
  assert.ok(entry, `${name} is registered`);
  const exp = await entry.load();
  const all: LabValues = {};
  for (const [k, o] of Object.entries(exp.options))
    if (o.type === "string" && o.default !== undefined) all[k] = o.default;
  const lines: string[] = [];
  const outcome = await exp.run(
    { ...all, ...values },
    { log: (l) => lines.push(l), keep: false, addresses: SEED001_ADDRESSES },
  );
  return { out: lines.join("\n"), outcome };
}

function assertCleanedUp(summary: object): void {
  const made = (summary as { namespaces?: string[] }).namespaces ?? [];
  assert.ok(made.length > 0, "the summary names the namespaces it made");
  const now = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
  for (const ns of made) assert.ok(!now.includes(ns), `namespace ${ns} removed`);
}

test(
  "lab persistence (seed 003): -s wlc -p 600 sticks, spreads others, lists the template, -d moves the client",
  {
    skip: root ? false : "needs root",
    timeout: 120_000,
  },
  async () => {
    const { out, outcome } = await runLab("persistence");
    const s = outcome.summary as Record<string, unknown>;
    assert.equal(s.allOnOne, true, "20 requests on one real server");
    assert.deepEqual(Object.keys(s.spread as object).sort(), ["rs1", "rs2"], "other clients on both real servers");
    assert.match(String(s.template), /NONE\s+192\.168\.122\.70:0\s+192\.168\.122\.22:80\s+192\.168\.122\.4[56]:80/);
    assert.equal(s.moved, true, "the client moves after -d");
    assert.equal(outcome.ok, true);
    assert.match(out, /^TCP {2}192\.168\.122\.22:80 wlc persistent 600$/m, "ipvsadm's service line");
    assert.match(out, /PersistConn ActiveConn InActConn/, "the --persistent-conn header");
    assertCleanedUp(outcome.summary);
  },
);

test(
  "lab ldirectord (seed 003): a stopped web server leaves in checkinterval, returns, the fallback comes in",
  {
    skip: root ? false : "needs root",
    timeout: 120_000,
  },
  async () => {
    const { out, outcome } = await runLab("ldirectord", { "fallback-host": "192.168.122.60" });
    const s = outcome.summary as {
      boundMs: number;
      removedMs: number | null;
      returnedMs: number | null;
      fallbackMs: number | null;
      steps: { step: string; table: string; answer: string }[];
    };
    assert.equal(s.boundMs, 1000, "checkinterval 1 s × (retries 0 + 1)");
    assert.ok(s.removedMs !== null && s.removedMs <= s.boundMs + 3000, `removed after ${s.removedMs} ms`);
    assert.ok(s.returnedMs !== null, "returned after one good check");
    assert.ok(s.fallbackMs !== null, "fallback in");
    const table = (step: string) => s.steps.find((x) => x.step === step)?.table ?? "";
    assert.doesNotMatch(table("stop rs1"), /192\.168\.122\.45:80/, "rs1 gone (quiescent=no removes it)");
    assert.match(table("start rs1"), /-> 192\.168\.122\.45:80 {12}Route {3}1 /, "rs1 back with weight 1");
    assert.match(table("stop all"), /^ {2}-> 192\.168\.122\.60:80 {12}Route {3}1 /m, "only the fallback");
    assert.equal(s.steps.find((x) => x.step === "stop all")?.answer, "fallback", "the fallback answers the client");
    assert.match(out, /^TCP {2}192\.168\.122\.22:80 rr persistent 600$/m);
    assert.equal(outcome.ok, true);
    assertCleanedUp(outcome.summary);
  },
);

test(
  "lab ldirectord with the seed's own file (fallback=127.0.0.1:80 gate): listed, and tvs status says it cannot answer",
  { skip: root ? false : "needs root", timeout: 120_000 },
  async () => {
    const { out, outcome } = await runLab("ldirectord");
    const s = outcome.summary as {
      config: string;
      tvsNote: string | null;
      steps: { step: string; table: string; answer: string }[];
    };
    assert.match(s.config, /^ {8}fallback=127\.0\.0\.1:80 gate$/m, "the seed's fallback line");
    assert.match(s.config, /^quiescent=no$/m);
    const all = s.steps.find((x) => x.step === "stop all");
    assert.match(all?.table ?? "", /^ {2}-> 127\.0\.0\.1:80 {17}Route {3}1 /m, "the fallback listed as ipvsadm would");
    assert.match(s.tvsNote ?? "", /^Real server 127\.0\.0\.1:80 of tcp 192\.168\.122\.22:80 is this director itself/);
    assert.match(out, /^# tvs status: Real server 127\.0\.0\.1:80/m);
    assert.equal(outcome.ok, true);
    assertCleanedUp(outcome.summary);
  },
);

test(
  "lab pitfalls (seed 001): NAT without a route back and DR with the director's address fail as the seed's did, then work",
  {
    skip: root ? false : "needs root",
    timeout: 180_000,
  },
  async () => {
    const { out, outcome } = await runLab("pitfalls");
    type Case = {
      broken: string[];
      fixed: string[];
      evidence: string[];
      diagnosis: string;
      tvsNote?: string;
      reproduced: boolean;
    };
    const s = outcome.summary as { nat: Case; dr: Case };
    assert.deepEqual(s.nat.broken, ["", "", "", ""], "NAT without a route back: no answer");
    assert.match(s.nat.evidence[0] ?? "", /[1-9]\d* packets from the real servers' own addresses, 0 from the VIP/);
    assert.deepEqual(s.nat.fixed, ["rs2", "rs1", "rs2", "rs1"], "NAT with the route back: rr answers");
    assert.deepEqual(s.dr.broken, ["", "", "", ""], "DR with VIP = director: no answer");
    assert.match(
      s.dr.evidence[0] ?? "",
      /[1-9]\d* ARP requests "who-has 192\.168\.122\.45 tell 192\.168\.122\.30", 0 replies/,
    );
    assert.deepEqual(s.dr.fixed, ["rs2", "rs1", "rs2", "rs1"], "DR with a VIP of its own: rr answers");
    assert.equal(out.split("\n").filter((l) => l.startsWith("# diagnosis: ")).length, 2, "one diagnosis line each");
    // tvs status names each mistake from the director's side (src/control/pitfalls.ts).
    assert.match(
      s.nat.tvsNote ?? "",
      /^NAT real server 192\.168\.122\.4[56]:80 of tcp 192\.168\.122\.22:80 got \d+ packets and no reply came back through this director/,
    );
    assert.match(
      s.dr.tvsNote ?? "",
      /^VIP 192\.168\.122\.30 of tcp 192\.168\.122\.30:80 is also this host's own address: DR\/TUN real servers/,
    );
    assert.equal(outcome.ok, true);
    assertCleanedUp(outcome.summary);
  },
);

test(
  "lab compare (seed 004): the four methods' table, measured",
  {
    skip: root ? false : "needs root",
    timeout: 300_000,
  },
  async () => {
    const { out, outcome } = await runLab("compare", { requests: "6", "bulk-mb": "20" });
    type M = {
      mode: string;
      clientAddressAtRealServer: string;
      repliesPassDirector: boolean;
      directorOutPackets: number;
      capturedReplyPackets: number;
      portMapping: boolean;
      portMappingListed: string;
      realServerNeeds: string[];
      bulkIntact: boolean;
      bulkMBps: number;
    };
    const s = outcome.summary as { modes: M[]; table: string };
    const by = Object.fromEntries(s.modes.map((m) => [m.mode, m])) as Record<string, M>;
    assert.deepEqual(Object.keys(by), ["nat", "dr", "tun", "fullnat"], "run in turn");
    for (const mode of ["nat", "dr", "tun"]) assert.equal(by[mode]?.clientAddressAtRealServer, "192.168.122.70");
    assert.equal(by.fullnat?.clientAddressAtRealServer, "192.168.122.31", "FULLNAT: the director's local address");
    for (const mode of ["nat", "fullnat"]) {
      assert.equal(by[mode]?.repliesPassDirector, true);
      assert.ok((by[mode]?.directorOutPackets ?? 0) > 0 && (by[mode]?.capturedReplyPackets ?? 0) > 0);
      assert.equal(by[mode]?.portMapping, true, `${mode} maps 8000 → 8080`);
    }
    for (const mode of ["dr", "tun"]) {
      assert.equal(by[mode]?.directorOutPackets, 0);
      assert.equal(by[mode]?.capturedReplyPackets, 0);
      assert.equal(by[mode]?.portMapping, false);
      assert.match(by[mode]?.portMappingListed ?? "", /:8000$/, "-g/-i keep the service's port");
    }
    assert.match(by.nat?.realServerNeeds.join() ?? "", /route to the client via 192\.168\.122\.30/);
    assert.match(by.dr?.realServerNeeds.join() ?? "", /VIP on lo, arp_ignore=1 arp_announce=2/);
    assert.match(by.tun?.realServerNeeds.join() ?? "", /IPIP decapsulation/);
    assert.deepEqual(by.fullnat?.realServerNeeds, ["nothing"]);
    for (const m of s.modes) assert.ok(m.bulkIntact && m.bulkMBps > 0, `${m.mode} bulk intact`);
    assert.match(out, /^ +NAT +DR +TUN +FULLNAT$/m, "the table's header");
    assert.equal(outcome.ok, true);
    assertCleanedUp(outcome.summary);
  },
);

test(
  "tvs lab dr --addresses seed000 --json (seed 000): its own addresses, one JSON line, rr over .55 and .57",
  {
    skip: root ? false : "needs root",
    timeout: 120_000,
  },
  async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [TVS, "lab", "dr", "--addresses", "seed000", "--requests", "4", "--json"],
      { timeout: 110_000 },
    );
    const lines = stdout.trimEnd().split("\n");
    assert.equal(lines.length, 1, "--json prints one line and nothing else");
    const s = JSON.parse(lines[0] ?? "") as {
      sequence: string[];
      repliesBypassedDirector: boolean;
      stats: string;
      namespaces: string[];
    };
    assert.deepEqual(s.sequence, ["rs2", "rs1", "rs2", "rs1"]);
    assert.equal(s.repliesBypassedDirector, true);
    assert.match(s.stats, /^TCP {2}172\.20\.120\.53:80 /m, "seed 000's VIP");
    assert.match(s.stats, /^ {2}-> 172\.20\.120\.55:80 /m);
    assert.match(s.stats, /^ {2}-> 172\.20\.120\.57:80 /m);
    assertCleanedUp(s);
  },
);
