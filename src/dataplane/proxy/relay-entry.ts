// The connection-table side of one TCP connection on the socket data plane, shared by its three
// relays (native-relay.ts, handle-relay.ts, tcp-relay.ts), which differ only in how bytes move.
// It admits the client, walks the entry through the kernel's TCP states as the sockets report,
// counts what passes, and retries elsewhere when a real server does not accept:
//
//   accept                       → SYN_RECV    (the real server is being reached)
//   the real server accepts      → ESTABLISHED
//   client sends FIN first       → CLOSE_WAIT,  real server sends FIN first → FIN_WAIT
//   both FINs seen               → TIME_WAIT   (the entry lingers and expires)
//   a reset either way, a failed or timed-out connect → CLOSE (the client gets a RST)
//
// Every read is counted as one packet with its payload bytes ("in" = client → server, "out" =
// server → client): a socket cannot see segments, so packets here are reads, and bytes are payload
// bytes without IP/TCP headers. Each read also refreshes the entry's timeout, as each packet does
// in the kernel.

import { formatEndpoint } from "../../core/addr.ts";
import type { BoundConn } from "../../core/conn/conn.ts";
import {
  TCP_S_CLOSE,
  TCP_S_CLOSE_WAIT,
  TCP_S_ESTABLISHED,
  TCP_S_FIN_WAIT,
  TCP_S_SYN_RECV,
  TCP_S_TIME_WAIT,
} from "../../core/conn/tcp-states.ts";
import type { Flow } from "../../core/sched/types.ts";
import type { VirtualService } from "../../core/service.ts";
import { proxyProtocolFor } from "./options.ts";
import { proxyHeader } from "./proxy-protocol.ts";
import type { Arrival, OpenRelay, PlaneSlot, TcpRelayContext } from "./tcp-relay.ts";

export type Direction = "in" | "out";

/**
 * Admission of a new client connection: two descriptors from the budget (the client's, already
 * accepted, and the real server's), a lingering entry of the same client port replaced, and the
 * service's scheduler asked. Returns the new entry holding both descriptors, or why the client
 * must be reset (nothing held then).
 */
export function admitTcpClient(
  ctx: TcpRelayContext,
  svc: VirtualService,
  arrival: Arrival,
  caddr: string,
  cport: number,
): BoundConn | "no-descriptor" | "no-destination" {
  if (!ctx.fds.take(2)) {
    ctx.fdAlarm.hit({ service: svc.id, fdLimit: ctx.fds.limit, fdUsed: ctx.fds.used });
    return "no-descriptor";
  }
  try {
    const now = ctx.clock.now();
    // A new connection from a client port whose previous entry still lingers (TIME_WAIT, CLOSE):
    // as the kernel does for a SYN with conn_reuse_mode, the old entry goes and the flow is
    // scheduled anew. The socket layer guarantees the old connection is over (same 4-tuple).
    const old = ctx.conns.lookupIn("tcp", caddr, cport, arrival.vaddr, arrival.vport);
    if (old !== undefined) {
      (old.plane as PlaneSlot | undefined)?.closeFromTable();
      old.plane = undefined;
      ctx.conns.remove(old, now);
    }
    const r = ctx.conns.schedule(svc, flowOf(svc, arrival, caddr, cport), now, fwmarkOf(arrival));
    if ("error" in r) {
      ctx.log.debug("Connection refused: no destination", {
        service: svc.id,
        client: formatEndpoint(caddr, cport),
        why: r.error,
      });
      ctx.fds.give(2);
      return "no-destination";
    }
    return r;
  } catch (err) {
    ctx.fds.give(2); // a bug: the caller resets the client, nothing stays held
    throw err;
  }
}

function flowOf(svc: VirtualService, arrival: Arrival, caddr: string, cport: number): Flow {
  return {
    family: svc.family,
    protocol: "tcp",
    saddr: caddr,
    sport: cport,
    daddr: arrival.vaddr,
    dport: arrival.vport,
  };
}

function fwmarkOf(arrival: Arrival): { fwmark: number } | undefined {
  return arrival.fwmark ? { fwmark: arrival.fwmark } : undefined;
}

export class RelayEntry {
  readonly ctx: TcpRelayContext;
  readonly svc: VirtualService;
  readonly arrival: Arrival;
  readonly caddr: string;
  readonly cport: number;
  /** The entry of the current attempt (a retry replaces it). */
  conn: BoundConn;
  /** An end of stream was read from the client / the real server. */
  clientEnded = false;
  backendEnded = false;
  /** The entry has its final state (TIME_WAIT or CLOSE). */
  done = false;
  readonly #slot: PlaneSlot & OpenRelay;
  #attempts = 1;
  /** The real servers that did not accept ("address|port"), made at the first failure. */
  #failed: Set<string> | undefined;

  /** The relay `slot` carries a client admitted as `conn`: the entry is SYN_RECV, the relay open. */
  constructor(
    ctx: TcpRelayContext,
    svc: VirtualService,
    arrival: Arrival,
    caddr: string,
    cport: number,
    conn: BoundConn,
    slot: PlaneSlot & OpenRelay,
  ) {
    this.ctx = ctx;
    this.svc = svc;
    this.arrival = arrival;
    this.caddr = caddr;
    this.cport = cport;
    this.conn = conn;
    this.#slot = slot;
    conn.plane = slot;
    ctx.open.add(slot);
    ctx.conns.setState(conn, TCP_S_SYN_RECV, ctx.clock.now());
  }

  /** The PROXY protocol header the current real server wants (tvsd --proxy-protocol), or undefined. */
  proxyHeader(): Buffer | undefined {
    const pp = proxyProtocolFor(this.ctx.options.proxyProtocol, this.svc.id, this.conn.dest.endpoint);
    if (pp === 0) return undefined;
    return proxyHeader(pp, {
      caddr: this.caddr,
      cport: this.cport,
      vaddr: this.arrival.vaddr,
      vport: this.arrival.vport,
    });
  }

  /** The real server accepted: ESTABLISHED; `local` is the director's end (FULLNAT's local endpoint). */
  established(local: { addr: string | undefined; port: number | undefined } | undefined): void {
    const ctx = this.ctx;
    const conn = this.conn;
    const now = ctx.clock.now();
    ctx.conns.setState(conn, TCP_S_ESTABLISHED, now);
    ctx.syncIn?.(conn, now);
    if (conn.fwd !== "fullnat" || local?.addr === undefined || local.port === undefined) return;
    // The director's side of the server connection is FULLNAT's local endpoint (-c shows it).
    try {
      ctx.conns.setLocal(conn, local.addr, local.port);
    } catch (err) {
      ctx.log.debug("FULLNAT local endpoint not recorded", { err });
    }
  }

  /**
   * A connect failed (refused, timed out, or could not start). --retry-connect (an extension) gives
   * the connection to another destination: the failed entry goes first, so it no longer counts
   * against its destination, then the flow is scheduled again. Returns true when the relay must
   * connect again (to this.conn's real server, not tried yet), false when it must reset the client
   * (the entry is CLOSE).
   */
  connectFailed(err: Error, clientOpen: boolean): boolean {
    if (this.done) return false;
    const ctx = this.ctx;
    const failed = this.conn;
    ctx.log.debug("Destination did not accept", {
      service: this.svc.id,
      dest: formatEndpoint(failed.daddr, failed.dport),
      err,
    });
    const tried = (this.#failed ??= new Set()).add(`${failed.daddr}|${failed.dport}`);
    if (ctx.options.retryConnect && this.#attempts < this.svc.dests.length && clientOpen) {
      const now = ctx.clock.now();
      failed.plane = undefined;
      ctx.conns.remove(failed, now);
      const r = ctx.conns.schedule(
        this.svc,
        flowOf(this.svc, this.arrival, this.caddr, this.cport),
        now,
        fwmarkOf(this.arrival),
      );
      if (!("error" in r)) {
        this.#attempts++;
        r.plane = this.#slot;
        this.conn = r;
        if (!tried.has(`${r.daddr}|${r.dport}`)) {
          ctx.conns.setState(r, TCP_S_SYN_RECV, now);
          return true;
        }
        // The scheduler chose a destination tried already: the client is finished with it.
      }
    }
    this.finish(TCP_S_CLOSE);
    return false;
  }

  /**
   * Reads passed on in one direction: counted, the timeout refreshed, the sync daemon told of the
   * client's. False when the entry's destination is gone under expire_nodest_conn: the kernel
   * drops the entry at its next packet, so the entry is removed and the relay resets both sockets.
   */
  passed(dir: Direction, packets: number, bytes: number): boolean {
    const ctx = this.ctx;
    const conn = this.conn;
    if (!conn.dest.available && ctx.conns.options.expireNodestConn) {
      this.done = true;
      ctx.conns.remove(conn, ctx.clock.now());
      return false;
    }
    if (packets > 0) ctx.conns.account(conn, dir, packets, bytes);
    const now = ctx.clock.now();
    ctx.conns.touch(conn, now);
    if (dir === "in" && packets > 0) ctx.syncIn?.(conn, now);
    return true;
  }

  /** An end of stream read from one side ("in": the client's) was passed on: the state moves. */
  ended(dir: Direction): void {
    if (dir === "in") this.clientEnded = true;
    else this.backendEnded = true;
    this.halfClosed(dir);
  }

  /** CLOSE_WAIT (client FIN first) or FIN_WAIT (real server FIN first); TIME_WAIT with both. */
  halfClosed(dir: Direction): void {
    if (this.done) return;
    const ctx = this.ctx;
    const now = ctx.clock.now();
    if (this.clientEnded && this.backendEnded) {
      this.finish(TCP_S_TIME_WAIT);
      return;
    }
    ctx.conns.setState(this.conn, dir === "in" ? TCP_S_CLOSE_WAIT : TCP_S_FIN_WAIT, now);
    if (dir === "in") ctx.syncIn?.(this.conn, now);
  }

  /** A socket failed: logged; the entry is CLOSE (the relay resets the other side). */
  failed(side: "client" | "backend", err: Error): void {
    this.ctx.log.debug(side === "client" ? "Client connection error" : "Real server connection error", {
      service: this.svc.id,
      err,
    });
    this.finish(TCP_S_CLOSE);
  }

  /** Leave the entry in its final state (once) to linger and expire. */
  finish(state: number): void {
    if (this.done) return;
    this.done = true;
    const ctx = this.ctx;
    ctx.conns.setState(this.conn, state, ctx.clock.now());
  }

  /** The drain gave up on the connection (the relay reset it): the entry is CLOSE. */
  aborted(): void {
    this.done = true;
    const ctx = this.ctx;
    ctx.conns.setState(this.conn, TCP_S_CLOSE, ctx.clock.now());
  }

  /** The relay holds no socket any more: it leaves the plane; the entry lingers. */
  leave(): void {
    this.ctx.open.delete(this.#slot);
    if (this.conn.plane === this.#slot) this.conn.plane = undefined;
  }

  /** What every relay's describe() starts with. */
  describe(): Record<string, unknown> {
    return {
      client: `${this.caddr}:${this.cport}`,
      state: this.conn.stateName,
      clientEnded: this.clientEnded,
      backendEnded: this.backendEnded,
    };
  }
}
