// UdpListener.bind on a given descriptor: one the socket refuses is closed, not leaked.

import assert from "node:assert/strict";
import { closeSync, fstatSync, openSync } from "node:fs";
import { test } from "node:test";
import { type UdpContext, UdpListener } from "./udp-relay.ts";

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

test("a descriptor the UDP socket refuses is closed and the bind rejects", async (t) => {
  const fd = openSync("/dev/null", "r"); // not a UDP socket: dgram refuses it
  t.after(() => {
    if (isOpen(fd)) closeSync(fd);
  });
  const udp = new UdpListener({} as UdpContext, undefined, { vaddr: "127.0.0.1", vport: 1, fwmark: 0 });
  t.after(() => udp.closeVip());
  await assert.rejects(udp.bind(fd));
  assert.equal(isOpen(fd), false, "the refused descriptor is closed");
});
