// ICMPv6 relay beyond the byte-exact fixtures: an error quoting a tracked connection, truncated at
// every length, is relayed exactly when the quote still holds the IPv6 header and 8 transport
// bytes, and every relayed message carries a correct ICMPv6 checksum; never an exception. Errors
// in both directions are counted in their connection's statistics (ip_vs_in_stats /
// ip_vs_out_stats), and an error with a bad ICMPv6 checksum is dropped, as the kernel does.
import assert from "node:assert/strict";
import { test } from "node:test";
import { finish, pseudo6, sumBytes } from "./codec/checksum.ts";
import { CLIENT_MAC, CLIENT6, DIRECTOR_MAC, fixtureDirector, ROUTER6, RS1_MAC, RS6, VIP6 } from "./fixtures.ts";
import { ETH_P_IPV6, eth, IPPROTO, icmpv6, ipv6, tcp, tcp6Frame } from "./frame-builder.ts";

const SYN = 0x02;
const ACK = 0x10;

function natDirector(fwd: "masq" | "droute" | "fullnat" | "tunnel") {
  const d = fixtureDirector({
    services: [{ protocol: "tcp", vip: VIP6, port: 80, dests: [{ addr: RS6, port: fwd === "masq" ? 8080 : 80, fwd }] }],
    neighbours: { [RS6]: RS1_MAC },
  });
  d.io.inject(tcp6Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT6, VIP6, { sport: 40000, dport: 80, flags: SYN }));
  d.engine.drain();
  assert.deepEqual(d.pipeline.verdicts, ["forward"]);
  d.io.drain();
  return d;
}

/** A frame whose ICMPv6 checksum (over the pseudo-header of its IPv6 header at 14) verifies. */
function icmp6ChecksumOk(f: Buffer): boolean {
  const plen = f.readUInt16BE(14 + 4);
  return finish(sumBytes(f, 54, plen, pseudo6(f, 14 + 8, IPPROTO.icmpv6, plen))) === 0;
}

test("a truncated quote is relayed only while it holds the IPv6 header and 8 transport bytes", () => {
  const quoted = ipv6(VIP6, CLIENT6, IPPROTO.tcp, tcp(VIP6, CLIENT6, { sport: 80, dport: 40000, flags: ACK }));
  for (const fwd of ["masq", "droute", "fullnat", "tunnel"] as const) {
    const d = natDirector(fwd);
    for (let len = 0; len <= quoted.length; len++) {
      const body = Buffer.concat([Buffer.from([0, 0, 5, 0xdc]), quoted.subarray(0, len)]);
      const err = eth(
        DIRECTOR_MAC,
        CLIENT_MAC,
        ETH_P_IPV6,
        ipv6(ROUTER6, VIP6, IPPROTO.icmpv6, icmpv6(ROUTER6, VIP6, 2, 0, body)),
      );
      d.io.inject(err);
      d.engine.drain();
      const out = d.io.drain();
      const relayed = len >= 40 + 8;
      assert.deepEqual(d.pipeline.verdicts, [relayed ? "forward" : "drop"], `${fwd}, quote of ${len} bytes`);
      if (!relayed) {
        assert.deepEqual(d.pipeline.reasons, ["noConn"], `${fwd}, quote of ${len} bytes`);
        continue;
      }
      assert.equal(out.length, 1);
      const f = out[0]!;
      // For TUN the ICMPv6 message is the inner packet of an ip6ip6 frame.
      const inner = fwd === "tunnel" ? f.subarray(40) : f;
      if (fwd === "tunnel") assert.equal(f[14 + 6], 41, "ip6ip6");
      assert.ok(icmp6ChecksumOk(inner), `${fwd}, quote of ${len} bytes: ICMPv6 checksum`);
    }
  }
});

test("ICMPv6 errors count in their connection's statistics; a bad checksum is dropped", () => {
  const d = natDirector("masq");
  const stats = d.conns.lookupIn("tcp", CLIENT6, 40000, VIP6, 80)!.dest.stats;
  const quoted = ipv6(CLIENT6, RS6, IPPROTO.tcp, tcp(CLIENT6, RS6, { sport: 40000, dport: 8080, flags: ACK }), 63);
  const fromRs = eth(
    DIRECTOR_MAC,
    RS1_MAC,
    ETH_P_IPV6,
    ipv6(RS6, CLIENT6, IPPROTO.icmpv6, icmpv6(RS6, CLIENT6, 1, 4, Buffer.concat([Buffer.alloc(4), quoted]))),
  );
  const out0 = { pkts: stats.outPkts, bytes: stats.outBytes };
  d.io.inject(fromRs);
  d.engine.drain();
  assert.deepEqual(d.pipeline.verdicts, ["forward"]);
  const [f] = d.io.drain();
  assert.ok(f);
  assert.ok(icmp6ChecksumOk(f), "ICMPv6 checksum");
  assert.equal(f.subarray(0, 6).toString("hex"), CLIENT_MAC.replaceAll(":", ""), "to the client's MAC");
  assert.equal(stats.outPkts - out0.pkts, 1, "OutPkts");
  assert.equal(stats.outBytes - out0.bytes, fromRs.length - 14, "OutBytes: the whole IPv6 packet");

  const bad = Buffer.from(fromRs);
  bad[14 + 40 + 2] = bad[14 + 40 + 2]! ^ 0x55;
  d.io.inject(bad);
  d.engine.drain();
  assert.deepEqual(d.pipeline.reasons, ["malformed"]);
  assert.equal(stats.outPkts - out0.pkts, 1, "a dropped error is not counted");

  const in0 = stats.inPkts;
  const toVip = ipv6(VIP6, CLIENT6, IPPROTO.tcp, tcp(VIP6, CLIENT6, { sport: 80, dport: 40000, flags: ACK }));
  d.io.inject(
    eth(
      DIRECTOR_MAC,
      CLIENT_MAC,
      ETH_P_IPV6,
      ipv6(ROUTER6, VIP6, IPPROTO.icmpv6, icmpv6(ROUTER6, VIP6, 3, 0, Buffer.concat([Buffer.alloc(4), toVip]))),
    ),
  );
  d.engine.drain();
  assert.deepEqual(d.pipeline.verdicts, ["forward"]);
  assert.equal(stats.inPkts - in0, 1, "InPkts");
});
