// --pe sip in core: a persistent UDP service's templates are keyed by client network and Call-ID
// (ip_vs_pe_sip.c's ct_match), so one call's messages from several client ports meet on one real
// server while other calls from the same client are scheduled on their own; the template carries
// the engine's name and data (ipvsadm -Lc --persistent-conn shows them); a flow without a key, or
// of another protocol, is refused ("pe-no-data", the kernel's drop); with -o every datagram is
// scheduled by its own Call-ID; a service without -p ignores the engine, as the kernel's does.
import assert from "node:assert/strict";
import { test } from "node:test";
import { flow, kit } from "../conn/conn-test-kit.ts";
import { type ServiceOptions, serviceOptions } from "../service.ts";
import { engineRefusal } from "./persistence-key.ts";
import { sipCallId } from "./sip-callid.ts";
import { BYE, CALL_1, CALL_2, INVITE, INVITE_2, NO_CALL_ID, sipBytes } from "./sip-messages.ts";

const DESTS = [{ addr: "10.1.0.1" }, { addr: "10.1.0.2" }, { addr: "10.1.0.3" }];
const VIP = "10.0.0.1";

function sip(service: { persistent?: boolean; ops?: boolean; pe?: string } = {}) {
  return kit(
    DESTS.map((d) => ({ ...d, port: 5060 })),
    {
      protocol: "udp",
      port: 5060,
      service: {
        persistent: service.persistent ?? true,
        timeout: 60,
        pe: service.pe ?? "sip",
        ops: service.ops ?? false,
      },
    },
  );
}

const callId = (text: string) => {
  const b = sipBytes(text);
  return sipCallId(b, 0, b.length);
};

function dest(k: ReturnType<typeof sip>, sport: number, peData: string | undefined, caddr = "192.0.2.10") {
  const r = k.table.schedule(k.svc, flow(caddr, sport, VIP, 5060, "udp"), 0, peData !== undefined ? { peData } : {});
  return "error" in r ? r.error : r.daddr;
}

test("one call's messages from three client ports reach one real server; other calls are scheduled anew", () => {
  const k = sip();
  const first = dest(k, 5060, callId(INVITE));
  assert.equal(dest(k, 40001, callId(BYE)), first, "BYE from another port, same Call-ID");
  assert.equal(dest(k, 40002, CALL_1), first);
  // Another call from the same client network gets its own template: rr moves on.
  const second = dest(k, 40003, callId(INVITE_2));
  assert.notEqual(second, first);
  assert.equal(dest(k, 40004, CALL_2), second);
  const templates = [...k.table.entries()].filter((c) => c.template);
  assert.deepEqual(
    templates.map((t) => [t.peName, t.peData, t.daddr]).sort(),
    [
      ["sip", CALL_1, first],
      ["sip", CALL_2, second],
    ].sort(),
  );
  assert.ok(templates.every((t) => t.cport === 0 && t.caddr === "192.0.2.10"));
});

test("the Call-ID is matched within the client network: another client with the same Call-ID gets its own template", () => {
  const k = sip();
  const a = dest(k, 5060, CALL_1, "192.0.2.10");
  const b = dest(k, 5060, CALL_1, "192.0.2.11");
  assert.notEqual(a, b);
  assert.equal([...k.table.entries()].filter((c) => c.template).length, 2);
});

test("no Call-ID, or a persistent non-UDP flow, is refused (the kernel drops it) and nothing is created", () => {
  const k = sip();
  assert.equal(callId(NO_CALL_ID), undefined);
  assert.equal(dest(k, 5060, undefined), "pe-no-data");
  assert.equal(k.table.size, 0);
  const tcp = kit(DESTS, { protocol: "tcp", port: 5060, service: { persistent: true, pe: "sip" } });
  const r = tcp.table.schedule(tcp.svc, flow("192.0.2.10", 40000, VIP, 5060, "tcp"), 0, { peData: CALL_1 });
  assert.deepEqual(r, { error: "pe-no-data" });
});

test("one-packet scheduling: each datagram is scheduled by its own Call-ID", () => {
  const k = sip({ ops: true });
  const a = dest(k, 5060, CALL_1);
  const b = dest(k, 5060, CALL_2);
  assert.notEqual(a, b, "same client port, two calls, two real servers");
  assert.equal(dest(k, 5060, CALL_1), a);
  assert.equal(dest(k, 5060, CALL_2), b);
});

test("without -p the engine is not consulted (as in the kernel); bad engine data is refused", () => {
  const k = sip({ persistent: false });
  assert.equal(typeof dest(k, 5060, undefined), "string");
  assert.notEqual(dest(k, 5061, undefined), "pe-no-data");
  const p = sip();
  assert.throws(() => dest(p, 5060, ""), /Invalid persistence engine data/);
  assert.throws(() => dest(p, 5060, "x".repeat(256)), /Invalid persistence engine data/);
});

test("engineRefusal: the data planes refuse --pe sip only on a persistent non-UDP service", () => {
  const opts = (o: Partial<ServiceOptions>) => serviceOptions(4, o);
  const key = (protocol: "tcp" | "udp" | "sctp") => ({ kind: "vip" as const, protocol, addr: VIP, port: 5060 });
  assert.match(
    engineRefusal(key("tcp"), opts({ persistent: true, pe: "sip" })) ?? "",
    /reads UDP datagrams.*tcp service/,
  );
  assert.match(engineRefusal(key("sctp"), opts({ persistent: true, pe: "sip" })) ?? "", /sctp service/);
  assert.equal(engineRefusal(key("udp"), opts({ persistent: true, pe: "sip" })), undefined);
  assert.equal(engineRefusal(key("tcp"), opts({ persistent: false, pe: "sip" })), undefined, "no effect without -p");
  assert.equal(engineRefusal(key("tcp"), opts({ persistent: true })), undefined);
});

test("scheduleOut (conn_out): a real server's request to a client makes the call's template on that server", () => {
  const k = sip();
  const [d1, d2] = [k.svc.dests.find((d) => d.addr === "10.1.0.1")!, k.svc.dests.find((d) => d.addr === "10.1.0.2")!];
  const toClient = (sport: number) => flow("192.0.2.10", sport, VIP, 5060, "udp");
  const out = k.table.scheduleOut(k.svc, d1, 5060, toClient(5060), 0, { peData: CALL_1 });
  assert.ok(!("error" in out));
  assert.equal(out.daddr, "10.1.0.1");
  assert.equal(out.control?.peData, CALL_1);
  // The client's own message of that call, from another port, follows the template.
  assert.equal(dest(k, 40001, CALL_1), "10.1.0.1");
  // A request from another real server for the same call replaces the template (ip_vs_check_template(ct, dest)).
  const moved = k.table.scheduleOut(k.svc, d2, 5060, toClient(5062), 0, { peData: CALL_1 });
  assert.ok(!("error" in moved));
  assert.equal(dest(k, 40003, CALL_1), "10.1.0.2");
  assert.deepEqual(k.table.scheduleOut(k.svc, d1, 5060, toClient(5063), 0), { error: "pe-no-data" });
});
