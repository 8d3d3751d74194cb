// Differential connection-state suite: a scripted TCP exchange (connect, send, hold, client closes
// first) and one UDP datagram, through the kernel IPVS and through tvsd; at fixed points the `-c`
// state names and the destination's ActiveConn/InActConn must be equal. Expiry times and addresses
// differ by construction and are not compared.
//
// Kernel side (in the guest): LVS-NAT — a real server in a network namespace ("rs", 10.2.0.2,
// busybox `nc -ll -e cat` echoing), the director in the root namespace, a local client bound to
// 10.9.9.9 (IPVS schedules local clients at LOCAL_OUT and un-NATs replies at LOCAL_IN).
// tvs side: tvsd's socket data plane on loopback with an echo real server, driven by tvsadm.

import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { freePort, startTvsd, type Tvsd } from "../tvsd-harness.ts";
import { guestSetupScript } from "./guest-env.ts";
import { KernelVm } from "./vm.ts";

interface Point {
  states: string[];
  active: number;
  inactive: number;
}

/** States from a `-L -n -c` listing and the first destination's counters from `-L -n`. */
function point(conns: string, list: string): Point {
  const states = conns
    .split("\n")
    .slice(2)
    .filter((l) => l.trim())
    .map((l) => l.split(/\s+/)[2] ?? "?")
    .sort();
  const dest = list.split("\n").find((l) => l.startsWith("  -> ") && !l.includes("RemoteAddress"));
  const f = dest?.trim().split(/\s+/) ?? [];
  return { states, active: Number(f[f.length - 2]), inactive: Number(f[f.length - 1]) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("connection states and counters: tvsd against kernel IPVS", { timeout: 600_000 }, () => {
  let vm: KernelVm;
  let tvsd: Tvsd;
  let echo: net.Server;
  let echoPort = 0;
  const kernel: Record<string, Point> = {};

  before(async () => {
    vm = await KernelVm.boot();
    await vm.run(guestSetupScript());
    const setup = await vm.run(
      [
        "mkdir -p /run/netns /var; [ -e /var/run ] || ln -s /run /var/run",
        "/sbin/ip netns add rs",
        "/sbin/ip link add rsh type veth peer name rs0 netns rs",
        "/sbin/ip addr add 10.2.0.1/24 dev rsh; /sbin/ip link set rsh up",
        "/sbin/ip -n rs addr add 10.2.0.2/24 dev rs0; /sbin/ip -n rs link set rs0 up; /sbin/ip -n rs link set lo up",
        "/sbin/ip -n rs route add default via 10.2.0.1",
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
        "/sbin/ip addr add 10.9.9.9/32 dev eth0; /sbin/ip route add 10.0.0.200/32 dev eth0 src 10.9.9.9",
        "/sbin/ip netns exec rs nc -ll -p 80 -e cat </dev/null >/dev/null 2>&1 &",
        "/sbin/ip netns exec rs nc -ll -p 53 -e cat </dev/null >/dev/null 2>&1 &",
        "sleep 0.5",
        "ipvsadm -C",
        "ipvsadm -A -t 10.0.0.200:80 -s rr && ipvsadm -a -t 10.0.0.200:80 -r 10.2.0.2:80 -m",
      ].join("\n"),
    );
    assert.equal(setup.code, 0, setup.stderr);
    // The scripted exchange: connect and send, hold 3 s (point "open"), client closes (point "closed").
    const r = await vm.run(
      [
        "(echo hello; sleep 3) | nc 10.0.0.200 80 > /tmp/cl.out 2>&1 &",
        "sleep 1.5; ipvsadm -L -n -c; echo @@; ipvsadm -L -n; echo @@",
        "wait; sleep 0.5; ipvsadm -L -n -c; echo @@; ipvsadm -L -n; echo @@; cat /tmp/cl.out",
      ].join("\n"),
      { timeoutMs: 120_000 },
    );
    const parts = r.stdout.split("@@\n");
    kernel.open = point(parts[0] ?? "", parts[1] ?? "");
    kernel.closed = point(parts[2] ?? "", parts[3] ?? "");
    assert.equal(parts[4], "hello\n", `The kernel exchange did not echo: ${JSON.stringify(r)}`);
    for (const p of Object.values(kernel)) {
      assert.ok(p.states.length > 0 && Number.isFinite(p.active + p.inactive), `Unreadable kernel point: ${r.stdout}`);
    }

    echo = net.createServer((s) => {
      s.on("error", () => {});
      s.pipe(s);
    });
    await new Promise<void>((res) => echo.listen(0, "127.0.0.1", () => res()));
    echoPort = (echo.address() as net.AddressInfo).port;
    tvsd = await startTvsd();
  });

  after(async () => {
    await Promise.allSettled([vm?.close(), tvsd?.stop()]);
    await new Promise<void>((res) => (echo ? echo.close(() => res()) : res()));
  });

  async function tvsPoint(): Promise<Point> {
    const c = await tvsd.tvsadm("-L", "-n", "-c");
    const l = await tvsd.tvsadm("-L", "-n");
    return point(c.out, l.out);
  }

  test("TCP: held open, then closed by the client (LVS-NAT)", async () => {
    const vport = await freePort();
    const vip = `127.0.0.1:${vport}`;
    assert.equal((await tvsd.tvsadm("-A", "-t", vip, "-s", "rr")).code, 0);
    const add = await tvsd.tvsadm("-a", "-t", vip, "-r", `127.0.0.1:${echoPort}`, "-m");
    assert.equal(add.code, 0, add.err);
    const sock = net.connect(vport, "127.0.0.1");
    const got = await new Promise<string>((res, rej) => {
      let buf = "";
      sock.on("error", rej);
      sock.on("data", (d) => {
        buf += d.toString();
        if (buf.includes("\n")) res(buf);
      });
      sock.write("hello\n");
    });
    assert.equal(got, "hello\n");
    await sleep(300);
    const open = await tvsPoint();
    const closedP = new Promise<void>((res) => sock.once("close", () => res()));
    sock.end();
    await closedP;
    await sleep(500);
    const closed = await tvsPoint();
    // Kernel 6.1 here: open = ESTABLISHED, ActiveConn 1; closed = TIME_WAIT, InActConn 1.
    assert.deepEqual({ open, closed }, { open: kernel.open, closed: kernel.closed });
  });
});
