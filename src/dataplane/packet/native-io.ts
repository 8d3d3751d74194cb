// NativePacketIo: a PacketIo over an AF_PACKET socket bound to one interface, through the native
// addon (src/platform/native-addon.ts loads it lazily, on first use, and explains what is wrong and
// what to do when it cannot).

import { explainSocketError, loadNative, type NativeAddon } from "../../platform/native-addon.ts";
import { FrameBatch, type PacketIo, VNET_HDR_LEN } from "./io.ts";

export interface NativePacketIoOptions {
  /** Interface to bind. */
  ifname: string;
  /** Use PACKET_VNET_HDR (checksum offload and 64 KB GSO frames); default true. */
  vnetHdr?: boolean;
  /** Join this PACKET_FANOUT group so several workers share the interface. */
  fanoutGroup?: number;
  /**
   * How the group spreads frames: "cbpf" (default; a program set later with setFanoutProgram
   * decides, see steering.ts) or "hash" (the kernel's flow hash: fine for DR/TUN only, since a
   * NAT reply's 5-tuple differs from its request's).
   */
  fanoutMode?: "cbpf" | "hash";
  /**
   * Have the kernel reassemble IPv4 fragments before they reach the group
   * (PACKET_FANOUT_FLAG_DEFRAG), so the pipeline always sees the transport ports; default true.
   */
  defrag?: boolean;
  /** Receive buffer size to force (SO_RCVBUFFORCE); default 4 MB. */
  rcvbuf?: number;
}

/** linux/if_packet.h (since 4.20): members of the group do not get outgoing frames. */
const PACKET_FANOUT_FLAG_IGNORE_OUTGOING = 0x4000;

/** Slot size for full 64 KB GSO frames plus the vnet header and headroom. */
export const GSO_SLOT = 65536 + 256;
/** Slot size for MTU-sized frames when vnet headers are off (GRO must then be off). */
export const PLAIN_SLOT = 2048 + 128;

/**
 * PacketIo over one AF_PACKET socket: created with protocol 0, options set, then bound with
 * ETH_P_ALL (so no frame from another interface slips in before the bind); outgoing frames of
 * other sockets are ignored (PACKET_IGNORE_OUTGOING).
 */
export class NativePacketIo implements PacketIo {
  readonly vnetHdr: boolean;
  readonly frameCapacity: number;
  readonly ifindex: number;
  readonly mac: Buffer;
  readonly mtu: number;
  readonly fd: number;
  readonly slotSize: number;
  #n: NativeAddon;
  #polls = new Set<number>();
  #closed = false;

  constructor(opts: NativePacketIoOptions) {
    const n = loadNative();
    this.#n = n;
    const C = n.constants as Record<string, number>;
    const info = n.ifInfo(opts.ifname);
    this.ifindex = info.index;
    this.mac = info.mac;
    this.mtu = info.mtu;
    this.vnetHdr = opts.vnetHdr ?? true;
    this.slotSize = this.vnetHdr ? GSO_SLOT : PLAIN_SLOT;
    let fd: number;
    try {
      fd = n.socketPacket();
    } catch (e) {
      throw explainSocketError(e, `a packet socket on "${opts.ifname}"`);
    }
    this.fd = fd;
    try {
      if (this.vnetHdr) n.setsockopt(fd, C.SOL_PACKET!, C.PACKET_VNET_HDR!, 1);
      n.setsockopt(fd, C.SOL_PACKET!, C.PACKET_AUXDATA!, 1);
      n.setsockopt(fd, C.SOL_PACKET!, C.PACKET_IGNORE_OUTGOING!, 1);
      try {
        n.setsockopt(fd, C.SOL_SOCKET!, C.SO_RCVBUFFORCE!, opts.rcvbuf ?? 4 << 20);
      } catch {
        n.setsockopt(fd, C.SOL_SOCKET!, C.SO_RCVBUF!, opts.rcvbuf ?? 4 << 20);
      }
      n.bindPacket(fd, info.index, C.ETH_P_ALL!);
      if (opts.fanoutGroup !== undefined) {
        const mode = opts.fanoutMode === "hash" ? C.PACKET_FANOUT_HASH! : C.PACKET_FANOUT_CBPF!;
        // A fanout member's own PACKET_IGNORE_OUTGOING no longer applies once it joins: the
        // group's flag keeps frames the host sends on this interface away from the workers.
        const flags = PACKET_FANOUT_FLAG_IGNORE_OUTGOING | (opts.defrag === false ? 0 : C.PACKET_FANOUT_FLAG_DEFRAG!);
        n.setsockopt(fd, C.SOL_PACKET!, C.PACKET_FANOUT!, (opts.fanoutGroup & 0xffff) | ((mode | flags) << 16));
      }
    } catch (e) {
      n.close(fd);
      throw e;
    }
    this.frameCapacity = this.slotSize - 64 - (this.vnetHdr ? VNET_HDR_LEN : 0);
  }

  /** A batch sized for this io. */
  newBatch(size = 64): FrameBatch {
    return new FrameBatch(size, this.slotSize, size);
  }

  /** The last receive error (e.g. ENETDOWN while the interface is down); receiving goes on. */
  lastError: Error | undefined;
  receiveErrors = 0;

  receive(batch: FrameBatch): number {
    let got = 0;
    try {
      got = this.#n.recvBatch(this.fd, batch.buf, batch.slotSize, batch.headroom, batch.rxCapacity, batch.meta);
    } catch (e) {
      // A pending socket error (ENETDOWN, ENXIO when the interface goes) is reported once and
      // cleared by the kernel; it must not take the daemon down.
      this.lastError = e as Error;
      this.receiveErrors++;
    }
    batch.rxCount = got;
    return got;
  }

  /** Send the queued frames; a frame the kernel refuses (e.g. EMSGSIZE) is skipped and counted. */
  send(batch: FrameBatch): number {
    let sent = 0;
    let start = 0;
    let errors = 0;
    while (start < batch.txCount) {
      const view = start === 0 ? batch.tx : batch.tx.subarray(start * 2);
      const r = this.#n.sendBatch(this.fd, batch.buf, view, batch.txCount - start);
      if (r > 0) {
        sent += r;
        start += r;
      } else if (r === 0)
        break; // socket buffer full: drop the rest of this round
      else {
        errors++;
        start++;
      }
    }
    this.sendErrors += errors;
    return sent;
  }

  sendErrors = 0;

  watch(ready: () => void): () => void {
    const id = this.#n.poll(this.fd, this.#n.constants.POLL_READABLE!, () => ready());
    this.#polls.add(id);
    return () => {
      if (this.#polls.delete(id)) this.#n.pollStop(id);
    };
  }

  /** Join a link-layer multicast group (PACKET_ADD_MEMBERSHIP), e.g. VRRP's 01:00:5e:00:00:12. */
  addMembership(mac: Uint8Array): void {
    const C = this.#n.constants as Record<string, number>;
    const mreq = Buffer.alloc(16);
    mreq.writeInt32LE(this.ifindex, 0);
    mreq.writeUInt16LE(C.PACKET_MR_MULTICAST!, 4);
    mreq.writeUInt16LE(6, 6);
    mreq.set(mac, 8);
    this.#n.setsockopt(this.fd, C.SOL_PACKET!, C.PACKET_ADD_MEMBERSHIP!, mreq);
  }

  socketDrops(): number {
    if (this.#closed) return 0;
    const C = this.#n.constants as Record<string, number>;
    // struct tpacket_stats { unsigned tp_packets, tp_drops }: reading resets both.
    const st = this.#n.getsockopt(this.fd, C.SOL_PACKET!, C.PACKET_STATISTICS!, 8) as Buffer;
    return st.length >= 8 ? st.readUInt32LE(4) : 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of this.#polls) this.#n.pollStop(id);
    this.#polls.clear();
    this.#n.close(this.fd);
  }
}
