// `tvs check-config` as a user runs it: diagnostics as FILE:LINE:COL, exit 0/1/2, --json.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";

const ROOT = resolve(import.meta.dirname, "../../..");
const FIX = join(ROOT, "test/fixtures/config");

function tvs(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "bin/tvs.ts"), "check-config", ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("a good configuration exits 0 and prints its warnings", () => {
  const r = tvs("test/fixtures/config/keepalived/dr-master.conf");
  assert.equal(r.code, 0);
  assert.equal(r.err, "");
  assert.match(r.out, /keepalived configuration OK: 1 virtual service\(s\), 2 real server\(s\)/);
});

test("errors exit 1 with FILE:LINE:COL: error: lines", () => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-check-"));
  try {
    const f = join(dir, "keepalived.conf");
    writeFileSync(
      f,
      "virtual_server 127.0.0.100 80 {\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  real_server 127.0.0.11 80 {\n    weight x\n  }\n",
    );
    const r = tvs(f);
    assert.equal(r.code, 1);
    assert.equal(
      r.err,
      [
        `${f}:1:31: error: Unclosed "{": no matching "}" before the end of the configuration`,
        `${f}:6:12: error: Invalid weight "x" (expected an integer 0..2147483647)`,
        `${f}: 2 errors, configuration refused`,
        "",
      ].join("\n"),
    );
    assert.equal(r.out, "");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a vrrp_instance on an interface this machine lacks is an error at its block", () => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-check-"));
  try {
    const f = join(dir, "keepalived.conf");
    writeFileSync(
      f,
      "! pair\nvrrp_instance VI_1 {\n  interface tvs-nosuch9\n  virtual_router_id 51\n  virtual_ipaddress {\n    172.16.0.30/24\n  }\n}\n",
    );
    const r = tvs(f);
    assert.equal(r.code, 1);
    assert.equal(
      r.err,
      `${f}:2:1: error: vrrp_instance VI_1: interface "tvs-nosuch9" does not exist\n${f}: 1 error, configuration refused\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--json prints the DirectorConfig", () => {
  const r = tvs("--json", join(FIX, "ldirectord/seed003.cf"));
  assert.equal(r.code, 0);
  const c = JSON.parse(r.out);
  assert.equal(c.format, "ldirectord");
  assert.deepEqual(c.desired.services[0].key, { kind: "vip", protocol: "tcp", addr: "127.0.0.100", port: 80 });
  assert.equal(c.health[0].realServers.length, 2);
});

test("usage errors exit 2", () => {
  assert.equal(tvs().code, 2);
  assert.equal(tvs("--bogus", "x").code, 2);
  assert.equal(tvs("a", "b").code, 2);
  assert.equal(tvs("--format", "nginx", "a").code, 2);
});

test("a tvs_fwmark_rules block is counted; a bad rule is an error at its column", () => {
  const dir = mkdtempSync(join(tmpdir(), "fwmark-check-"));
  try {
    const f = join(dir, "keepalived.conf");
    const conf = (mark: string) =>
      `tvs_fwmark_rules {\n  tcp 10.0.0.10 80,443 mark ${mark}\n}\nvirtual_server fwmark 1 {\n  lb_algo rr\n  lb_kind DR\n  real_server 10.0.0.21 { weight 1 }\n}\n`;
    writeFileSync(f, conf("1"));
    const ok = tvs(f);
    assert.equal(ok.code, 0, ok.err);
    assert.match(
      ok.out,
      /configuration OK: 1 virtual service\(s\), 1 real server\(s\), 0 vrrp instance\(s\), 1 fwmark rule\(s\)/,
    );
    writeFileSync(f, conf("0"));
    const bad = tvs(f);
    assert.equal(bad.code, 1);
    assert.match(bad.err, new RegExp(`${f}:2:29: error: Invalid mark "0"`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--local-addrs: a tvs_announce backup_addr that is one of them is an error at its word", () => {
  const dir = mkdtempSync(join(tmpdir(), "lows-check-"));
  try {
    const f = join(dir, "keepalived.conf");
    writeFileSync(
      f,
      "tvs_announce {\n  bgp_asn 65001\n  router_id 10.0.1.2\n  bgp_peer 10.0.1.1 as 65000\n  backup_addr 10.0.8.3 10.0.8.4\n}\n",
    );
    assert.equal(tvs("--local-addrs", "10.0.8.2", f).code, 0);
    const r = tvs("--local-addrs", "10.0.8.2,10.0.8.4", f);
    assert.equal(r.code, 1);
    assert.equal(
      r.err,
      `${f}:5:24: error: backup_addr 10.0.8.4 is one of this director's --local-addrs (backup addresses are other directors' local addresses)\n` +
        `${f}: 1 error, configuration refused\n`,
    );
    const bad = tvs("--local-addrs", "10.0.8", f);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /Invalid --local-addrs address "10.0.8"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
