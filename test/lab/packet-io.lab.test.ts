// Proves the native packet path on real interfaces: a veth pair whose far end sits in a fresh
// network namespace (the "client"), the near end driven by the addon's AF_PACKET socket. The
// client's kernel resolves a VIP by ARP and pings it; the packet plane answers both (so frames
// were received with recvmmsg and sent with sendmmsg through uv_poll). Also opens a TUN device
// and a raw IP socket (protocol 112) the way the real-server helper and VRRP will. Needs root
// and the built addon; skips with the reason otherwise. Everything is removed in t.after.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { promisify } from "node:util";
import { ManualClock } from "../../src/core/clock.ts";
import { ConnTable } from "../../src/core/conn/conn-table.ts";
import { destSpec } from "../../src/core/dest.ts";
import { silentLogger } from "../../src/core/log.ts";
import { SchedulerRegistry } from "../../src/core/sched/registry.ts";
import { rr } from "../../src/core/sched/rr.ts";
import { serviceOptions } from "../../src/core/service.ts";
import { ServiceTable } from "../../src/core/service-table.ts";
import { macText } from "../../src/dataplane/packet/codec/eth.ts";
import { createPacketDataPlane } from "../../src/dataplane/packet/index.ts";
import { loadNative, nativeStatus } from "../../src/platform/native-addon.ts";

const exec = promisify(execFile);

function skipReason(): string | undefined {
  if (process.platform !== "linux") return "needs Linux";
  if (process.getuid?.() !== 0) return "needs root (CAP_NET_ADMIN for namespaces, CAP_NET_RAW for packet sockets)";
  const s = nativeStatus();
  if (!s.ok) return s.reason;
  return undefined;
}

const skip = skipReason();

const nullLog = silentLogger;

test("packet plane answers ARP and ping for a VIP over a veth pair", { skip: skip ?? false }, async (t) => {
  const id = randomBytes(3).toString("hex");
  const ns = `tvspio-${id}`;
  const near = `tvd${id}`;
  const far = `tvc${id}`;
  let stopPlane = async () => {};
  t.after(async () => {
    await stopPlane();
    await exec("ip", ["link", "del", near]).catch(() => {});
    await exec("ip", ["netns", "del", ns]).catch(() => {});
  });
  await exec("ip", ["netns", "add", ns]);
  await exec("ip", ["link", "add", near, "type", "veth", "peer", "name", far]);
  await exec("ip", ["link", "set", far, "netns", ns]);
  await exec("ip", ["link", "set", near, "up"]);
  await exec("ip", ["-n", ns, "addr", "add", "10.77.0.2/24", "dev", far]);
  await exec("ip", ["-n", ns, "link", "set", far, "up"]);
  await exec("ip", ["-n", ns, "link", "set", "lo", "up"]);

  const clock = new ManualClock(0);
  const services = new ServiceTable(new SchedulerRegistry([rr]), { clock, random: () => 1 });
  const key = { kind: "vip" as const, protocol: "tcp" as const, addr: "10.77.0.10", port: 80 };
  services.addService(key, serviceOptions(4, { scheduler: "rr" }));
  services.addDest(key, destSpec("10.77.0.21", 80, { fwd: "droute" }));
  const conns = new ConnTable({ services });
  const plane = createPacketDataPlane({
    interface: near,
    services,
    conns,
    clock: { now: () => Date.now() },
    log: nullLog,
    addr4: "10.77.0.1",
    guard: false, // the near end has no addresses: the host kernel has nothing to answer
  });
  await plane.start();
  stopPlane = () => plane.stop(0);

  // The client pings the VIP: its kernel ARPs for it first; both must be answered by the plane.
  const ping = await exec("ip", ["netns", "exec", ns, "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.77.0.10"]).catch(
    (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? "", stderr: e.stderr ?? "" }),
  );
  assert.match(ping.stdout, / 0% packet loss/, `ping through the plane: ${ping.stdout} ${ping.stderr}`);

  const neigh = await exec("ip", ["-n", ns, "neigh", "show", "10.77.0.10"]);
  const n = loadNative();
  const nearMac = macText(n.ifInfo(near).mac);
  assert.match(neigh.stdout, new RegExp(`lladdr ${nearMac}`), `client's neighbour entry: ${neigh.stdout}`);

  const c = plane.counters()!;
  assert.ok(c.arpReplies >= 1, `ARP replies: ${c.arpReplies}`);
  assert.ok(c.replied >= 3, `replies (ARP + 2 echo): ${c.replied}`);
  assert.equal(c.rx, c.forwarded + c.replied + c.consumed + c.ignored + c.dropped);
  // The plane probed the real server (10.77.0.21 does not exist, so no answer is expected).
  assert.ok(c.neighbourProbes >= 1, `neighbour probes: ${c.neighbourProbes}`);
});

test("the addon opens a TUN device and a raw IP socket", { skip: skip ?? false }, async (t) => {
  const n = loadNative();
  const C = n.constants;
  const name = `tvt${randomBytes(3).toString("hex")}`;
  const [fd, actual] = n.openTun(name);
  t.after(() => {
    try {
      n.close(fd);
    } catch {}
  });
  assert.equal(actual, name);
  const link = await exec("ip", ["link", "show", name]);
  assert.match(link.stdout, new RegExp(name));
  n.close(fd);
  await assert.rejects(exec("ip", ["link", "show", name]));

  const raw = n.openRawIp(4, 112);
  try {
    n.setsockopt(raw, C.SOL_IP!, C.IP_MULTICAST_TTL!, 255);
    assert.equal(n.getsockopt(raw, C.SOL_IP!, C.IP_MULTICAST_TTL!), 255);
    n.setsockopt(raw, C.SOL_SOCKET!, C.SO_BINDTODEVICE!, Buffer.from("lo\0"));
  } finally {
    n.close(raw);
  }
});
