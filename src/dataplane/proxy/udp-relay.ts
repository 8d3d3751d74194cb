// UDP on the socket data plane. A service's VIP socket receives datagrams; each client address
// and port is one flow (one UDP entry in the connection table, state UDP, the udp timeout refreshed
// by every datagram either way), forwarded from a shared outgoing socket towards the chosen real
// server so the server's replies can be told apart and sent back to the client from the VIP
// socket, as the client expects. Flows and their sockets are held by the plane's UdpFlowTable
// (udp-flow-table.ts: shared sockets, a cap, and which flow goes first when it is full). With
// one-packet scheduling (-o) every datagram is scheduled on its own and its entry leaves the table
// at once (as the kernel's OPS entries do); replies that come back within the udp timeout still
// reach the client. Every datagram counts as one packet with its payload bytes. A persistent
// service with a persistence engine (--pe sip) keys its templates by what the engine reads from
// the datagram that opens a flow (the SIP Call-ID, core/pe/): a datagram without one opens none.

import dgram from "node:dgram";
import { closeSync } from "node:fs";
import { formatEndpoint } from "../../core/addr.ts";
import type { Clock } from "../../core/clock.ts";
import type { BoundConn } from "../../core/conn/conn.ts";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import type { Logger } from "../../core/log.ts";
import { persistenceKey } from "../../core/pe/persistence-key.ts";
import type { Flow } from "../../core/sched/types.ts";
import type { VirtualService } from "../../core/service.ts";
import { type Arrival, plainAddr } from "./tcp-relay.ts";
import { UdpFlow, type UdpFlowOwner, type UdpFlowTable } from "./udp-flow-table.ts";

export interface UdpContext {
  conns: ConnTable;
  clock: Clock;
  log: Logger;
  /** Set while a sync master runs: called after each client datagram of an entry. */
  syncIn?: ((conn: BoundConn, now: number) => void) | undefined;
  udpFlows: UdpFlowTable;
}

export class UdpListener implements UdpFlowOwner {
  readonly ctx: UdpContext;
  /** The service datagrams go to; undefined while the socket is prepared but not yet live. */
  svc: VirtualService | undefined;
  readonly arrival: Arrival;
  readonly #sock: dgram.Socket;
  /** Flows whose entries left the table at once (ops), keyed by client and destination. */
  readonly #opsFlows = new Map<string, UdpFlow>();
  readonly #flows = new Set<UdpFlow>();

  constructor(ctx: UdpContext, svc: VirtualService | undefined, arrival: Arrival) {
    this.ctx = ctx;
    this.svc = svc;
    this.arrival = arrival;
    this.#sock = dgram.createSocket({ type: arrival.vaddr.includes(":") ? "udp6" : "udp4" });
    this.#sock.on("message", (msg, rinfo) => {
      const s = this.svc;
      if (!s) return;
      try {
        this.#onMessage(s, msg, rinfo);
      } catch (err) {
        ctx.log.warn("Datagram dropped", { service: s.id, err });
      }
    });
  }

  /**
   * Bind the VIP socket, or take `fd` (a worker's own SO_REUSEPORT socket, already bound); rejects
   * with the system error when the address cannot be used. A descriptor the socket could not take
   * (dgram refuses it synchronously, before it owns it) is closed here, so it never leaks.
   */
  bind(fd?: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#sock.once("error", onError);
      const where =
        fd !== undefined
          ? { fd, exclusive: true }
          : { address: this.arrival.vaddr, port: this.arrival.vport, exclusive: true };
      try {
        this.#sock.bind(where, () => {
          this.#sock.off("error", onError);
          this.#sock.on("error", (err) => this.ctx.log.warn("UDP VIP socket error", { service: this.svc?.id, err }));
          resolve();
        });
      } catch (err) {
        this.#sock.off("error", onError);
        if (fd !== undefined) closeQuietly(fd);
        reject(err);
      }
    });
  }

  #onMessage(svc: VirtualService, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const ctx = this.ctx;
    const caddr = plainAddr(rinfo.address) ?? rinfo.address;
    const cport = rinfo.port;
    const now = ctx.clock.now();
    const { vaddr, vport, fwmark } = this.arrival;
    const ops = svc.options.ops;
    if (!ops) {
      const conn = ctx.conns.lookupIn("udp", caddr, cport, vaddr, vport);
      if (conn) {
        const flow = conn.plane;
        const nodest = !conn.dest.available && ctx.conns.options.expireNodestConn;
        if (flow instanceof UdpFlow && !flow.closed && !nodest) {
          ctx.conns.account(conn, "in", 1, msg.length);
          ctx.conns.touch(conn, now);
          flow.send(msg);
          ctx.syncIn?.(conn, now);
          return;
        }
        // The entry outlived its socket (or its destination is gone with expire_nodest_conn).
        ctx.conns.remove(conn, now);
      }
    }
    const f: Flow = {
      family: svc.family,
      protocol: "udp",
      saddr: caddr,
      sport: cport,
      daddr: vaddr,
      dport: vport,
    };
    const peData = persistenceKey(svc, "udp", msg, 0, msg.length);
    const opts =
      fwmark || peData !== undefined
        ? { ...(fwmark ? { fwmark } : {}), ...(peData !== undefined ? { peData } : {}) }
        : undefined;
    const r = ctx.conns.schedule(svc, f, now, opts);
    if ("error" in r) {
      ctx.log.debug(
        r.error === "pe-no-data"
          ? "Datagram dropped: no persistence key (SIP Call-ID)"
          : "Datagram dropped: no destination",
        {
          service: svc.id,
          client: formatEndpoint(caddr, cport),
          why: r.error,
        },
      );
      return;
    }
    const udpTimeoutMs = ctx.conns.timeouts().udp * 1000;
    const ends = { caddr, cport, daddr: r.daddr, dport: r.dport };
    if (ops) {
      const key = `${caddr}|${cport}|${r.daddr}|${r.dport}`;
      let flow = this.#opsFlows.get(key);
      if (!flow) {
        flow = ctx.udpFlows.open(this, ends, undefined, udpTimeoutMs);
        if (flow) {
          this.#opsFlows.set(key, flow);
          this.#flows.add(flow);
        }
      }
      if (flow) {
        ctx.conns.account(r, "in", 1, msg.length);
        ctx.syncIn?.(r, now);
      }
      ctx.conns.remove(r, now);
      flow?.send(msg);
      return;
    }
    const flow = ctx.udpFlows.open(this, ends, r, udpTimeoutMs);
    if (!flow) {
      // No socket to forward from (descriptor budget spent): the entry goes, the datagram is dropped.
      ctx.conns.remove(r, now);
      return;
    }
    ctx.conns.account(r, "in", 1, msg.length);
    ctx.syncIn?.(r, now);
    r.plane = flow;
    this.#flows.add(flow);
    flow.send(msg);
  }

  /** A reply from a real server goes back to the client from the VIP socket. */
  reply(flow: UdpFlow, msg: Buffer): void {
    const conn = flow.conn;
    if (conn) {
      this.ctx.conns.account(conn, "out", 1, msg.length);
      this.ctx.conns.touch(conn, this.ctx.clock.now());
    }
    flow.answered();
    this.#sock.send(msg, flow.cport, flow.caddr);
  }

  forget(flow: UdpFlow): void {
    this.#flows.delete(flow);
    const key = `${flow.caddr}|${flow.cport}|${flow.daddr}|${flow.dport}`;
    if (this.#opsFlows.get(key) === flow) this.#opsFlows.delete(key);
  }

  /** Stop receiving on the VIP (the service went); flows stay until their entries expire. */
  closeVip(): void {
    try {
      this.#sock.close();
    } catch {
      // already closed
    }
  }

  /** Close everything (daemon stop). */
  closeAll(): void {
    this.closeVip();
    for (const f of [...this.#flows]) f.close();
  }
}

/** Close a descriptor nobody took; one that is already gone is no error. */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
