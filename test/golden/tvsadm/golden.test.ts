// Golden tests for tvsadm: each cases/<name>.case sets up an in-process Director, runs tvsadm's
// main() once, and compares stdout, stderr, the exit status and the rules left in the table
// (`-S -n` afterwards) with cases/<name>.expected, byte for byte. A failing command must leave the
// Director exactly as it was (checked on the full snapshot). GOLDEN_UPDATE=1 rewrites .expected.
//
// Case file lines:
//   setup <ipvsadm args>                 run through tvsadm first; must exit 0
//   stats|rates [-t|-u|-f svc [-r dest]|global] k=v ...   set counters / estimator read-outs
//   dconns -t svc -r dest active=N inact=N persist=N       set a destination's connection counts
//   conn PROTO caddr:port vaddr:port daddr:port STATE SECONDS [template] [fwmark=N]
//   sync                                 attach a sync-daemon control (else start/stop: EOPNOTSUPP)
//   stdin / ... / end                    what -R reads
//   run <args>                           the command under test (args split on blanks)
//   program <name>                       argv[0] for help texts (default ipvsadm)

import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { main } from "../../../src/cli/tvsadm/main.ts";
import { parseIpvsadmArgv } from "../../../src/config/ipvsadm-grammar.ts";
import type { ConnLike } from "../../../src/control/executor.ts";
import type { Counters } from "../../../src/core/stats/counters.ts";
import { DirectorClient, FakeSync, type TestBed, testBed, testResolver } from "./harness.ts";

const dir = join(import.meta.dirname, "cases");
const update = process.env.GOLDEN_UPDATE === "1";

class Sink {
  text = "";
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

async function target(bed: TestBed, args: string[]): Promise<{ counters: Counters; dest: boolean }> {
  if (args[0] === "global") return { counters: bed.director.services.stats, dest: false };
  const hasDest = args.includes("-r");
  const p = await parseIpvsadmArgv([hasDest ? "-d" : "-D", ...args], { resolver: testResolver() });
  const svc = p.key && bed.director.services.get(p.key);
  if (!svc) throw new Error(`No service for ${args.join(" ")}`);
  if (!hasDest) return { counters: svc.stats, dest: false };
  const d = p.dest && svc.findDest(p.dest.addr, p.dest.port);
  if (!d) throw new Error(`No destination for ${args.join(" ")}`);
  return { counters: d.stats, dest: true };
}

function splitEndpoint(s: string): [string, number] {
  const i = s.lastIndexOf(":");
  const addr = s.slice(0, i).replace(/^\[|\]$/g, "");
  return [addr, Number(s.slice(i + 1))];
}

async function runCase(name: string): Promise<string> {
  const lines = readFileSync(join(dir, `${name}.case`), "utf8").split("\n");
  const bed = await testBed();
  const client = new DirectorClient(bed.director);
  const resolver = testResolver();
  let program = "ipvsadm";
  let stdin = "";
  let runArgs: string[] | undefined;
  const io = (out: Sink, err: Sink) => ({
    client,
    stdout: out,
    stderr: err,
    resolver,
    program,
    readStdin: async () => stdin,
  });
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === "" || line.startsWith("#")) continue;
    const [word, ...args] = line.trim().split(/\s+/) as [string, ...string[]];
    if (word === "setup") {
      const out = new Sink();
      const err = new Sink();
      const code = await main(args, io(out, err));
      assert.equal(code, 0, `setup "${args.join(" ")}" failed: ${err.text}`);
    } else if (word === "stats" || word === "rates") {
      const kv = args.filter((a) => a.includes("="));
      const { counters } = await target(
        bed,
        args.filter((a) => !a.includes("=")),
      );
      const vals = Object.fromEntries(kv.map((a) => a.split("=") as [string, string]));
      if (word === "stats") {
        counters.conns = Number(vals.conns ?? 0);
        counters.inPkts = Number(vals.inpkts ?? 0);
        counters.outPkts = Number(vals.outpkts ?? 0);
        counters.inBytes = Number(vals.inbytes ?? 0);
        counters.outBytes = Number(vals.outbytes ?? 0);
      } else {
        bed.rates.set(counters, {
          cps: Number(vals.cps ?? 0),
          inPps: Number(vals.inpps ?? 0),
          outPps: Number(vals.outpps ?? 0),
          inBps: Number(vals.inbps ?? 0),
          outBps: Number(vals.outbps ?? 0),
        });
      }
    } else if (word === "dconns") {
      const p = await parseIpvsadmArgv(["-d", ...args.filter((a) => !a.includes("="))], { resolver });
      const d = p.key && p.dest && bed.director.services.get(p.key)?.findDest(p.dest.addr, p.dest.port);
      if (!d) throw new Error(`No destination in "${line}"`);
      for (const a of args.filter((x) => x.includes("="))) {
        const [k, v] = a.split("=") as [string, string];
        if (k === "active") d.activeConns = Number(v);
        if (k === "inact") d.inactConns = Number(v);
        if (k === "persist") d.persistConns = Number(v);
      }
    } else if (word === "conn") {
      const [proto, c, v, dd, state, secs, ...flags] = args as [
        string,
        string,
        string,
        string,
        string,
        string,
        ...string[],
      ];
      const [caddr, cport] = splitEndpoint(c);
      const [vaddr, vport] = splitEndpoint(v);
      const [daddr, dport] = splitEndpoint(dd);
      const fwm = flags.find((f) => f.startsWith("fwmark="));
      const conn: ConnLike = {
        protocol: proto.toLowerCase() as ConnLike["protocol"],
        caddr,
        cport,
        vaddr,
        vport,
        daddr,
        dport,
        stateName: state,
        expiresAt: bed.clock.now() + Number(secs) * 1000 + 400,
        template: flags.includes("template"),
        fwmark: fwm ? Number(fwm.slice(7)) : 0,
      };
      bed.conns.list.push(conn);
    } else if (word === "sync") {
      bed.director.sync = new FakeSync();
    } else if (word === "program") {
      program = args[0] ?? "ipvsadm";
    } else if (word === "stdin") {
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== "end"; i++) body.push(lines[i] as string);
      stdin = `${body.join("\n")}\n`;
    } else if (word === "run") {
      runArgs = args;
    } else throw new Error(`Unknown directive "${word}" in ${name}.case`);
  }
  if (!runArgs) throw new Error(`${name}.case has no run line`);
  const before = JSON.stringify(bed.director.snapshot({ conns: true }));
  const out = new Sink();
  const err = new Sink();
  const code = await main(runArgs, io(out, err));
  if (code !== 0) {
    assert.equal(JSON.stringify(bed.director.snapshot({ conns: true })), before, "a failed command changed the state");
  }
  const state = new Sink();
  await main(["-S", "-n"], io(state, new Sink()));
  return `--- exit ${code}\n--- stdout\n${out.text}--- stderr\n${err.text}--- state (-S -n)\n${state.text}`;
}

const cases = readdirSync(dir)
  .filter((f) => f.endsWith(".case"))
  .map((f) => f.slice(0, -5))
  .sort();

for (const name of cases) {
  test(`tvsadm golden: ${name}`, async () => {
    const got = await runCase(name);
    const file = join(dir, `${name}.expected`);
    if (update) writeFileSync(file, got);
    assert.equal(got, readFileSync(file, "utf8"));
  });
}
