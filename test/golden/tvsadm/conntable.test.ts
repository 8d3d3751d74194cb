// tvsadm against a Director that owns the real connection table: -L counts, -L -c entries
// (connections and persistence templates, expiry as mm:ss) and --set/--timeout reach the table.
import assert from "node:assert/strict";
import { test } from "node:test";
import { main } from "../../../src/cli/tvsadm/main.ts";
import { Director } from "../../../src/control/executor.ts";
import { ManualClock } from "../../../src/core/clock.ts";
import { ConnTable } from "../../../src/core/conn/conn-table.ts";
import { TCP_S_ESTABLISHED } from "../../../src/core/conn/tcp-states.ts";
import { createDefaultRegistry } from "../../../src/core/sched/all.ts";
import { ServiceTable } from "../../../src/core/service-table.ts";
import { DirectorClient, testResolver } from "./harness.ts";

test("listings read the live connection table", async () => {
  const clock = new ManualClock(0);
  const env = { clock, random: () => 0 };
  const services = new ServiceTable(createDefaultRegistry(), env);
  const conns = new ConnTable({ services });
  const director = new Director({ registry: createDefaultRegistry(), env, services, conns });
  const client = new DirectorClient(director);
  const run = async (...args: string[]) => {
    let out = "";
    let err = "";
    const code = await main(args, {
      client,
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      resolver: testResolver(),
      program: "ipvsadm",
    });
    assert.equal(err, "");
    assert.equal(code, 0);
    return out;
  };
  await run("-A", "-t", "10.0.0.100:80", "-s", "rr", "-p", "120");
  await run("-a", "-t", "10.0.0.100:80", "-r", "192.168.10.1:80", "-m");
  const svc = services.get({ kind: "vip", protocol: "tcp", addr: "10.0.0.100", port: 80 });
  assert.ok(svc);
  const flow = {
    family: 4 as const,
    protocol: "tcp" as const,
    saddr: "192.168.56.1",
    sport: 40000,
    daddr: "10.0.0.100",
    dport: 80,
  };
  const c = conns.schedule(svc, flow, clock.now());
  assert.ok(!("error" in c));
  conns.setState(c, TCP_S_ESTABLISHED, clock.now());
  clock.advance(1500);

  assert.equal(
    await run("-L", "-n", "--persistent-conn"),
    "IP Virtual Server version 1.2.1 (size=4096)\n" +
      "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n" +
      "  -> RemoteAddress:Port\n" +
      "TCP  10.0.0.100:80 rr persistent 120\n" +
      "  -> 192.168.10.1:80              1         1           1          0         \n",
  );
  const listing = await run("-L", "-n", "-c");
  const rows = listing.split("\n").filter((l) => l !== "");
  assert.equal(rows[0], "IPVS connection entries");
  assert.equal(rows[1], "pro expire state       source             virtual            destination");
  assert.deepEqual(rows.slice(2).sort(), [
    "TCP 01:58  NONE        192.168.56.1:0     10.0.0.100:80      192.168.10.1:80",
    "TCP 14:58  ESTABLISHED 192.168.56.1:40000 10.0.0.100:80      192.168.10.1:80",
  ]);
  await run("--set", "60", "0", "0");
  assert.equal(await run("-L", "--timeout"), "Timeout (tcp tcpfin udp): 60 120 300\n");
});
