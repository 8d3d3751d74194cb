// Packet fixtures: a description, the services and neighbours a director starts with, and steps of
// (input frame → expected verdict, drop reason and output frames). Expected frames are built by
// frame-builder.ts from scratch, so they are an oracle independent of the pipeline's in-place
// rewrites. runFixture() plays a fixture through a Pipeline over the memory PacketIo; the unit
// tests run every fixture, and lab tests can replay the same frames over real interfaces.

import { ManualClock } from "../../core/clock.ts";
import { ConnTable } from "../../core/conn/conn-table.ts";
import { destSpec, type FwdMethod } from "../../core/dest.ts";
import { SchedulerRegistry } from "../../core/sched/registry.ts";
import { rr } from "../../core/sched/rr.ts";
import type { Protocol } from "../../core/sched/types.ts";
import { serviceOptions } from "../../core/service.ts";
import { ServiceTable } from "../../core/service-table.ts";
import { parseMac } from "./codec/eth.ts";
import type { DropReason, Verdict } from "./counters.ts";
import { PacketEngine } from "./engine.ts";
import {
  arpFrame,
  ETH_P_IP,
  ETH_P_IPV6,
  eth,
  IPPROTO,
  icmp,
  icmpv6,
  ipv4,
  ipv6,
  tcp,
  tcp4Frame,
  tcp6Frame,
  udp,
  udp4Frame,
} from "./frame-builder.ts";
import { MemoryPacketIo } from "./memory-io.ts";
import { Pipeline } from "./pipeline.ts";

export const DIRECTOR_MAC = "02:00:00:00:00:01";
export const DIRECTOR_IP = "10.0.0.1";
export const DIRECTOR_IP6 = "fd00::1";
export const CLIENT_MAC = "02:00:00:00:00:aa";
export const CLIENT = "10.0.0.100";
export const CLIENT6 = "fd00::100";
export const VIP = "10.0.0.10";
export const VIP6 = "fd00::10";
export const LOCAL = "10.0.0.50";
export const LOCAL6 = "fd00::50";
export const RS1 = "10.0.0.21";
export const RS1_MAC = "02:00:00:00:00:21";
export const RS6 = "fd00::21";
export const OTHER_MAC = "02:00:00:00:00:77";
export const ROUTER = "10.0.0.254";

export interface ServiceFixture {
  protocol: Protocol;
  vip: string;
  port: number;
  dests: { addr: string; port: number; fwd: FwdMethod }[];
}

export interface Step {
  input: Buffer;
  /** virtio_net_hdr for the input (fixtures with vnet: true). */
  vnet?: Uint8Array;
  /** auxdata tp_status for the input. */
  status?: number;
  verdict: Verdict;
  reason?: DropReason;
  /** Frames expected out, in order (without vnet headers). */
  output: Buffer[];
}

export interface Fixture {
  description: string;
  services: ServiceFixture[];
  /** Neighbours known from the start (addr → MAC). */
  neighbours?: Record<string, string>;
  vnet?: boolean;
  mtu?: number;
  steps: Step[];
}

const B = (n: number, fill = 0x61) => Buffer.alloc(n, fill);
const SYN = 0x02;
const ACK = 0x10;

function svc(protocol: Protocol, port: number, fwd: FwdMethod, dport = port, vip = VIP, rs = RS1): ServiceFixture {
  return { protocol, vip, port, dests: [{ addr: rs, port: dport, fwd }] };
}

const known = { [RS1]: RS1_MAC, [RS6]: RS1_MAC };

/** Every fixture; each call builds fresh frames. */
export function packetFixtures(): Fixture[] {
  const syn = (o: { dst?: string; dport?: number; ttl?: number; mss?: number; flags?: number } = {}) =>
    tcp4Frame(
      DIRECTOR_MAC,
      CLIENT_MAC,
      CLIENT,
      o.dst ?? VIP,
      { sport: 40000, dport: o.dport ?? 80, flags: o.flags ?? SYN, seq: 1, ...(o.mss ? { mss: o.mss } : {}) },
      { ttl: o.ttl ?? 64, df: true },
    );
  const inner = ipv4(CLIENT, VIP, IPPROTO.tcp, tcp(CLIENT, VIP, { sport: 40000, dport: 80, flags: SYN, seq: 1 }), {
    ttl: 63,
    df: true,
  });
  const bigPayload = B(1460);
  const bigInput = tcp4Frame(
    DIRECTOR_MAC,
    CLIENT_MAC,
    CLIENT,
    VIP,
    { sport: 40000, dport: 80, flags: ACK, seq: 2, ack: 1, payload: bigPayload },
    { df: true },
  );
  // The kernel decrements the TTL before checking the size, so the error quotes TTL 63.
  const bigIp = tcp4Frame(
    DIRECTOR_MAC,
    CLIENT_MAC,
    CLIENT,
    VIP,
    { sport: 40000, dport: 80, flags: ACK, seq: 2, ack: 1, payload: bigPayload },
    { df: true, ttl: 63 },
  ).subarray(14);
  const echoReq = eth(
    DIRECTOR_MAC,
    CLIENT_MAC,
    ETH_P_IP,
    ipv4(CLIENT, VIP, IPPROTO.icmp, icmp(8, 0, 0x00010001, B(32))),
  );
  const echoRep = eth(
    CLIENT_MAC,
    DIRECTOR_MAC,
    ETH_P_IP,
    ipv4(VIP, CLIENT, IPPROTO.icmp, icmp(0, 0, 0x00010001, B(32)), { ttl: 64 }),
  );
  // A router says the VIP's packet to the client was too big: quoted VIP:80 → CLIENT:40000.
  const quotedOut = ipv4(VIP, CLIENT, IPPROTO.tcp, tcp(VIP, CLIENT, { sport: 80, dport: 40000, flags: ACK }));
  const routerErr = (ttl: number) =>
    eth(DIRECTOR_MAC, CLIENT_MAC, ETH_P_IP, ipv4(ROUTER, VIP, IPPROTO.icmp, icmp(3, 4, 1400, quotedOut), { ttl }));
  // A NAT real server says the client's UDP port is closed: quoted CLIENT:5353 → RS1:5300.
  const quotedIn = ipv4(CLIENT, RS1, IPPROTO.udp, udp(CLIENT, RS1, 5353, 5300, B(4)), { ttl: 63 });
  const quotedInXlated = ipv4(CLIENT, VIP, IPPROTO.udp, udp(CLIENT, RS1, 5353, 53, B(4)), { ttl: 63 });
  // The translated quote keeps the real server's UDP checksum (as the kernel): patch it in.
  quotedInXlated.writeUInt16BE(quotedIn.readUInt16BE(20 + 6), 20 + 6);
  const vnetPartial = Uint8Array.of(1, 0, 0, 0, 0, 0, 34, 0, 16, 0); // NEEDS_CSUM, start 34, offset 16

  return [
    {
      description: "ARP request for a VIP is answered with the director's MAC (padded to 60 bytes)",
      services: [svc("tcp", 80, "droute")],
      steps: [
        {
          input: arpFrame("ff:ff:ff:ff:ff:ff", 1, CLIENT_MAC, CLIENT, "00:00:00:00:00:00", VIP),
          verdict: "reply",
          output: [arpFrame(CLIENT_MAC, 2, DIRECTOR_MAC, VIP, CLIENT_MAC, CLIENT)],
        },
      ],
    },
    {
      description: "ARP request for an address the director does not own is left to the host",
      services: [svc("tcp", 80, "droute")],
      steps: [
        {
          input: arpFrame("ff:ff:ff:ff:ff:ff", 1, CLIENT_MAC, CLIENT, "00:00:00:00:00:00", DIRECTOR_IP),
          verdict: "ignore",
          output: [],
        },
      ],
    },
    {
      description: "DR: a SYN goes to the real server's MAC unchanged but for the TTL",
      services: [svc("tcp", 80, "droute")],
      neighbours: known,
      steps: [
        {
          input: syn(),
          verdict: "forward",
          output: [
            tcp4Frame(
              RS1_MAC,
              DIRECTOR_MAC,
              CLIENT,
              VIP,
              { sport: 40000, dport: 80, flags: SYN, seq: 1 },
              { ttl: 63, df: true },
            ),
          ],
        },
        {
          input: tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, {
            sport: 40000,
            dport: 80,
            flags: ACK,
            seq: 2,
            ack: 9,
          }),
          verdict: "forward",
          output: [
            tcp4Frame(
              RS1_MAC,
              DIRECTOR_MAC,
              CLIENT,
              VIP,
              { sport: 40000, dport: 80, flags: ACK, seq: 2, ack: 9 },
              { ttl: 63 },
            ),
          ],
        },
      ],
    },
    {
      description: "DR with a real-server port different from the VIP port is a configuration error: dropped",
      services: [svc("tcp", 80, "droute", 8080)],
      neighbours: known,
      steps: [{ input: syn(), verdict: "drop", reason: "drPort", output: [] }],
    },
    {
      description: "DR: an unknown real server is resolved by ARP and the held frame sent on the reply",
      services: [svc("tcp", 80, "droute")],
      steps: [
        {
          input: syn(),
          verdict: "forward",
          output: [arpFrame("ff:ff:ff:ff:ff:ff", 1, DIRECTOR_MAC, DIRECTOR_IP, "00:00:00:00:00:00", RS1)],
        },
        {
          input: arpFrame(DIRECTOR_MAC, 2, RS1_MAC, RS1, DIRECTOR_MAC, DIRECTOR_IP),
          verdict: "ignore",
          output: [
            tcp4Frame(
              RS1_MAC,
              DIRECTOR_MAC,
              CLIENT,
              VIP,
              { sport: 40000, dport: 80, flags: SYN, seq: 1 },
              { ttl: 63, df: true },
            ),
          ],
        },
      ],
    },
    {
      description: "NAT: destination rewritten to the real server with port mapping; the reply comes back from VIP:80",
      services: [svc("tcp", 80, "masq", 8080)],
      neighbours: known,
      steps: [
        {
          input: syn(),
          verdict: "forward",
          output: [
            tcp4Frame(
              RS1_MAC,
              DIRECTOR_MAC,
              CLIENT,
              RS1,
              { sport: 40000, dport: 8080, flags: SYN, seq: 1 },
              { ttl: 63, df: true },
            ),
          ],
        },
        {
          input: tcp4Frame(DIRECTOR_MAC, RS1_MAC, RS1, CLIENT, {
            sport: 8080,
            dport: 40000,
            flags: SYN | ACK,
            seq: 7,
            ack: 2,
          }),
          verdict: "forward",
          output: [
            tcp4Frame(
              CLIENT_MAC,
              DIRECTOR_MAC,
              VIP,
              CLIENT,
              { sport: 80, dport: 40000, flags: SYN | ACK, seq: 7, ack: 2 },
              { ttl: 63 },
            ),
          ],
        },
      ],
    },
    {
      description: "NAT: a UDP checksum of 0 stays 0; a short frame is padded to 60 bytes",
      services: [svc("udp", 53, "masq", 5300)],
      neighbours: known,
      steps: [
        {
          input: udp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, 5353, 53, B(4), { noChecksum: true }).subarray(
            0,
            14 + 20 + 12,
          ),
          verdict: "forward",
          output: [
            udp4Frame(RS1_MAC, DIRECTOR_MAC, CLIENT, RS1, 5353, 5300, B(4), { noChecksum: true, ip: { ttl: 63 } }),
          ],
        },
      ],
    },
    {
      description: "NAT: UDP with a checksum gets a correct checksum after the rewrite",
      services: [svc("udp", 53, "masq", 5300)],
      neighbours: known,
      steps: [
        {
          input: udp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, 5353, 53, B(100)),
          verdict: "forward",
          output: [udp4Frame(RS1_MAC, DIRECTOR_MAC, CLIENT, RS1, 5353, 5300, B(100), { ip: { ttl: 63 } })],
        },
      ],
    },
    {
      description: "NAT: ICMP port unreachable from the real server reaches the client quoting VIP:53",
      services: [svc("udp", 53, "masq", 5300)],
      neighbours: known,
      steps: [
        {
          input: udp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, 5353, 53, B(4)),
          verdict: "forward",
          output: [udp4Frame(RS1_MAC, DIRECTOR_MAC, CLIENT, RS1, 5353, 5300, B(4), { ip: { ttl: 63 } })],
        },
        {
          input: eth(DIRECTOR_MAC, RS1_MAC, ETH_P_IP, ipv4(RS1, CLIENT, IPPROTO.icmp, icmp(3, 3, 0, quotedIn))),
          verdict: "forward",
          output: [
            eth(
              CLIENT_MAC,
              DIRECTOR_MAC,
              ETH_P_IP,
              ipv4(VIP, CLIENT, IPPROTO.icmp, icmp(3, 3, 0, quotedInXlated), { ttl: 63 }),
            ),
          ],
        },
      ],
    },
    {
      description: "TUN: the packet is wrapped in IPIP from the director's address to the real server",
      services: [svc("tcp", 80, "tunnel")],
      neighbours: known,
      steps: [
        {
          input: syn(),
          verdict: "forward",
          output: [
            eth(RS1_MAC, DIRECTOR_MAC, ETH_P_IP, ipv4(DIRECTOR_IP, RS1, IPPROTO.ipip, inner, { ttl: 63, df: true })),
          ],
        },
      ],
    },
    {
      description: "TUN: too big for the tunnel with DF set → ICMP fragmentation needed (MTU - 20) to the client",
      services: [svc("tcp", 80, "tunnel")],
      neighbours: known,
      steps: [
        {
          input: syn(),
          verdict: "forward",
          output: [
            eth(RS1_MAC, DIRECTOR_MAC, ETH_P_IP, ipv4(DIRECTOR_IP, RS1, IPPROTO.ipip, inner, { ttl: 63, df: true })),
          ],
        },
        {
          input: bigInput,
          verdict: "drop",
          reason: "mtu",
          output: [
            eth(
              CLIENT_MAC,
              DIRECTOR_MAC,
              ETH_P_IP,
              ipv4(VIP, CLIENT, IPPROTO.icmp, icmp(3, 4, 1480, bigIp.subarray(0, 548)), { ttl: 64, id: 0, tos: 0xc0 }),
            ),
          ],
        },
      ],
    },
    {
      description: "FULLNAT: source becomes a local address and port, the reply is translated back to the client",
      services: [svc("tcp", 80, "fullnat", 8080)],
      neighbours: known,
      steps: [
        {
          input: syn(),
          verdict: "forward",
          output: [
            tcp4Frame(
              RS1_MAC,
              DIRECTOR_MAC,
              LOCAL,
              RS1,
              { sport: 1025, dport: 8080, flags: SYN, seq: 1 },
              { ttl: 63, df: true },
            ),
          ],
        },
        {
          input: tcp4Frame(DIRECTOR_MAC, RS1_MAC, RS1, LOCAL, {
            sport: 8080,
            dport: 1025,
            flags: SYN | ACK,
            seq: 7,
            ack: 2,
          }),
          verdict: "forward",
          output: [
            tcp4Frame(
              CLIENT_MAC,
              DIRECTOR_MAC,
              VIP,
              CLIENT,
              { sport: 80, dport: 40000, flags: SYN | ACK, seq: 7, ack: 2 },
              { ttl: 63 },
            ),
          ],
        },
        {
          input: tcp4Frame(DIRECTOR_MAC, RS1_MAC, RS1, LOCAL, { sport: 8080, dport: 1026, flags: ACK }),
          verdict: "drop",
          reason: "noConn",
          output: [],
        },
      ],
    },
    {
      description: "ARP request for a FULLNAT local address is answered",
      services: [svc("tcp", 80, "fullnat")],
      steps: [
        {
          input: arpFrame("ff:ff:ff:ff:ff:ff", 1, RS1_MAC, RS1, "00:00:00:00:00:00", LOCAL),
          verdict: "reply",
          output: [arpFrame(RS1_MAC, 2, DIRECTOR_MAC, LOCAL, RS1_MAC, RS1)],
        },
      ],
    },
    {
      description: "A TCP segment without SYN and without a connection is dropped",
      services: [svc("tcp", 80, "droute")],
      neighbours: known,
      steps: [{ input: syn({ flags: ACK }), verdict: "drop", reason: "noConn", output: [] }],
    },
    {
      description: "A VIP port without a service is dropped",
      services: [svc("tcp", 80, "droute")],
      steps: [{ input: syn({ dport: 81 }), verdict: "drop", reason: "noService", output: [] }],
    },
    {
      description: "A truncated IPv4 header and a bad header checksum are malformed",
      services: [svc("tcp", 80, "droute")],
      steps: [
        { input: syn().subarray(0, 14 + 12), verdict: "drop", reason: "malformed", output: [] },
        {
          input: (() => {
            const f = syn();
            f[14 + 10] = f[14 + 10]! ^ 0xff;
            return f;
          })(),
          verdict: "drop",
          reason: "malformed",
          output: [],
        },
      ],
    },
    {
      description: "A frame for another MAC is not ours",
      services: [svc("tcp", 80, "droute")],
      steps: [
        {
          input: tcp4Frame(OTHER_MAC, CLIENT_MAC, CLIENT, VIP, { sport: 40000, dport: 80, flags: SYN }),
          verdict: "ignore",
          output: [],
        },
      ],
    },
    {
      description: "An expired TTL is dropped",
      services: [svc("tcp", 80, "droute")],
      neighbours: known,
      steps: [{ input: syn({ ttl: 1 }), verdict: "drop", reason: "ttl", output: [] }],
    },
    {
      description: "ICMP echo to a VIP is answered by the director",
      services: [svc("tcp", 80, "droute")],
      steps: [{ input: echoReq, verdict: "reply", output: [echoRep] }],
    },
    {
      description: "DR: ICMP fragmentation needed about VIP → client reaches the real server",
      services: [svc("tcp", 80, "droute")],
      neighbours: known,
      steps: [
        {
          input: syn(),
          verdict: "forward",
          output: [
            tcp4Frame(
              RS1_MAC,
              DIRECTOR_MAC,
              CLIENT,
              VIP,
              { sport: 40000, dport: 80, flags: SYN, seq: 1 },
              { ttl: 63, df: true },
            ),
          ],
        },
        {
          input: routerErr(64),
          verdict: "forward",
          output: [
            (() => {
              const f = routerErr(63);
              f.set(parseMac(RS1_MAC), 0);
              f.set(parseMac(DIRECTOR_MAC), 6);
              return f;
            })(),
          ],
        },
      ],
    },
    {
      description: "ICMP error quoting an unknown connection is dropped",
      services: [svc("tcp", 80, "droute")],
      steps: [{ input: routerErr(64), verdict: "drop", reason: "noConn", output: [] }],
    },
    {
      description: "NAT with PACKET_VNET_HDR: a partial (offload) checksum stays partial for the new addresses",
      services: [svc("tcp", 80, "masq", 8080)],
      neighbours: known,
      vnet: true,
      steps: [
        {
          input: tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, {
            sport: 40000,
            dport: 80,
            flags: SYN,
            partial: true,
          }),
          vnet: vnetPartial,
          verdict: "forward",
          output: [
            tcp4Frame(
              RS1_MAC,
              DIRECTOR_MAC,
              CLIENT,
              RS1,
              { sport: 40000, dport: 8080, flags: SYN, partial: true },
              { ttl: 63 },
            ),
          ],
        },
      ],
    },
    {
      description: "NAT with PACKET_AUXDATA CSUMNOTREADY: the checksum is finished before sending",
      services: [svc("tcp", 80, "masq", 8080)],
      neighbours: known,
      steps: [
        {
          input: tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, {
            sport: 40000,
            dport: 80,
            flags: SYN,
            partial: true,
          }),
          status: 8,
          verdict: "forward",
          output: [
            tcp4Frame(RS1_MAC, DIRECTOR_MAC, CLIENT, RS1, { sport: 40000, dport: 8080, flags: SYN }, { ttl: 63 }),
          ],
        },
      ],
    },
    {
      description: "IPv6: a neighbour solicitation for the VIP gets an advertisement; DR forwards a SYN",
      services: [svc("tcp", 80, "droute", 80, VIP6, RS6)],
      neighbours: known,
      steps: [
        {
          input: eth(
            "33:33:ff:00:00:10",
            CLIENT_MAC,
            ETH_P_IPV6,
            ipv6(
              CLIENT6,
              "ff02::1:ff00:10",
              IPPROTO.icmpv6,
              icmpv6(
                CLIENT6,
                "ff02::1:ff00:10",
                135,
                0,
                Buffer.concat([B(4, 0), ipv6Addr(VIP6), Buffer.from([1, 1]), parseMac(CLIENT_MAC)]),
              ),
              255,
            ),
          ),
          verdict: "reply",
          output: [
            eth(
              CLIENT_MAC,
              DIRECTOR_MAC,
              ETH_P_IPV6,
              ipv6(
                VIP6,
                CLIENT6,
                IPPROTO.icmpv6,
                icmpv6(
                  VIP6,
                  CLIENT6,
                  136,
                  0,
                  Buffer.concat([
                    Buffer.from([0x60, 0, 0, 0]),
                    ipv6Addr(VIP6),
                    Buffer.from([2, 1]),
                    parseMac(DIRECTOR_MAC),
                  ]),
                ),
                255,
              ),
            ),
          ],
        },
        {
          input: tcp6Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT6, VIP6, { sport: 40000, dport: 80, flags: SYN }),
          verdict: "forward",
          output: [tcp6Frame(RS1_MAC, DIRECTOR_MAC, CLIENT6, VIP6, { sport: 40000, dport: 80, flags: SYN }, 63)],
        },
      ],
    },
    {
      description: "IPv6 NAT: destination and port rewritten with a correct TCP checksum; the reply comes from the VIP",
      services: [svc("tcp", 80, "masq", 8080, VIP6, RS6)],
      neighbours: known,
      steps: [
        {
          input: tcp6Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT6, VIP6, { sport: 40000, dport: 80, flags: SYN }),
          verdict: "forward",
          output: [tcp6Frame(RS1_MAC, DIRECTOR_MAC, CLIENT6, RS6, { sport: 40000, dport: 8080, flags: SYN }, 63)],
        },
        {
          input: tcp6Frame(DIRECTOR_MAC, RS1_MAC, RS6, CLIENT6, { sport: 8080, dport: 40000, flags: SYN | ACK }),
          verdict: "forward",
          output: [
            tcp6Frame(CLIENT_MAC, DIRECTOR_MAC, VIP6, CLIENT6, { sport: 80, dport: 40000, flags: SYN | ACK }, 63),
          ],
        },
      ],
    },
    {
      description: "IPv6 FULLNAT: the source becomes a local IPv6 address and port",
      services: [svc("tcp", 80, "fullnat", 8080, VIP6, RS6)],
      neighbours: known,
      steps: [
        {
          input: tcp6Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT6, VIP6, { sport: 40000, dport: 80, flags: SYN }),
          verdict: "forward",
          output: [tcp6Frame(RS1_MAC, DIRECTOR_MAC, LOCAL6, RS6, { sport: 1025, dport: 8080, flags: SYN }, 63)],
        },
        {
          input: tcp6Frame(DIRECTOR_MAC, RS1_MAC, RS6, LOCAL6, { sport: 8080, dport: 1025, flags: SYN | ACK }),
          verdict: "forward",
          output: [
            tcp6Frame(CLIENT_MAC, DIRECTOR_MAC, VIP6, CLIENT6, { sport: 80, dport: 40000, flags: SYN | ACK }, 63),
          ],
        },
      ],
    },
    {
      description: "IPv6 echo request to a VIP is answered",
      services: [svc("tcp", 80, "droute", 80, VIP6, RS6)],
      steps: [
        {
          input: eth(
            DIRECTOR_MAC,
            CLIENT_MAC,
            ETH_P_IPV6,
            ipv6(CLIENT6, VIP6, IPPROTO.icmpv6, icmpv6(CLIENT6, VIP6, 128, 0, B(12))),
          ),
          verdict: "reply",
          output: [
            eth(
              CLIENT_MAC,
              DIRECTOR_MAC,
              ETH_P_IPV6,
              ipv6(VIP6, CLIENT6, IPPROTO.icmpv6, icmpv6(VIP6, CLIENT6, 129, 0, B(12))),
            ),
          ],
        },
      ],
    },
    {
      description: "NAT: an ICMP parameter problem is not relayed (IPVS relays types 3, 4 and 11 only)",
      services: [svc("udp", 53, "masq", 5300)],
      neighbours: known,
      steps: [
        {
          input: udp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, 5353, 53, B(4)),
          verdict: "forward",
          output: [udp4Frame(RS1_MAC, DIRECTOR_MAC, CLIENT, RS1, 5353, 5300, B(4), { ip: { ttl: 63 } })],
        },
        {
          input: eth(DIRECTOR_MAC, RS1_MAC, ETH_P_IP, ipv4(RS1, CLIENT, IPPROTO.icmp, icmp(12, 0, 0, quotedIn))),
          verdict: "ignore",
          output: [],
        },
      ],
    },
    {
      description: "DR: an ICMP error about a tracked connection with a bad ICMP checksum is dropped (as IPVS)",
      services: [svc("tcp", 80, "droute")],
      neighbours: known,
      steps: [
        {
          input: syn(),
          verdict: "forward",
          output: [
            tcp4Frame(
              RS1_MAC,
              DIRECTOR_MAC,
              CLIENT,
              VIP,
              { sport: 40000, dport: 80, flags: SYN, seq: 1 },
              { ttl: 63, df: true },
            ),
          ],
        },
        {
          input: (() => {
            const f = routerErr(64);
            f[14 + 20 + 2] = f[14 + 20 + 2]! ^ 0x55;
            return f;
          })(),
          verdict: "drop",
          reason: "malformed",
          output: [],
        },
      ],
    },
    ...ipv6ErrorAndTunnelFixtures(),
  ];
}

export const ROUTER6 = "fd00::fe";
const IPPROTO_IPV6 = 41;

/** A copy of an IPv6 frame (Ethernet at 0) with the traffic class set. */
function withTrafficClass(frame: Buffer, tc: number): Buffer {
  const f = Buffer.from(frame);
  f[14] = 0x60 | (tc >>> 4);
  f[15] = (f[15]! & 0x0f) | ((tc & 0x0f) << 4);
  return f;
}

/** A copy of `quote` (an IPv6 packet) whose transport checksum is taken from `from` (the kernel leaves it). */
function keepChecksum(quote: Buffer, from: Buffer, csumOff: number): Buffer {
  const q = Buffer.from(quote);
  q.writeUInt16BE(from.readUInt16BE(40 + csumOff), 40 + csumOff);
  return q;
}

/** An IPv6 TCP packet src → dst with an 8-byte destination options header (PadN) before TCP. */
function withDstOpts(src: string, dst: string, sport: number, dport: number): Buffer {
  const opts = Buffer.from([IPPROTO.tcp, 0, 1, 4, 0, 0, 0, 0]);
  return ipv6(src, dst, 60, Buffer.concat([opts, tcp(src, dst, { sport, dport, flags: ACK })]));
}

/** ICMPv6 error relay (both directions, every method) and IPv6 / mixed-family tunnels. */
function ipv6ErrorAndTunnelFixtures(): Fixture[] {
  const syn6 = (hop = 64) =>
    tcp6Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT6, VIP6, { sport: 40000, dport: 80, flags: SYN, seq: 1 }, hop);
  const syn6Ip = (hop: number) => syn6(hop).subarray(14);
  const mtuBytes = (mtu: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(mtu);
    return b;
  };
  // A router between the director and the client says VIP6:80 → CLIENT6:40000 was too big.
  const quotedOut6 = ipv6(VIP6, CLIENT6, IPPROTO.tcp, tcp(VIP6, CLIENT6, { sport: 80, dport: 40000, flags: ACK }));
  const tooBigBody = (q: Buffer) => Buffer.concat([mtuBytes(1400), q]);
  const routerErr6 = (hop: number, dstMac = DIRECTOR_MAC, srcMac = CLIENT_MAC) =>
    eth(
      dstMac,
      srcMac,
      ETH_P_IPV6,
      ipv6(ROUTER6, VIP6, IPPROTO.icmpv6, icmpv6(ROUTER6, VIP6, 2, 0, tooBigBody(quotedOut6)), hop),
    );
  // A real server says the client's UDP port is closed (destination unreachable, code 4).
  const unreach = (src: string, dst: string, q: Buffer, hop = 64) =>
    ipv6(src, dst, IPPROTO.icmpv6, icmpv6(src, dst, 1, 4, Buffer.concat([B(4, 0), q])), hop);
  const udp6In = (dst: string, sport: number, dport: number, hop: number) =>
    eth(
      dst === VIP6 ? DIRECTOR_MAC : RS1_MAC,
      dst === VIP6 ? CLIENT_MAC : DIRECTOR_MAC,
      ETH_P_IPV6,
      ipv6(CLIENT6, dst, IPPROTO.udp, udp(CLIENT6, dst, sport, dport, B(4)), hop),
    );
  const ack6 = (payload: number, hop = 64) =>
    tcp6Frame(
      DIRECTOR_MAC,
      CLIENT_MAC,
      CLIENT6,
      VIP6,
      { sport: 40000, dport: 80, flags: ACK, seq: 2, ack: 1, payload: B(payload) },
      hop,
    );

  return [
    {
      description: "IPv6 DR: ICMPv6 packet too big about VIP → client reaches the real server (hop limit - 1)",
      services: [svc("tcp", 80, "droute", 80, VIP6, RS6)],
      neighbours: known,
      steps: [
        { input: syn6(), verdict: "forward", output: [eth(RS1_MAC, DIRECTOR_MAC, ETH_P_IPV6, syn6Ip(63))] },
        { input: routerErr6(64), verdict: "forward", output: [routerErr6(63, RS1_MAC, DIRECTOR_MAC)] },
      ],
    },
    {
      description: "IPv6: an ICMPv6 error quoting an unknown connection is dropped; one with a bad quote too",
      services: [svc("tcp", 80, "droute", 80, VIP6, RS6)],
      neighbours: known,
      steps: [
        { input: routerErr6(64), verdict: "drop", reason: "noConn", output: [] },
        {
          input: eth(
            DIRECTOR_MAC,
            CLIENT_MAC,
            ETH_P_IPV6,
            ipv6(ROUTER6, VIP6, IPPROTO.icmpv6, icmpv6(ROUTER6, VIP6, 2, 0, tooBigBody(quotedOut6.subarray(0, 44)))),
          ),
          verdict: "drop",
          reason: "noConn",
          output: [],
        },
      ],
    },
    {
      description: "IPv6 NAT: ICMPv6 packet too big to the VIP reaches the real server quoting its own packet",
      services: [svc("tcp", 80, "masq", 8080, VIP6, RS6)],
      neighbours: known,
      steps: [
        {
          input: syn6(),
          verdict: "forward",
          output: [
            tcp6Frame(RS1_MAC, DIRECTOR_MAC, CLIENT6, RS6, { sport: 40000, dport: 8080, flags: SYN, seq: 1 }, 63),
          ],
        },
        {
          input: routerErr6(64),
          verdict: "forward",
          output: [
            eth(
              RS1_MAC,
              DIRECTOR_MAC,
              ETH_P_IPV6,
              ipv6(
                ROUTER6,
                RS6,
                IPPROTO.icmpv6,
                icmpv6(
                  ROUTER6,
                  RS6,
                  2,
                  0,
                  tooBigBody(
                    keepChecksum(
                      ipv6(RS6, CLIENT6, IPPROTO.tcp, tcp(RS6, CLIENT6, { sport: 8080, dport: 40000, flags: ACK })),
                      quotedOut6,
                      16,
                    ),
                  ),
                ),
                63,
              ),
            ),
          ],
        },
      ],
    },
    {
      description: "IPv6 FULLNAT: ICMPv6 packet too big to the VIP reaches the real server from the local address",
      services: [svc("tcp", 80, "fullnat", 8080, VIP6, RS6)],
      neighbours: known,
      steps: [
        {
          input: syn6(),
          verdict: "forward",
          output: [tcp6Frame(RS1_MAC, DIRECTOR_MAC, LOCAL6, RS6, { sport: 1025, dport: 8080, flags: SYN, seq: 1 }, 63)],
        },
        {
          input: routerErr6(64),
          verdict: "forward",
          output: [
            eth(
              RS1_MAC,
              DIRECTOR_MAC,
              ETH_P_IPV6,
              ipv6(
                LOCAL6,
                RS6,
                IPPROTO.icmpv6,
                icmpv6(
                  LOCAL6,
                  RS6,
                  2,
                  0,
                  tooBigBody(
                    keepChecksum(
                      ipv6(RS6, LOCAL6, IPPROTO.tcp, tcp(RS6, LOCAL6, { sport: 8080, dport: 1025, flags: ACK })),
                      quotedOut6,
                      16,
                    ),
                  ),
                ),
                63,
              ),
            ),
          ],
        },
      ],
    },
    {
      description:
        "IPv6 NAT: a quoted packet with a destination options header is translated past it; hop limit 1 is dropped",
      services: [svc("tcp", 80, "masq", 8080, VIP6, RS6)],
      neighbours: known,
      steps: [
        {
          input: syn6(),
          verdict: "forward",
          output: [
            tcp6Frame(RS1_MAC, DIRECTOR_MAC, CLIENT6, RS6, { sport: 40000, dport: 8080, flags: SYN, seq: 1 }, 63),
          ],
        },
        {
          input: eth(
            DIRECTOR_MAC,
            CLIENT_MAC,
            ETH_P_IPV6,
            ipv6(
              ROUTER6,
              VIP6,
              IPPROTO.icmpv6,
              icmpv6(ROUTER6, VIP6, 3, 0, Buffer.concat([B(4, 0), withDstOpts(VIP6, CLIENT6, 80, 40000)])),
            ),
          ),
          verdict: "forward",
          output: [
            eth(
              RS1_MAC,
              DIRECTOR_MAC,
              ETH_P_IPV6,
              ipv6(
                ROUTER6,
                RS6,
                IPPROTO.icmpv6,
                icmpv6(
                  ROUTER6,
                  RS6,
                  3,
                  0,
                  Buffer.concat([
                    B(4, 0),
                    (() => {
                      // Addresses and port translated; the quoted TCP checksum kept from the original.
                      const q = withDstOpts(RS6, CLIENT6, 8080, 40000);
                      q.writeUInt16BE(withDstOpts(VIP6, CLIENT6, 80, 40000).readUInt16BE(48 + 16), 48 + 16);
                      return q;
                    })(),
                  ]),
                ),
                63,
              ),
            ),
          ],
        },
        { input: routerErr6(1), verdict: "drop", reason: "ttl", output: [] },
      ],
    },
    {
      description: "IPv6 NAT: ICMPv6 port unreachable from the real server reaches the client quoting VIP:53",
      services: [svc("udp", 53, "masq", 5300, VIP6, RS6)],
      neighbours: known,
      steps: [
        { input: udp6In(VIP6, 5353, 53, 64), verdict: "forward", output: [udp6In(RS6, 5353, 5300, 63)] },
        {
          input: eth(
            DIRECTOR_MAC,
            RS1_MAC,
            ETH_P_IPV6,
            unreach(RS6, CLIENT6, udp6In(RS6, 5353, 5300, 63).subarray(14)),
          ),
          verdict: "forward",
          output: [
            eth(
              CLIENT_MAC,
              DIRECTOR_MAC,
              ETH_P_IPV6,
              unreach(
                VIP6,
                CLIENT6,
                keepChecksum(udp6In(VIP6, 5353, 53, 63).subarray(14), udp6In(RS6, 5353, 5300, 63).subarray(14), 6),
                63,
              ),
            ),
          ],
        },
      ],
    },
    {
      description:
        "IPv6 FULLNAT: ICMPv6 port unreachable to the local address reaches the client quoting its own packet",
      services: [svc("udp", 53, "fullnat", 5300, VIP6, RS6)],
      neighbours: known,
      steps: [
        {
          input: udp6In(VIP6, 5353, 53, 64),
          verdict: "forward",
          output: [
            eth(
              RS1_MAC,
              DIRECTOR_MAC,
              ETH_P_IPV6,
              ipv6(LOCAL6, RS6, IPPROTO.udp, udp(LOCAL6, RS6, 1025, 5300, B(4)), 63),
            ),
          ],
        },
        {
          input: eth(
            DIRECTOR_MAC,
            RS1_MAC,
            ETH_P_IPV6,
            unreach(RS6, LOCAL6, ipv6(LOCAL6, RS6, IPPROTO.udp, udp(LOCAL6, RS6, 1025, 5300, B(4)), 63)),
          ),
          verdict: "forward",
          output: [
            eth(
              CLIENT_MAC,
              DIRECTOR_MAC,
              ETH_P_IPV6,
              unreach(
                VIP6,
                CLIENT6,
                keepChecksum(
                  udp6In(VIP6, 5353, 53, 63).subarray(14),
                  ipv6(LOCAL6, RS6, IPPROTO.udp, udp(LOCAL6, RS6, 1025, 5300, B(4)), 63),
                  6,
                ),
                63,
              ),
            ),
          ],
        },
      ],
    },
    {
      description:
        "IPv6 TUN: ip6ip6 from the director's IPv6 address; traffic class and hop limit copied to the outer header",
      services: [svc("tcp", 80, "tunnel", 80, VIP6, RS6)],
      neighbours: known,
      steps: [
        {
          input: withTrafficClass(syn6(), 0xb8),
          verdict: "forward",
          output: [
            withTrafficClass(
              eth(
                RS1_MAC,
                DIRECTOR_MAC,
                ETH_P_IPV6,
                ipv6(DIRECTOR_IP6, RS6, IPPROTO_IPV6, withTrafficClass(syn6(63), 0xb8).subarray(14), 63),
              ),
              0xb8,
            ),
          ],
        },
      ],
    },
    {
      description: "IPv6 TUN: too big for the tunnel → ICMPv6 packet too big (MTU - 40) from the VIP to the client",
      services: [svc("tcp", 80, "tunnel", 80, VIP6, RS6)],
      neighbours: known,
      steps: [
        {
          input: syn6(),
          verdict: "forward",
          output: [eth(RS1_MAC, DIRECTOR_MAC, ETH_P_IPV6, ipv6(DIRECTOR_IP6, RS6, IPPROTO_IPV6, syn6Ip(63), 63))],
        },
        {
          // 40 + 20 + 1400 = 1460 bytes: exactly the tunnel MTU, still fits.
          input: ack6(1400),
          verdict: "forward",
          output: [
            eth(
              RS1_MAC,
              DIRECTOR_MAC,
              ETH_P_IPV6,
              ipv6(DIRECTOR_IP6, RS6, IPPROTO_IPV6, ack6(1400, 63).subarray(14), 63),
            ),
          ],
        },
        {
          input: ack6(1401),
          verdict: "drop",
          reason: "mtu",
          output: [
            eth(
              CLIENT_MAC,
              DIRECTOR_MAC,
              ETH_P_IPV6,
              ipv6(
                VIP6,
                CLIENT6,
                IPPROTO.icmpv6,
                icmpv6(VIP6, CLIENT6, 2, 0, Buffer.concat([mtuBytes(1460), ack6(1401, 63).subarray(14, 14 + 1232)])),
                64,
              ),
            ),
          ],
        },
      ],
    },
    {
      description: "IPv6 TUN: an ICMPv6 error about VIP → client is tunnelled to the real server",
      services: [svc("tcp", 80, "tunnel", 80, VIP6, RS6)],
      neighbours: known,
      steps: [
        {
          input: syn6(),
          verdict: "forward",
          output: [eth(RS1_MAC, DIRECTOR_MAC, ETH_P_IPV6, ipv6(DIRECTOR_IP6, RS6, IPPROTO_IPV6, syn6Ip(63), 63))],
        },
        {
          input: routerErr6(64),
          verdict: "forward",
          output: [
            eth(
              RS1_MAC,
              DIRECTOR_MAC,
              ETH_P_IPV6,
              ipv6(DIRECTOR_IP6, RS6, IPPROTO_IPV6, routerErr6(63).subarray(14), 63),
            ),
          ],
        },
      ],
    },
    {
      description: "IPv6 TUN: a relayed ICMPv6 error too big for the tunnel is dropped without an error about it",
      services: [svc("tcp", 80, "tunnel", 80, VIP6, RS6)],
      neighbours: known,
      steps: [
        {
          input: syn6(),
          verdict: "forward",
          output: [eth(RS1_MAC, DIRECTOR_MAC, ETH_P_IPV6, ipv6(DIRECTOR_IP6, RS6, IPPROTO_IPV6, syn6Ip(63), 63))],
        },
        {
          // 40 + 8 + 1420 bytes of quote = 1468 > 1460.
          input: eth(
            DIRECTOR_MAC,
            CLIENT_MAC,
            ETH_P_IPV6,
            ipv6(
              ROUTER6,
              VIP6,
              IPPROTO.icmpv6,
              icmpv6(
                ROUTER6,
                VIP6,
                2,
                0,
                tooBigBody(
                  ipv6(
                    VIP6,
                    CLIENT6,
                    IPPROTO.tcp,
                    tcp(VIP6, CLIENT6, { sport: 80, dport: 40000, flags: ACK, payload: B(1360) }),
                  ),
                ),
              ),
            ),
          ),
          verdict: "drop",
          reason: "mtu",
          output: [],
        },
      ],
    },
    {
      description: "IPv6 TUN with PACKET_VNET_HDR: a TCPv6 GSO frame is cut into MSS-sized segments, each in ip6ip6",
      services: [svc("tcp", 80, "tunnel", 80, VIP6, RS6)],
      neighbours: known,
      vnet: true,
      steps: [
        {
          input: syn6(),
          verdict: "forward",
          output: [eth(RS1_MAC, DIRECTOR_MAC, ETH_P_IPV6, ipv6(DIRECTOR_IP6, RS6, IPPROTO_IPV6, syn6Ip(63), 63))],
        },
        {
          // 1000 bytes with MSS 400 and the checksum left to offload: NEEDS_CSUM, GSO_TCPV6,
          // hdr_len 74, gso_size 400, csum_start 54, csum_offset 16.
          input: tcp6Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT6, VIP6, {
            sport: 40000,
            dport: 80,
            flags: ACK | 0x08,
            seq: 5000,
            ack: 1,
            payload: B(1000, 7),
            partial: true,
          }),
          vnet: Uint8Array.of(1, 4, 74, 0, 0x90, 0x01, 54, 0, 16, 0),
          verdict: "forward",
          output: [0, 400, 800].map((o) =>
            eth(
              RS1_MAC,
              DIRECTOR_MAC,
              ETH_P_IPV6,
              ipv6(
                DIRECTOR_IP6,
                RS6,
                IPPROTO_IPV6,
                tcp6Frame(
                  DIRECTOR_MAC,
                  CLIENT_MAC,
                  CLIENT6,
                  VIP6,
                  {
                    sport: 40000,
                    dport: 80,
                    flags: o === 800 ? ACK | 0x08 : ACK,
                    seq: 5000 + o,
                    ack: 1,
                    payload: B(o === 800 ? 200 : 400, 7),
                  },
                  63,
                ).subarray(14),
                63,
              ),
            ),
          ),
        },
      ],
    },
    {
      description: "Mixed-family TUN: an IPv4 VIP with an IPv6 real server is IPv4-in-IPv6 (next header 4)",
      services: [svc("tcp", 80, "tunnel", 80, VIP, RS6)],
      neighbours: known,
      steps: [
        {
          input: tcp4Frame(
            DIRECTOR_MAC,
            CLIENT_MAC,
            CLIENT,
            VIP,
            { sport: 40000, dport: 80, flags: SYN, seq: 1 },
            { df: true, tos: 0x10 },
          ),
          verdict: "forward",
          output: [
            withTrafficClass(
              eth(
                RS1_MAC,
                DIRECTOR_MAC,
                ETH_P_IPV6,
                ipv6(
                  DIRECTOR_IP6,
                  RS6,
                  IPPROTO.ipip,
                  ipv4(CLIENT, VIP, IPPROTO.tcp, tcp(CLIENT, VIP, { sport: 40000, dport: 80, flags: SYN, seq: 1 }), {
                    ttl: 63,
                    df: true,
                    tos: 0x10,
                  }),
                  63,
                ),
              ),
              0x10,
            ),
          ],
        },
      ],
    },
    {
      description: "Mixed-family TUN: an IPv6 VIP with an IPv4 real server is IPv6-in-IPv4 (protocol 41, no DF, ID 0)",
      services: [svc("tcp", 80, "tunnel", 80, VIP6, RS1)],
      neighbours: known,
      steps: [
        {
          input: syn6(),
          verdict: "forward",
          output: [
            eth(RS1_MAC, DIRECTOR_MAC, ETH_P_IP, ipv4(DIRECTOR_IP, RS1, IPPROTO_IPV6, syn6Ip(63), { ttl: 63, id: 0 })),
          ],
        },
      ],
    },
  ];
}

function ipv6Addr(a: string): Buffer {
  return ipv6("::", a, 59, new Uint8Array(0)).subarray(24, 40);
}

/** A director set up for a fixture: tables, pipeline, memory io and engine. */
export function fixtureDirector(fx: Pick<Fixture, "services" | "neighbours" | "vnet" | "mtu">) {
  const clock = new ManualClock(1_000_000);
  const services = new ServiceTable(new SchedulerRegistry([rr]), { clock, random: () => 4 });
  for (const s of fx.services) {
    const key = { kind: "vip" as const, protocol: s.protocol, addr: s.vip, port: s.port };
    services.addService(key, serviceOptions(s.vip.includes(":") ? 6 : 4, { scheduler: "rr" }));
    for (const d of s.dests) services.addDest(key, destSpec(d.addr, d.port, { fwd: d.fwd }));
  }
  const conns = new ConnTable({ services });
  const pipeline = new Pipeline({
    services,
    conns,
    mac: parseMac(DIRECTOR_MAC),
    addr4: DIRECTOR_IP,
    addr6: DIRECTOR_IP6,
    mtu: fx.mtu ?? 1500,
    localAddrs: [LOCAL, LOCAL6],
  });
  for (const [addr, mac] of Object.entries(fx.neighbours ?? {}))
    pipeline.neighbours.learn(addr, parseMac(mac), clock.now(), true);
  const io = new MemoryPacketIo({ vnetHdr: fx.vnet ?? false });
  const engine = new PacketEngine(io, pipeline, () => clock.now());
  return { clock, services, conns, pipeline, io, engine };
}

export interface StepResult {
  verdict: Verdict | undefined;
  reason: DropReason | "" | undefined;
  output: Buffer[];
}

/** Play a fixture; returns what happened at each step. */
export function runFixture(fx: Fixture): StepResult[] {
  const d = fixtureDirector(fx);
  const out: StepResult[] = [];
  for (const step of fx.steps) {
    d.io.inject(step.input, {
      ...(step.vnet ? { vnet: step.vnet } : {}),
      ...(step.status !== undefined ? { status: step.status } : {}),
    });
    d.engine.runOnce();
    out.push({ verdict: d.pipeline.verdicts[0], reason: d.pipeline.reasons[0], output: d.io.drain() });
    d.clock.advance(10);
  }
  return out;
}
