// Where tvsd listens and tvsadm connects: the control socket path, resolved the same way by both.
// Order: an explicit --socket value, then $TVS_SOCKET, then /run/tvs/control.sock for root, else
// $XDG_RUNTIME_DIR/tvs/control.sock, else /tmp/tvs-<uid>/control.sock.

import { join } from "node:path";

export interface SocketPathEnv {
  /** The --socket argument, when given. */
  explicit?: string | undefined;
  /** Environment variables (TVS_SOCKET, XDG_RUNTIME_DIR). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Effective user id; undefined where the platform has none (then treated as non-root). */
  uid?: number | undefined;
}

export const ROOT_SOCKET_PATH = "/run/tvs/control.sock";

export function defaultSocketPath(opts: SocketPathEnv = {}): string {
  if (opts.explicit !== undefined && opts.explicit !== "") return opts.explicit;
  const env = opts.env ?? process.env;
  const fromEnv = env.TVS_SOCKET;
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const uid = "uid" in opts ? opts.uid : process.getuid?.();
  if (uid === 0) return ROOT_SOCKET_PATH;
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg !== undefined && xdg !== "") return join(xdg, "tvs", "control.sock");
  return join("/tmp", `tvs-${uid ?? "unknown"}`, "control.sock");
}
