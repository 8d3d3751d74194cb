import assert from "node:assert/strict";
import { test } from "node:test";
import { ipv4Bytes, ipv6Bytes } from "./codec.ts";
import { garpFrame, unsolicitedNa } from "./garp.ts";

const MAC = Uint8Array.from([0x02, 0x00, 0x00, 0x00, 0x00, 0x11]);

test("gratuitous ARP: broadcast request, sender and target both the VIP", () => {
  const f = Buffer.from(garpFrame(MAC, ipv4Bytes("172.16.0.30") as Uint8Array));
  assert.equal(f.length, 60);
  assert.equal(f.subarray(0, 14).toString("hex"), "ffffffffffff0200000000110806");
  assert.equal(
    f.subarray(14, 42).toString("hex"),
    "0001080006040001" + "020000000011" + "ac10001e" + "ffffffffffff" + "ac10001e",
  );
});

test("unsolicited NA: type 136, Override, target and its link-layer address option", () => {
  const m = Buffer.from(unsolicitedNa(MAC, ipv6Bytes("2001:db8::30") as Uint8Array));
  assert.equal(m.toString("hex"), `88000000` + `20000000` + "20010db8000000000000000000000030" + "0201020000000011");
});
