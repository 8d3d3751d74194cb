// announceSpecFromConfig, the tvs_announce block turned into the announcer's spec at config load:
// a backup_addr that is one of tvsd's own --local-addrs is refused at the word's file:line:col.
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfigText } from "../config/load.ts";
import { announceSpecFromConfig } from "./announce-host.ts";

const FILE = "/etc/keepalived/keepalived.conf";
const TEXT = [
  "tvs_announce {",
  "  bgp_asn 65001",
  "  router_id 10.0.1.2",
  "  bgp_peer 10.0.1.1 as 65000",
  "  backup_addr 10.0.8.3 10.0.8.4",
  "}",
  "",
].join("\n");

function block() {
  const r = loadConfigText(FILE, TEXT);
  assert.ok("config" in r && r.config.announce, JSON.stringify(r.diagnostics));
  return r.config.announce;
}

test("backup addresses that are other directors' go into the spec beside the local ones", () => {
  const spec = announceSpecFromConfig(block(), "/run/tvs/bird", ["10.0.8.2"]);
  assert.deepEqual(spec.localAddrs, ["10.0.8.2"]);
  assert.deepEqual(spec.backupAddrs, ["10.0.8.3", "10.0.8.4"]);
});

test("a backup_addr among this director's --local-addrs is refused at its word", () => {
  assert.throws(() => announceSpecFromConfig(block(), "/run/tvs/bird", ["10.0.8.2", "10.0.8.4"]), {
    message: `${FILE}:5:24: backup_addr 10.0.8.4 is one of this director's --local-addrs (backup addresses are other directors' local addresses)`,
  });
});
