import assert from "node:assert/strict";
import { test } from "node:test";
import {
  checkAdvert,
  decodeAdvert,
  encodeAdvert,
  type InstanceView,
  splitIpv4,
  VRRP_GROUP4,
  VRRP_GROUP6,
  vrrpChecksum,
} from "./codec.ts";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");

// Captured from keepalived 2.2.7 (Debian bookworm) on a veth pair: a v3 advert from 10.9.0.1 and
// a v2 PASS advert.
const KA_V3 = hex("31 33 96 02 00 32 39 20 0a090064 0a090065");
const KA_V2_PASS = Buffer.concat([hex("21 34 64 01 01 01 01 7a 0a0900c8"), Buffer.from("secret12")]);

test("keepalived 2.2.7 v3 capture decodes with the IPv4 pseudo-header checksum", () => {
  const r = decodeAdvert(KA_V3, { family: 4, src: "10.9.0.1", dst: VRRP_GROUP4 });
  assert.ok(r.ok);
  assert.equal(r.advert.version, 3);
  assert.equal(r.advert.vrid, 51);
  assert.equal(r.advert.priority, 150);
  assert.equal(r.advert.intervalMs, 500);
  assert.deepEqual(r.advert.addrs, ["10.9.0.100", "10.9.0.101"]);
  assert.equal(r.advert.checksumForm, "pseudo-header");
  // The same message with the RFC 9568 message-only checksum (0x23bd) is accepted too.
  const alt = Buffer.from(KA_V3);
  alt[6] = 0x23;
  alt[7] = 0xbd;
  const r2 = decodeAdvert(alt, { family: 4, src: "10.9.0.1", dst: VRRP_GROUP4 });
  assert.ok(r2.ok);
  assert.equal(r2.advert.checksumForm, "message");
  // From another source the pseudo-header sum no longer matches.
  const r3 = decodeAdvert(KA_V3, { family: 4, src: "10.9.0.2", dst: VRRP_GROUP4 });
  assert.deepEqual(r3.ok ? "ok" : r3.error, "chk_err");
});

test("we encode the keepalived 2.2.7 bytes exactly (v3 pseudo-header and v2 PASS)", () => {
  const v3 = encodeAdvert({
    version: 3,
    family: 4,
    vrid: 51,
    priority: 150,
    intervalMs: 500,
    addrs: ["10.9.0.100", "10.9.0.101"],
    src: "10.9.0.1",
    dst: VRRP_GROUP4,
  });
  assert.deepEqual(Buffer.from(v3), KA_V3);
  const v3msg = encodeAdvert({
    version: 3,
    family: 4,
    vrid: 51,
    priority: 150,
    intervalMs: 500,
    addrs: ["10.9.0.100", "10.9.0.101"],
    v3Ipv4Checksum: "message",
  });
  assert.equal(Buffer.from(v3msg).readUInt16BE(6), 0x23bd);
  const v2 = encodeAdvert({
    version: 2,
    family: 4,
    vrid: 52,
    priority: 100,
    intervalMs: 1000,
    addrs: ["10.9.0.200"],
    auth: { type: "PASS", pass: "secret12" },
  });
  assert.deepEqual(Buffer.from(v2), KA_V2_PASS);
});

test("keepalived 2.2.7 v2 PASS capture decodes and passes the instance checks", () => {
  const r = decodeAdvert(KA_V2_PASS, { family: 4, src: "10.9.0.2", dst: VRRP_GROUP4 });
  assert.ok(r.ok);
  assert.equal(r.advert.authType, 1);
  assert.equal(Buffer.from(r.advert.authData).toString(), "secret12");
  const inst: InstanceView = {
    version: 2,
    family: 4,
    vrid: 52,
    intervalMs: 1000,
    addrs: ["10.9.0.200"],
    auth: { type: "PASS", pass: "secret12" },
    checkTtl: true,
  };
  assert.deepEqual(checkAdvert(r.advert, 255, inst), { accept: true });
  assert.equal(checkAdvert(r.advert, 64, inst).error, "ip_ttl_err");
  assert.equal(checkAdvert(r.advert, 255, { ...inst, auth: { type: "PASS", pass: "1111" } }).error, "auth_failure");
  assert.equal(checkAdvert(r.advert, 255, { ...inst, auth: undefined }).error, "authtype_mismatch");
  const v2int = checkAdvert(r.advert, 255, { ...inst, intervalMs: 2000 });
  assert.deepEqual([v2int.accept, v2int.error], [false, "advert_interval_err"]);
  const addr = checkAdvert(r.advert, 255, { ...inst, addrs: ["10.9.0.201"] });
  assert.deepEqual([addr.accept, addr.error], [false, "addr_list_err"]);
  assert.equal(checkAdvert(r.advert, 255, { ...inst, version: 3 }).error, "vers_err");
});

test("v3 interval mismatch is counted and accepted (the backup adopts it)", () => {
  const m = encodeAdvert({
    version: 3,
    family: 4,
    vrid: 1,
    priority: 100,
    intervalMs: 300,
    addrs: ["10.0.0.9"],
    src: "10.0.0.1",
    dst: VRRP_GROUP4,
  });
  const r = decodeAdvert(m, { family: 4, src: "10.0.0.1", dst: VRRP_GROUP4 });
  assert.ok(r.ok);
  const c = checkAdvert(r.advert, 255, {
    version: 3,
    family: 4,
    vrid: 1,
    intervalMs: 1000,
    addrs: ["10.0.0.9"],
    checkTtl: true,
  });
  assert.deepEqual(c.accept, true);
  assert.equal(c.error, "advert_interval_err");
});

test("v3 over IPv6 round-trips with the IPv6 pseudo-header checksum", () => {
  const src = "fe80::1";
  const m = encodeAdvert({
    version: 3,
    family: 6,
    vrid: 7,
    priority: 200,
    intervalMs: 100,
    addrs: ["2001:db8::30", "2001:db8::31"],
    src,
    dst: VRRP_GROUP6,
  });
  assert.equal(m.length, 8 + 32);
  const r = decodeAdvert(m, { family: 6, src, dst: VRRP_GROUP6 });
  assert.ok(r.ok);
  assert.deepEqual(r.advert.addrs, ["2001:db8::30", "2001:db8::31"]);
  assert.equal(r.advert.intervalMs, 100);
  // Recomputing by hand: the checksum field makes the full sum fold to zero.
  assert.equal(vrrpChecksum(m, { family: 6, src, dst: VRRP_GROUP6 }), Buffer.from(m).readUInt16BE(6));
  const bad = decodeAdvert(m, { family: 6, src: "fe80::2", dst: VRRP_GROUP6 });
  assert.equal(bad.ok ? "ok" : bad.error, "chk_err");
  assert.throws(() => encodeAdvert({ version: 2, family: 6, vrid: 1, priority: 1, intervalMs: 1000, addrs: [] }));
});

test("malformed adverts map to keepalived's counters", () => {
  const ctx = { family: 4 as const, src: "10.0.0.1", dst: VRRP_GROUP4 };
  const cases: [string, Buffer, string][] = [
    ["short", hex("2101"), "packet_len_err"],
    ["version 1", hex("11 01 64 00 00 01 00 00 0000000000000000"), "vers_err"],
    ["type 2", hex("22 01 64 00 00 01 00 00 0000000000000000"), "invalid_type_rcvd"],
    ["count beyond the data", hex("21 01 64 05 00 01 00 00 0000000000000000"), "packet_len_err"],
    ["bad checksum", hex("21 01 64 00 00 01 12 34 0000000000000000"), "chk_err"],
  ];
  for (const [name, buf, want] of cases) {
    const r = decodeAdvert(buf, ctx);
    assert.equal(r.ok ? "ok" : r.error, want, name);
  }
});

test("splitIpv4 reads TTL, addresses and payload of a raw socket datagram", () => {
  const ip = hex("45c00028 0000 0000 ff70 0000 0a090001 e0000012");
  const d = splitIpv4(Buffer.concat([ip, KA_V3]));
  assert.ok(d);
  assert.equal(d.ttl, 255);
  assert.equal(d.protocol, 112);
  assert.equal(d.src, "10.9.0.1");
  assert.equal(d.dst, "224.0.0.18");
  assert.deepEqual(Buffer.from(d.payload), KA_V3);
  assert.equal(splitIpv4(hex("45")), undefined);
});
