import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ManualClock } from "./clock.ts";
import { type DestSpec, destSpec } from "./dest.ts";
import { CoreError, type CoreErrorCode } from "./errors.ts";
import { createDefaultRegistry } from "./sched/all.ts";
import { seededRandom } from "./sched/harness.ts";
import { type ServiceKey, type ServiceOptions, serviceOptions } from "./service.ts";
import { ServiceTable } from "./service-table.ts";

const VIP: ServiceKey = { kind: "vip", protocol: "tcp", addr: "10.0.0.100", port: 80 };
const VIP6: ServiceKey = { kind: "vip", protocol: "udp", addr: "2001:db8::100", port: 53 };
const MARK: ServiceKey = { kind: "fwmark", fwmark: 7, family: 4 };
const NOMARK: ServiceKey = { kind: "fwmark", fwmark: 8, family: 4 };

function table(): ServiceTable {
  return new ServiceTable(createDefaultRegistry(), { clock: new ManualClock(0), random: seededRandom(1) });
}

/** Everything observable about the table, to show a failed call changed nothing. */
function state(t: ServiceTable): string {
  return JSON.stringify({
    services: t.services().map((s) => ({
      id: s.id,
      options: s.options,
      flags: [...s.schedFlags],
      dests: s.dests.map((d) => ({
        ...d.spec(),
        a: d.activeConns,
        i: d.inactConns,
        o: d.overloaded,
        lw: d.lastWeight,
      })),
    })),
    trash: t.trash().map((d) => d.endpoint),
  });
}

function populated(): ServiceTable {
  const t = table();
  t.addService(VIP, serviceOptions(4, { scheduler: "rr" }));
  t.addService(VIP6, serviceOptions(6, { scheduler: "mh", schedFlags: ["mh-port"] }));
  t.addService(MARK, serviceOptions(4, { scheduler: "wlc", persistent: true }));
  t.addDest(VIP, destSpec("10.1.0.1", 80, { weight: 3 }));
  t.addDest(VIP, destSpec("10.1.0.2", 80, { weight: 2, uThreshold: 10, lThreshold: 5 }));
  t.addDest(VIP6, destSpec("2001:db8::1", 53));
  return t;
}

function expectCode(code: CoreErrorCode, op: string, fn: () => unknown, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CoreError, String(e));
    assert.equal(e.code, code, e.message);
    assert.equal(e.op, op);
    if (message) assert.match(e.message, message);
    return true;
  });
}

const opts = (over: Partial<ServiceOptions> = {}, family: 4 | 6 = 4) => serviceOptions(family, over);
const spec = (addr: string, over: Partial<DestSpec> = {}) => destSpec(addr, 80, over);

describe("ServiceTable errors, and nothing changes when they happen", () => {
  const failures: { name: string; code: CoreErrorCode; op: string; run: (t: ServiceTable) => unknown; msg?: RegExp }[] =
    [
      { name: "service exists", code: "EEXIST", op: "add-service", run: (t) => t.addService(VIP, opts()) },
      {
        name: "service exists (same address spelled otherwise)",
        code: "EEXIST",
        op: "add-service",
        run: (t) => t.addService({ ...VIP6, addr: "2001:DB8:0::100" }, opts({}, 6)),
      },
      {
        name: "unknown scheduler",
        code: "ENOENT",
        op: "add-service",
        run: (t) => t.addService({ ...VIP, port: 81 }, opts({ scheduler: "nope" })),
        msg: /Scheduler "nope" not found/,
      },
      {
        name: "flag the scheduler does not take",
        code: "EINVAL",
        op: "add-service",
        run: (t) => t.addService({ ...VIP, port: 81 }, opts({ scheduler: "rr", schedFlags: ["sh-port"] })),
      },
      {
        name: "unknown persistence engine",
        code: "ENOENT",
        op: "add-service",
        run: (t) => t.addService({ ...VIP, port: 81 }, opts({ pe: "rtsp" })),
      },
      {
        name: "persistence timeout 0",
        code: "ERANGE",
        op: "add-service",
        run: (t) => t.addService({ ...VIP, port: 81 }, opts({ persistent: true, timeout: 0 })),
      },
      {
        name: "IPv6 netmask 0",
        code: "EINVAL",
        op: "add-service",
        run: (t) => t.addService({ ...VIP6, port: 54 }, opts({ netmask: 0 }, 6)),
      },
      {
        name: "IPv4 netmask 33",
        code: "EINVAL",
        op: "add-service",
        run: (t) => t.addService({ ...VIP, port: 81 }, opts({ netmask: 33 })),
      },
      {
        name: "port 0 without persistence",
        code: "EINVAL",
        op: "add-service",
        run: (t) => t.addService({ ...VIP, port: 0 }, opts()),
        msg: /Zero port specified for non-persistent service/,
      },
      {
        name: "bad service address",
        code: "EINVAL",
        op: "add-service",
        run: (t) => t.addService({ ...VIP, addr: "10.0.0.300" }, opts()),
        msg: /"10\.0\.0\.300"/,
      },
      {
        name: "bad port",
        code: "EINVAL",
        op: "add-service",
        run: (t) => t.addService({ ...VIP, port: 65536 }, opts()),
      },
      {
        name: "bad protocol",
        code: "EINVAL",
        op: "add-service",
        run: (t) => t.addService({ ...VIP, protocol: "icmp" as "tcp" }, opts()),
      },
      {
        name: "firewall mark 0",
        code: "EINVAL",
        op: "add-service",
        run: (t) => t.addService({ kind: "fwmark", fwmark: 0, family: 4 }, opts()),
      },
      {
        name: "edit a missing service",
        code: "ESRCH",
        op: "edit-service",
        run: (t) => t.editService({ ...VIP, port: 81 }, opts()),
      },
      {
        name: "edit to an unknown scheduler",
        code: "ENOENT",
        op: "edit-service",
        run: (t) => t.editService(VIP, opts({ scheduler: "nope" })),
      },
      {
        name: "edit with a foreign flag",
        code: "EINVAL",
        op: "edit-service",
        run: (t) => t.editService(VIP6, opts({ scheduler: "mh", schedFlags: ["sh-port"] }, 6)),
      },
      { name: "delete a missing service", code: "ESRCH", op: "del-service", run: (t) => t.deleteService(NOMARK) },
      { name: "zero a missing service", code: "ESRCH", op: "zero", run: (t) => t.zero({ ...VIP, port: 81 }) },
      {
        name: "dest on a missing service",
        code: "ESRCH",
        op: "add-dest",
        run: (t) => t.addDest({ ...VIP, port: 81 }, spec("10.1.0.9")),
      },
      { name: "dest exists", code: "EEXIST", op: "add-dest", run: (t) => t.addDest(VIP, spec("10.1.0.1")) },
      { name: "dest address invalid", code: "EINVAL", op: "add-dest", run: (t) => t.addDest(VIP, spec("10.1.0")) },
      {
        name: "dest port invalid",
        code: "EINVAL",
        op: "add-dest",
        run: (t) => t.addDest(VIP, destSpec("10.1.0.9", -1)),
      },
      {
        name: "weight negative",
        code: "ERANGE",
        op: "add-dest",
        run: (t) => t.addDest(VIP, spec("10.1.0.9", { weight: -1 })),
      },
      {
        name: "weight 2^31",
        code: "ERANGE",
        op: "add-dest",
        run: (t) => t.addDest(VIP, spec("10.1.0.9", { weight: 2 ** 31 })),
      },
      {
        name: "weight fractional",
        code: "ERANGE",
        op: "add-dest",
        run: (t) => t.addDest(VIP, spec("10.1.0.9", { weight: 1.5 })),
      },
      {
        name: "lower threshold above upper",
        code: "ERANGE",
        op: "add-dest",
        run: (t) => t.addDest(VIP, spec("10.1.0.9", { uThreshold: 5, lThreshold: 6 })),
      },
      {
        name: "IPv6 real server for an IPv4 service (not tunnelled)",
        code: "EINVAL",
        op: "add-dest",
        run: (t) => t.addDest(VIP, spec("2001:db8::9")),
      },
      {
        name: "GUE without a tunnel port",
        code: "EINVAL",
        op: "add-dest",
        run: (t) =>
          t.addDest(
            VIP,
            spec("10.1.0.9", {
              fwd: "tunnel",
              tun: { type: "gue", port: 0, nocsum: false, csum: false, remcsum: false },
            }),
          ),
      },
      ...(
        [
          ["ipip with a tunnel port", { type: "ipip", port: 5555, nocsum: false, csum: false, remcsum: false }],
          ["ipip with a checksum option", { type: "ipip", port: 0, nocsum: false, csum: true, remcsum: false }],
          ["gre with a tunnel port", { type: "gre", port: 5555, nocsum: false, csum: false, remcsum: false }],
          ["gre with remcsum", { type: "gre", port: 0, nocsum: false, csum: false, remcsum: true }],
          ["gue with csum and remcsum", { type: "gue", port: 5555, nocsum: false, csum: true, remcsum: true }],
          ["gre with nocsum and csum", { type: "gre", port: 0, nocsum: true, csum: true, remcsum: false }],
        ] as const
      ).map(([name, tun]) => ({
        name: `tunnel options ipvsadm refuses: ${name}`,
        code: "EINVAL" as CoreErrorCode,
        op: "add-dest" as const,
        run: (t: ServiceTable) => t.addDest(VIP, spec("10.1.0.9", { fwd: "tunnel", tun: { ...tun } })),
      })),
      { name: "edit a missing dest", code: "ENOENT", op: "edit-dest", run: (t) => t.editDest(VIP, spec("10.1.0.9")) },
      {
        name: "edit a dest out of range",
        code: "ERANGE",
        op: "edit-dest",
        run: (t) => t.editDest(VIP, spec("10.1.0.1", { weight: -5 })),
      },
      {
        name: "edit on a missing service",
        code: "ESRCH",
        op: "edit-dest",
        run: (t) => t.editDest(NOMARK, spec("10.1.0.1")),
      },
      { name: "delete a missing dest", code: "ENOENT", op: "del-dest", run: (t) => t.deleteDest(VIP, "10.1.0.9", 80) },
      {
        name: "delete a dest by a malformed address",
        code: "ENOENT",
        op: "del-dest",
        run: (t) => t.deleteDest(VIP, "bogus", 80),
      },
      {
        name: "delete on a missing service",
        code: "ESRCH",
        op: "del-dest",
        run: (t) => t.deleteDest(NOMARK, "10.1.0.1", 80),
      },
    ];
  for (const f of failures) {
    it(`${f.code} (${f.op}): ${f.name}`, () => {
      const t = populated();
      const before = state(t);
      expectCode(f.code, f.op, () => f.run(t), f.msg);
      assert.equal(state(t), before);
    });
  }

  it("an IPv6 real server is fine for an IPv4 service when tunnelled", () => {
    const t = populated();
    t.addDest(VIP, spec("2001:db8::9", { fwd: "tunnel" }));
    assert.equal(t.get(VIP)?.dests[0]?.family, 6);
  });
});

describe("ServiceTable behaviour", () => {
  it("new destinations go to the head of the list, as the kernel's list_add", () => {
    const t = populated();
    assert.deepEqual(
      t.get(VIP)?.dests.map((d) => d.addr),
      ["10.1.0.2", "10.1.0.1"],
    );
  });

  it("edits and deletes reach the scheduler (rr sequence follows the list)", () => {
    const t = populated();
    t.addDest(VIP, spec("10.1.0.3"));
    const svc = t.get(VIP)!;
    const f = { family: 4, protocol: "tcp", saddr: "1.1.1.1", sport: 1, daddr: "10.0.0.100", dport: 80 } as const;
    const seq = () => svc.sched.schedule(f)?.addr;
    assert.deepEqual([seq(), seq(), seq()], ["10.1.0.3", "10.1.0.2", "10.1.0.1"]);
    t.editDest(VIP, spec("10.1.0.2", { weight: 0 }));
    assert.deepEqual([seq(), seq()], ["10.1.0.3", "10.1.0.1"]);
    t.deleteDest(VIP, "10.1.0.1", 80);
    assert.deepEqual([seq(), seq()], ["10.1.0.3", "10.1.0.3"]);
  });

  it("a removed destination with connections waits in the trash and is revived with its counters", () => {
    const t = populated();
    const d = t.get(VIP)!.findDest("10.1.0.1", 80)!;
    d.bind("inactive");
    d.becameActive();
    d.stats.conns = 42;
    t.deleteDest(VIP, "10.1.0.1", 80);
    assert.equal(d.available, false);
    assert.deepEqual(
      t.trash().map((x) => x.endpoint),
      ["10.1.0.1:80"],
    );
    assert.equal(t.get(VIP)!.findDest("10.1.0.1", 80), undefined);
    const back = t.addDest(VIP, spec("10.1.0.1", { weight: 9 }));
    assert.equal(back, d);
    assert.deepEqual([back.available, back.weight, back.activeConns, back.stats.conns], [true, 9, 1, 42]);
    assert.equal(t.trash().length, 0);
  });

  it("a removed destination without connections is gone; the trash frees a destination once released", () => {
    const t = populated();
    const a = t.get(VIP)!.findDest("10.1.0.2", 80)!;
    t.deleteDest(VIP, "10.1.0.2", 80);
    assert.equal(t.trash().length, 0);
    assert.notEqual(t.addDest(VIP, spec("10.1.0.2")), a);
    const b = t.get(VIP)!.findDest("10.1.0.1", 80)!;
    b.bind("inactive");
    t.deleteDest(VIP, "10.1.0.1", 80);
    t.released(b); // still referenced: stays
    assert.equal(t.trash().length, 1);
    b.unbind("inactive");
    t.released(b);
    assert.equal(t.trash().length, 0);
  });

  it("trash is per service; a re-created service revives with zeroed counters (kernel: new svc)", () => {
    const t = populated();
    const d = t.get(VIP)!.findDest("10.1.0.1", 80)!;
    d.bind("inactive");
    d.stats.conns = 5;
    t.deleteService(VIP);
    assert.equal(t.trash().length, 1);
    t.addService({ ...VIP, port: 8080 }, opts({ scheduler: "rr" }));
    assert.notEqual(t.addDest({ ...VIP, port: 8080 }, spec("10.1.0.1")), d); // another service: a new dest
    t.addService(VIP, opts({ scheduler: "rr" }));
    const back = t.addDest(VIP, spec("10.1.0.1"));
    assert.equal(back, d);
    assert.equal(back.stats.conns, 0);
    assert.equal(back.inactConns, 1);
  });

  it("lookup order: firewall mark, then protocol + address + port, then the port-0 service", () => {
    const t = table();
    t.addService({ kind: "vip", protocol: "tcp", addr: "10.0.0.100", port: 0 }, opts({ persistent: true }));
    t.addService(VIP, opts());
    t.addService(MARK, opts());
    t.addService({ kind: "fwmark", fwmark: 7, family: 6 }, opts({}, 6));
    assert.equal(t.lookup("tcp", "10.0.0.100", 80, 7)?.id, "fwmark 7 ipv4");
    assert.equal(t.lookup("tcp", "2001:db8::5", 80, 7)?.id, "fwmark 7 ipv6");
    assert.equal(t.lookup("tcp", "10.0.0.100", 80, 9)?.id, "tcp 10.0.0.100:80");
    assert.equal(t.lookup("tcp", "10.0.0.100", 80)?.id, "tcp 10.0.0.100:80");
    assert.equal(t.lookup("tcp", "10.0.0.100", 443)?.id, "tcp 10.0.0.100:0");
    assert.equal(t.lookup("udp", "10.0.0.100", 80), undefined);
    assert.equal(t.lookup("tcp", "10.0.0.101", 80), undefined);
  });

  it("editing options keeps the scheduler's state unless the scheduler changes", () => {
    const t = populated();
    const svc = t.get(VIP)!;
    const before = svc.sched;
    t.editService(VIP, opts({ scheduler: "rr", persistent: true, timeout: 60 }));
    assert.equal(svc.sched, before);
    assert.equal(svc.options.timeout, 60);
    t.editService(VIP, opts({ scheduler: "sh", schedFlags: ["sh-port"] }));
    assert.notEqual(svc.sched, before);
    assert.deepEqual([...svc.schedFlags], ["sh-port"]);
  });

  it("flush removes every service; zero clears counters", () => {
    const t = populated();
    const d = t.get(VIP)!.dests[0]!;
    d.stats.conns = 3;
    t.get(VIP)!.stats.inPkts = 4;
    t.stats.outBytes = 5;
    t.zero(VIP);
    assert.deepEqual([d.stats.conns, t.get(VIP)!.stats.inPkts, t.stats.outBytes], [0, 0, 5]);
    t.zero();
    assert.equal(t.stats.outBytes, 0);
    t.flush();
    assert.equal(t.size, 0);
    assert.equal(t.lookup("tcp", "10.0.0.100", 80), undefined);
  });
});
