// SIP persistence templates over connection sync: a master's template keyed by a Call-ID goes on
// the wire with its PE_NAME "sip" and PE_DATA options (as the kernel's ip_vs_sync_conn sends
// them), the backup takes it back with the same key, and the call's next message on the backup
// (after failover) reaches the real server the template pins; an engine tvs does not have is
// skipped, as a kernel without that engine module skips it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { syncedConnOf } from "../core/conn/conn-sync.ts";
import { flow, kit } from "../core/conn/conn-test-kit.ts";
import { CALL_1 } from "../core/pe/sip-messages.ts";
import { decodeSyncMessage, encodeSyncMessages } from "./codec.ts";
import { fromWire, toWire } from "./records.ts";

const DESTS = [
  { addr: "10.1.0.1", port: 5060 },
  { addr: "10.1.0.2", port: 5060 },
];
const sipKit = () =>
  kit(DESTS, { protocol: "udp", port: 5060, service: { persistent: true, timeout: 300, pe: "sip" } });

test("a SIP template crosses the wire with PE_NAME and PE_DATA and pins the call on the backup", () => {
  const master = sipKit();
  // The master's rr already took 10.1.0.1 for another call: this call's template pins 10.1.0.2.
  master.table.schedule(master.svc, flow("192.0.2.9", 5060, "10.0.0.1", 5060, "udp"), 0, { peData: "other@x" });
  const c = master.table.schedule(master.svc, flow("192.0.2.10", 5060, "10.0.0.1", 5060, "udp"), 0, {
    peData: CALL_1,
  });
  assert.ok(!("error" in c) && c.control !== undefined);
  const wire = toWire(syncedConnOf(c.control));
  assert.equal(wire.peName, "sip");
  const [bytes] = encodeSyncMessages(1, 1500, [wire]);
  const decoded = decodeSyncMessage(bytes!, 1);
  assert.ok(decoded.ok, JSON.stringify(decoded));
  const rec = fromWire(decoded.conns[0]!);
  assert.ok(typeof rec !== "string", String(rec));
  assert.equal(rec.peData, CALL_1);

  const backup = sipKit();
  assert.equal(backup.table.ingestSynced(rec, 0).outcome, "created");
  const tpl = [...backup.table.entries()].find((e) => e.template);
  assert.equal(tpl?.peData, CALL_1);
  // After failover the call's BYE from another port on the backup: the synced template decides.
  const bye = backup.table.schedule(backup.svc, flow("192.0.2.10", 40001, "10.0.0.1", 5060, "udp"), 0, {
    peData: CALL_1,
  });
  assert.ok(!("error" in bye));
  assert.equal(bye.daddr, c.daddr);
  assert.equal(bye.control, tpl);
});

test("engine data of an engine tvs has not is skipped; a connection record without it is not", () => {
  const k = sipKit();
  const c = k.table.schedule(k.svc, flow("192.0.2.10", 5060, "10.0.0.1", 5060, "udp"), 0, { peData: CALL_1 });
  assert.ok(!("error" in c) && c.control !== undefined);
  const base = toWire(syncedConnOf(c.control));
  assert.equal(fromWire({ ...base, peName: "nosuch", peData: Uint8Array.of(1) }), "pe");
  const { peName: _n, peData: _d, ...plain } = base;
  assert.notEqual(typeof fromWire(plain), "string");
});
