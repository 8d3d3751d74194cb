// sysctl stateless_syn through the Daemon on a packet plane (memory io): accepted before any service
// exists (as tvsd's --sysctl is) and when one DR service under mh qualifies; refused, naming each
// service and why, when services exist and none qualifies (rr, NAT); the socket plane refuses it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { destSpec } from "../core/dest.ts";
import { silentLogger } from "../core/log.ts";
import { serviceOptions } from "../core/service.ts";
import { parseMac } from "../dataplane/packet/codec/eth.ts";
import { MemoryPacketIo } from "../dataplane/packet/memory-io.ts";
import { LoopPacketPlane } from "../dataplane/packet/plane.ts";
import { defaultProxyOptions } from "../dataplane/proxy/options.ts";
import { ProxyPlane } from "../dataplane/proxy/plane.ts";
import { Daemon } from "./daemon.ts";

function packetDaemon(): Daemon {
  return new Daemon({
    log: silentLogger,
    makePlane: async (deps) =>
      new LoopPacketPlane({
        ...deps,
        interface: "mem0",
        io: new MemoryPacketIo(),
        mac: parseMac("02:00:00:00:00:01"),
        addr4: "10.0.0.1",
        guard: false,
      }),
  });
}

const web = { kind: "vip" as const, protocol: "tcp" as const, addr: "10.0.0.10", port: 80 };
const api = { kind: "vip" as const, protocol: "tcp" as const, addr: "10.0.0.11", port: 80 };

test("stateless_syn=1: accepted with no service yet, refused when no service qualifies, accepted once one does", async (t) => {
  const d = packetDaemon();
  t.after(() => d.stop(0));
  await d.start();
  assert.equal((await d.setSysctl("stateless_syn", 1)).sysctls.stateless_syn, 1, "no service yet: accepted");
  await d.setSysctl("stateless_syn", 0);

  await d.exec({ op: "add-service", key: web, options: serviceOptions(4, { scheduler: "rr" }) });
  await d.exec({ op: "add-dest", key: web, dest: destSpec("10.0.0.21", 80, { fwd: "droute" }) });
  await d.exec({ op: "add-service", key: api, options: serviceOptions(4, { scheduler: "mh" }) });
  await d.exec({ op: "add-dest", key: api, dest: destSpec("10.0.0.22", 80, { fwd: "masq" }) });
  await assert.rejects(
    d.setSysctl("stateless_syn", 1),
    (e: Error) =>
      /stateless_syn=1: no service qualifies/.test(e.message) &&
      /tcp 10\.0\.0\.10:80: scheduler rr is not a pure function of the flow/.test(e.message) &&
      /tcp 10\.0\.0\.11:80: real server 10\.0\.0\.22 is not direct routing/.test(e.message),
  );
  assert.equal(d.sysctlView().sysctls.stateless_syn, 0, "refused: unchanged");

  await d.exec({ op: "edit-service", key: web, options: serviceOptions(4, { scheduler: "mh" }) });
  assert.equal((await d.setSysctl("stateless_syn", 1)).sysctls.stateless_syn, 1, "web now qualifies");
});

test("the socket plane refuses stateless_syn=1", async (t) => {
  const d = new Daemon({ log: silentLogger, makePlane: async (deps) => new ProxyPlane(deps, defaultProxyOptions()) });
  t.after(() => d.stop(0));
  await d.start();
  await assert.rejects(d.setSysctl("stateless_syn", 1), /stateless_syn needs the packet data plane/);
});
