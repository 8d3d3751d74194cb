// tvsd end to end on the socket data plane: a real tvsd child process on a temporary control
// socket, driven by the real tvsadm, forwarding real TCP connections on loopback to small real
// servers. Scheduling outcomes are compared with what IPVS does for the same sequence (new
// destinations go to the head of the list, so rr starts with the last one added).

import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import {
  adm,
  count,
  freePort,
  type NameServer,
  nameServer,
  openClient,
  startTvsd,
  type Tvsd,
  waitFor,
  whoAnswers,
} from "./tvsd-harness.ts";

let tvsd: Tvsd;
let rs1: NameServer;
let rs2: NameServer;

before(async () => {
  rs1 = await nameServer("rs1");
  rs2 = await nameServer("rs2");
  tvsd = await startTvsd();
});

after(async () => {
  await tvsd?.stop();
  await rs1?.close();
  await rs2?.close();
});

/** A fresh VIP port with a service of the given options and rs1, rs2 (added in that order). */
async function service(
  opts: string[],
  dests: [NameServer, string[]][] = [
    [rs1, []],
    [rs2, []],
  ],
): Promise<string> {
  const port = await freePort();
  const vip = `127.0.0.1:${port}`;
  await adm(tvsd, "-A", "-t", vip, ...opts);
  for (const [rs, o] of dests) await adm(tvsd, "-a", "-t", vip, "-r", `127.0.0.1:${rs.port}`, "-m", ...o);
  return vip;
}

function portOf(vip: string): number {
  return Number(vip.split(":")[1]);
}

async function sequence(vip: string, n: number, localAddress?: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++)
    out.push(await whoAnswers(portOf(vip), localAddress === undefined ? {} : { localAddress }));
  return out;
}

async function destView(vip: string, rs: NameServer) {
  const snap = await tvsd.snapshot();
  const svc = snap.services.find((s) => s.key.kind === "vip" && `${s.key.addr}:${s.key.port}` === vip);
  return svc?.dests.find((d) => d.spec.port === rs.port);
}

describe("scheduling through tvsd", () => {
  test("rr alternates, starting with the destination added last (kernel list order)", async () => {
    const vip = await service(["-s", "rr"]);
    const seq = await sequence(vip, 6);
    assert.deepEqual(seq, ["rs2", "rs1", "rs2", "rs1", "rs2", "rs1"]);
    await adm(tvsd, "-D", "-t", vip);
  });

  test("wrr with weights 2:1 serves 2/3 and 1/3", async () => {
    const vip = await service(
      ["-s", "wrr"],
      [
        [rs1, ["-w", "2"]],
        [rs2, ["-w", "1"]],
      ],
    );
    const seq = await sequence(vip, 30);
    assert.deepEqual(count(seq), { rs1: 20, rs2: 10 });
    await adm(tvsd, "-D", "-t", vip);
  });

  test("wlc with weights 3:1 and held connections keeps active counts near 3:1", async () => {
    const vip = await service(
      ["-s", "wlc"],
      [
        [rs1, ["-w", "3"]],
        [rs2, ["-w", "1"]],
      ],
    );
    const held = [];
    for (let i = 0; i < 8; i++) held.push(await openClient(portOf(vip)));
    assert.deepEqual(count(held.map((h) => h.name)), { rs1: 6, rs2: 2 });
    const v1 = await waitFor("active counts", async () => {
      const d = await destView(vip, rs1);
      return d && d.activeConns === 6 ? d : undefined;
    });
    assert.equal(v1.inactConns, 0);
    for (const h of held) await h.close();
    // Closed connections linger in TIME_WAIT and count as inactive, as in IPVS.
    const after1 = await waitFor("inactive after close", async () => {
      const d = await destView(vip, rs1);
      return d && d.activeConns === 0 ? d : undefined;
    });
    assert.equal(after1.inactConns, 6);
    const snap = await tvsd.snapshot(true);
    const mine = (snap.conns ?? []).filter((c) => `${c.vaddr}:${c.vport}` === vip);
    assert.equal(mine.length, 8);
    assert.ok(
      mine.every((c) => c.state === "TIME_WAIT"),
      JSON.stringify(mine.map((c) => c.state)),
    );
    await adm(tvsd, "-D", "-t", vip);
  });
});

describe("persistence", () => {
  test("one client address sticks to one real server; another is scheduled anew", async () => {
    const vip = await service(["-s", "rr", "-p", "60"]);
    const a = await sequence(vip, 4, "127.0.0.2");
    const b = await sequence(vip, 4, "127.0.0.3");
    assert.equal(new Set(a).size, 1);
    assert.equal(new Set(b).size, 1);
    assert.notEqual(a[0], b[0]);
    const out = await adm(tvsd, "-L", "-n", "-c");
    assert.match(out, /127\.0\.0\.2:0\s/);
    await adm(tvsd, "-D", "-t", vip);
  });

  test("a /24 netmask groups 127.0.0.2 and 127.0.0.3 on one real server", async () => {
    const vip = await service(["-s", "rr", "-p", "60", "-M", "255.255.255.0"]);
    const a = await sequence(vip, 3, "127.0.0.2");
    const b = await sequence(vip, 3, "127.0.0.3");
    assert.equal(new Set([...a, ...b]).size, 1);
    await adm(tvsd, "-D", "-t", vip);
  });
});

describe("destination changes with open connections", () => {
  test("weight 0 quiesces: no new connections, the open one continues", async () => {
    const vip = await service(["-s", "rr"]);
    const held = await openClient(portOf(vip));
    const other = held.name === "rs1" ? rs2 : rs1;
    const quiet = held.name === "rs1" ? rs1 : rs2;
    await adm(tvsd, "-e", "-t", vip, "-r", `127.0.0.1:${quiet.port}`, "-m", "-w", "0");
    const seq = await sequence(vip, 4);
    assert.deepEqual(seq, [other.name, other.name, other.name, other.name]);
    assert.equal(await held.echo("still here"), "still here");
    await held.close();
    await adm(tvsd, "-D", "-t", vip);
  });

  test("upper threshold: an overloaded destination gets no new connections", async () => {
    const port = await freePort();
    const vip = `127.0.0.1:${port}`;
    await adm(tvsd, "-A", "-t", vip, "-s", "rr");
    await adm(tvsd, "-a", "-t", vip, "-r", `127.0.0.1:${rs1.port}`, "-m", "-x", "1");
    const held = await openClient(port);
    assert.equal(held.name, "rs1");
    await adm(tvsd, "-a", "-t", vip, "-r", `127.0.0.1:${rs2.port}`, "-m");
    assert.deepEqual(await sequence(vip, 4), ["rs2", "rs2", "rs2", "rs2"]);
    const out = await adm(tvsd, "-L", "-n", "--thresholds", "-t", vip);
    assert.match(out, new RegExp(`127\\.0\\.0\\.1:${rs1.port}\\s+1\\s+0\\s+1\\s+0`));
    await held.close();
    await adm(tvsd, "-D", "-t", vip);
  });

  test("removing a destination lets its open connection finish", async () => {
    const vip = await service(["-s", "rr"]);
    const held = await openClient(portOf(vip));
    const gone = held.name === "rs1" ? rs1 : rs2;
    await adm(tvsd, "-d", "-t", vip, "-r", `127.0.0.1:${gone.port}`);
    const listing = await adm(tvsd, "-L", "-n", "-t", vip);
    assert.ok(!listing.includes(`127.0.0.1:${gone.port}`), listing);
    assert.equal(await held.echo("after removal"), "after removal");
    const seq = await sequence(vip, 3);
    assert.ok(
      seq.every((n) => n !== gone.name),
      JSON.stringify(seq),
    );
    await held.close();
    await adm(tvsd, "-D", "-t", vip);
  });

  test("a destination that refuses: the client is reset, nothing is relayed", async () => {
    const dead = await freePort();
    const port = await freePort();
    const vip = `127.0.0.1:${port}`;
    await adm(tvsd, "-A", "-t", vip, "-s", "rr");
    await adm(tvsd, "-a", "-t", vip, "-r", `127.0.0.1:${dead}`, "-m");
    await assert.rejects(whoAnswers(port), /ECONNRESET|closed before a name/);
    const snap = await tvsd.snapshot(true);
    const c = (snap.conns ?? []).find((x) => x.vport === port && !x.template);
    assert.equal(c?.state, "CLOSE");
    await adm(tvsd, "-D", "-t", vip);
  });
});

describe("IPv6", () => {
  test("an IPv6 VIP relays to IPv6 real servers; -c shows the addresses", async () => {
    const a = await nameServer("v6a", "::1");
    const b = await nameServer("v6b", "::1");
    try {
      const port = await freePort("::1");
      const vip = `[::1]:${port}`;
      await adm(tvsd, "-A", "-t", vip, "-s", "rr");
      await adm(tvsd, "-a", "-t", vip, "-r", `[::1]:${a.port}`, "-m");
      await adm(tvsd, "-a", "-t", vip, "-r", `[::1]:${b.port}`, "-m");
      const seq = [];
      for (let i = 0; i < 4; i++) seq.push(await whoAnswers(port, { host: "::1" }));
      assert.deepEqual(seq, ["v6b", "v6a", "v6b", "v6a"]);
      const out = await adm(tvsd, "-L", "-n", "-c");
      assert.match(out, new RegExp(`\\[::1\\]:${port}`));
      await adm(tvsd, "-D", "-t", vip);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("closing", () => {
  test("clients that send FIN at once (before the real server answers) end in TIME_WAIT, none stuck", async () => {
    const vip = await service(["-s", "rr"]);
    const port = portOf(vip);
    await Promise.all(
      Array.from(
        { length: 10 },
        () =>
          new Promise<void>((resolve, reject) => {
            const s = net.connect(port, "127.0.0.1", () => s.end());
            s.on("data", () => {});
            s.on("error", reject);
            s.on("close", () => resolve());
          }),
      ),
    );
    const states = await waitFor("every entry to finish", async () => {
      const snap = await tvsd.snapshot(true);
      const mine = (snap.conns ?? []).filter((c) => c.vport === port).map((c) => c.state);
      return mine.length === 10 && mine.every((st) => st === "TIME_WAIT") ? mine : undefined;
    });
    assert.equal(states.length, 10);
    const status = await tvsd.client.status();
    assert.ok(status.notes.includes("Open flows on the data plane: 0"), JSON.stringify(status.notes));
    await adm(tvsd, "-D", "-t", vip);
  });
});

describe("counters and listings", () => {
  test("--stats counts connections, packets (reads) and bytes per service and destination", async () => {
    const vip = await service(["-s", "rr"]);
    const c = await openClient(portOf(vip));
    await c.echo("0123456789");
    await c.close();
    const snap = await tvsd.snapshot();
    const svc = snap.services.find((s) => s.key.kind === "vip" && s.key.port === portOf(vip));
    assert.ok(svc);
    assert.equal(svc.stats.conns, 1);
    assert.equal(svc.stats.inBytes, 10);
    // Out: the name line ("rsN\n", 4 bytes) and the 10-byte echo.
    assert.equal(svc.stats.outBytes, 14);
    assert.ok(svc.stats.inPkts >= 1 && svc.stats.outPkts >= 1);
    const out = await adm(tvsd, "-L", "-n", "--stats", "-t", vip);
    assert.match(out, /\s1\s+\d+\s+\d+\s+10\s+14/);
    await adm(tvsd, "-D", "-t", vip);
  });

  test("-i is refused on the socket data plane and names the packet data plane", async () => {
    const vip = await service(["-s", "rr"], []);
    const r = await tvsd.tvsadm("-a", "-t", vip, "-r", "127.0.0.1:9", "-i");
    assert.notEqual(r.code, 0);
    await assert.rejects(
      tvsd.client.exec({
        op: "add-dest",
        key: { kind: "vip", protocol: "tcp", addr: "127.0.0.1", port: portOf(vip) },
        dest: {
          addr: "127.0.0.1",
          port: 9,
          fwd: "tunnel",
          weight: 1,
          uThreshold: 0,
          lThreshold: 0,
          tun: { type: "ipip", port: 0, nocsum: false, csum: false, remcsum: false },
        },
      }),
      (e: Error & { code?: string }) => e.code === "EOPNOTSUPP" && /packet data plane/.test(e.message),
    );
    await adm(tvsd, "-D", "-t", vip);
  });

  test("-g (ipvsadm's default) is carried as masq on the socket data plane", async () => {
    // -g keeps the service's port for the destination, so the VIP sits on another loopback
    // address with rs1's port.
    const vip = `127.0.0.5:${rs1.port}`;
    await adm(tvsd, "-A", "-t", vip, "-s", "rr");
    await adm(tvsd, "-a", "-t", vip, "-r", "127.0.0.1");
    const out = await adm(tvsd, "-L", "-n", "-t", vip);
    assert.match(out, new RegExp(`127\\.0\\.0\\.1:${rs1.port}\\s+Masq`));
    assert.equal(await whoAnswers(rs1.port, { host: "127.0.0.5" }), "rs1");
    await adm(tvsd, "-D", "-t", vip);
  });

  test("a destination equal to its own VIP is refused (it would forward to itself)", async () => {
    const port = await freePort();
    const vip = `127.0.0.1:${port}`;
    await adm(tvsd, "-A", "-t", vip, "-s", "rr");
    const r = await tvsd.tvsadm("-a", "-t", vip, "-r", "127.0.0.1");
    assert.notEqual(r.code, 0);
    const snap = await tvsd.snapshot();
    assert.equal(snap.services.find((s) => s.key.kind === "vip" && s.key.port === port)?.dests.length, 0);
    await adm(tvsd, "-D", "-t", vip);
  });
});
