// UDP on the socket data plane. A service's VIP socket receives datagrams; each client address
// and port is one flow (one UDP entry in the connection table, state UDP, the udp timeout refreshed
// by every datagram either way), forwarded through its own socket towards the chosen real server so
// the server's replies can be told apart and sent back to the client from the VIP socket, as the
// client expects. With one-packet scheduling (-o) every datagram is scheduled on its own and its
// entry leaves the table at once (as the kernel's OPS entries do); replies that come back within
// the udp timeout still reach the client. Every datagram counts as one packet with its payload bytes.

import dgram from "node:dgram";
import { formatEndpoint } from "../../core/addr.ts";
import type { Clock } from "../../core/clock.ts";
import type { BoundConn } from "../../core/conn/conn.ts";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import type { Logger } from "../../core/log.ts";
import type { Flow } from "../../core/sched/types.ts";
import type { VirtualService } from "../../core/service.ts";
import { type Arrival, type PlaneSlot, plainAddr } from "./tcp-relay.ts";

export interface UdpContext {
  conns: ConnTable;
  clock: Clock;
  log: Logger;
  /** Set while a sync master runs: called after each client datagram of an entry. */
  syncIn?: ((conn: BoundConn, now: number) => void) | undefined;
}

/** One client's datagrams towards one real server, and the server's replies back. */
class UdpFlow implements PlaneSlot {
  readonly #listener: UdpListener;
  readonly #sock: dgram.Socket;
  readonly caddr: string;
  readonly cport: number;
  readonly daddr: string;
  readonly dport: number;
  conn: BoundConn | undefined;
  #closed = false;
  #idle: NodeJS.Timeout | undefined;
  readonly #idleMs: number;

  constructor(listener: UdpListener, conn: BoundConn, caddr: string, cport: number, idleMs: number) {
    this.#listener = listener;
    this.caddr = caddr;
    this.cport = cport;
    this.daddr = conn.daddr;
    this.dport = conn.dport;
    this.conn = conn;
    this.#idleMs = idleMs;
    this.#sock = dgram.createSocket(conn.daddr.includes(":") ? "udp6" : "udp4");
    this.#sock.on("error", (err) => listener.ctx.log.debug("UDP flow socket error", { err }));
    this.#sock.on("message", (msg, rinfo) => {
      if (plainAddr(rinfo.address) !== this.daddr || rinfo.port !== this.dport) return;
      listener.reply(this, msg);
    });
  }

  send(msg: Buffer): void {
    if (this.#closed) return;
    this.#sock.send(msg, this.dport, this.daddr);
    this.#armIdle();
  }

  /** Flows whose entry left the table (ops) close after an idle udp timeout of their own. */
  #armIdle(): void {
    if (this.conn !== undefined) return;
    if (this.#idle) this.#idle.refresh();
    else {
      this.#idle = setTimeout(() => this.close(), this.#idleMs);
      this.#idle.unref();
    }
  }

  touched(): void {
    this.#armIdle();
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#idle) clearTimeout(this.#idle);
    this.#sock.close();
    this.#listener.forget(this);
  }

  closeFromTable(): void {
    this.close();
  }
}

export class UdpListener {
  readonly ctx: UdpContext;
  readonly svc: VirtualService;
  readonly arrival: Arrival;
  readonly #sock: dgram.Socket;
  /** Flows whose entries left the table at once (ops), keyed by client and destination. */
  readonly #opsFlows = new Map<string, UdpFlow>();
  readonly #flows = new Set<UdpFlow>();

  constructor(ctx: UdpContext, svc: VirtualService, arrival: Arrival) {
    this.ctx = ctx;
    this.svc = svc;
    this.arrival = arrival;
    this.#sock = dgram.createSocket({ type: arrival.vaddr.includes(":") ? "udp6" : "udp4" });
    this.#sock.on("message", (msg, rinfo) => {
      try {
        this.#onMessage(msg, rinfo);
      } catch (err) {
        ctx.log.warn("Datagram dropped", { service: svc.id, err });
      }
    });
  }

  /** Bind the VIP socket; rejects with the system error when the address cannot be used. */
  bind(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#sock.once("error", onError);
      this.#sock.bind({ address: this.arrival.vaddr, port: this.arrival.vport, exclusive: true }, () => {
        this.#sock.off("error", onError);
        this.#sock.on("error", (err) => this.ctx.log.warn("UDP VIP socket error", { service: this.svc.id, err }));
        resolve();
      });
    });
  }

  #onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const ctx = this.ctx;
    const caddr = plainAddr(rinfo.address) ?? rinfo.address;
    const cport = rinfo.port;
    const now = ctx.clock.now();
    const { vaddr, vport, fwmark } = this.arrival;
    const ops = this.svc.options.ops;
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
      family: this.svc.family,
      protocol: "udp",
      saddr: caddr,
      sport: cport,
      daddr: vaddr,
      dport: vport,
    };
    const r = ctx.conns.schedule(this.svc, f, now, fwmark ? { fwmark } : undefined);
    if ("error" in r) {
      ctx.log.debug("Datagram dropped: no destination", {
        service: this.svc.id,
        client: formatEndpoint(caddr, cport),
        why: r.error,
      });
      return;
    }
    ctx.conns.account(r, "in", 1, msg.length);
    ctx.syncIn?.(r, now);
    const udpTimeoutMs = ctx.conns.timeouts().udp * 1000;
    if (ops) {
      const key = `${caddr}|${cport}|${r.daddr}|${r.dport}`;
      let flow = this.#opsFlows.get(key);
      if (!flow) {
        flow = new UdpFlow(this, r, caddr, cport, udpTimeoutMs);
        flow.conn = undefined;
        this.#opsFlows.set(key, flow);
        this.#flows.add(flow);
      }
      ctx.conns.remove(r, now);
      flow.send(msg);
      return;
    }
    const flow = new UdpFlow(this, r, caddr, cport, udpTimeoutMs);
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
    } else flow.touched();
    this.#sock.send(msg, flow.cport, flow.caddr);
  }

  forget(flow: UdpFlow): void {
    this.#flows.delete(flow);
    this.#opsFlows.delete(`${flow.caddr}|${flow.cport}|${flow.daddr}|${flow.dport}`);
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
