// The sweep that finds resets on sockets a fallback relay is not reading (handle-relay.ts,
// tcp-relay.ts). libuv reports a socket's reset only to a read or a write in progress on it, and
// a relay leaves sides unread: the client while its real server is being reached, a side whose
// end of stream was read (reading it again would only read that end again, at once and forever),
// and a source paused behind a full destination. A reset there (the client giving up during the
// connect, a real server that closed after its answer and resets the client's next bytes, either
// peer resetting behind a stalled one) would go unnoticed until the entry timed out, holding both
// descriptors; the pump (native/src/tcp_relay.c) sees it at once from epoll.
//
// So while a relay has such a side it is on a list that one timer sweeps every PROBE_MS. The
// relay asks getpeername of each side, which the kernel refuses (ENOTCONN) once a reset has closed
// the socket and which succeeds in every state a live connection, half-closed or not, can be in;
// a failed probe is that socket's error, and the relay resets the other side (entry CLOSE).

/** How often the relays with an unread side are probed for a reset. */
export const PROBE_MS = 100;

/** A relay that may have an unread side. */
export interface UnreadProbed {
  /** Probe the unread sides (failing the relay on a reset); false once none is left unread. */
  probeUnread(): boolean;
}

const unread = new Set<UnreadProbed>();
let sweep: NodeJS.Timeout | undefined;

/** The relay has (or may have) a side not being read: probe it until it has none. */
export function watchUnread(relay: UnreadProbed): void {
  unread.add(relay);
  if (sweep !== undefined) return;
  sweep = setInterval(() => {
    for (const r of unread) if (!r.probeUnread()) unread.delete(r);
    if (unread.size > 0) return;
    clearInterval(sweep);
    sweep = undefined;
  }, PROBE_MS);
  sweep.unref();
}

/** A socket handle's probe: 0 while connected, a negative errno (ENOTCONN) once reset or closed. */
export function peerProbe(handle: { getpeername(out: object): number } | undefined | null): number {
  return handle ? handle.getpeername({}) : 0;
}
