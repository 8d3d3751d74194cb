// global_defs lvs_sync_daemon: keepalived's forms read into a spec; bad options refused at their
// line and column.
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfigText } from "../load.ts";

const VRRP = [
  "vrrp_instance VI_1 {",
  "  state BACKUP",
  "  interface lo",
  "  virtual_router_id 51",
  "  priority 100",
  "  virtual_ipaddress {",
  "    10.9.9.9",
  "  }",
  "}",
];

function load(line: string) {
  return loadConfigText("/etc/keepalived/keepalived.conf", ["global_defs {", `  ${line}`, "}", ...VRRP, ""].join("\n"));
}

test("lvs_sync_daemon with every option, and the older positional form", () => {
  const r = load("lvs_sync_daemon eth1 VI_1 id 7 maxlen 1400 port 9000 ttl 3 group 239.1.1.1");
  assert.ok("config" in r, JSON.stringify(r.diagnostics));
  const { origin: _o, ...spec } = r.config.lvsSyncDaemon ?? { origin: undefined };
  assert.deepEqual(spec, {
    interface: "eth1",
    instance: "VI_1",
    syncId: 7,
    maxLen: 1400,
    port: 9000,
    ttl: 3,
    group: "239.1.1.1",
  });
  const inst = load("lvs_sync_daemon eth1 inst VI_1");
  assert.ok("config" in inst);
  assert.equal(inst.config.lvsSyncDaemon?.instance, "VI_1");
  assert.equal(inst.config.lvsSyncDaemon?.syncId, undefined, "defaults to the instance's VRID when started");
  const old = load("lvs_sync_daemon eth1 VI_1 5");
  assert.ok("config" in old);
  assert.equal(old.config.lvsSyncDaemon?.syncId, 5);
  assert.ok(old.diagnostics.some((d) => d.severity === "warning" && d.message.includes('keyword "id"')));
});

test("bad lvs_sync_daemon options are refused where they are written", () => {
  const errs = (line: string) => {
    const r = load(line);
    assert.ok(!("config" in r), line);
    return r.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.line}:${d.column} ${d.message}`);
  };
  assert.deepEqual(errs("lvs_sync_daemon eth1 VI_1 id 300"), [
    '2:32 Invalid lvs_sync_daemon id "300" (expected 0..255)',
  ]);
  assert.deepEqual(errs("lvs_sync_daemon eth1 VI_1 group 10.0.0.1"), [
    '2:35 lvs_sync_daemon group "10.0.0.1" is not a multicast address',
  ]);
  assert.deepEqual(errs("lvs_sync_daemon eth1 VI_1 id 1 colour"), ['2:34 Unknown option "colour" for lvs_sync_daemon']);
  assert.deepEqual(errs("lvs_sync_daemon eth1 VI_1 five"), [
    '2:29 Invalid lvs_sync_daemon syncid "five" (expected 0..255)',
  ]);
  assert.deepEqual(errs("lvs_sync_daemon eth1 VI_9"), ['2:3 lvs_sync_daemon names unknown vrrp_instance "VI_9"']);
  assert.deepEqual(errs("lvs_sync_daemon eth1"), [
    "2:3 lvs_sync_daemon needs the vrrp_instance whose state drives it (lvs_sync_daemon IFNAME INSTANCE)",
  ]);
});
