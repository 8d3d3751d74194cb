// Where tvsd listens and tvsadm connects: the control socket path, resolved the same way by both.
// Order: an explicit --socket value, then $TVS_SOCKET, then /run/tvs/control.sock for root, else
// $XDG_RUNTIME_DIR/tvs/control.sock, else /tmp/tvs-<uid>/control.sock.
//
// Whoever can write the socket's directory can move the socket aside and listen in its place, so
// both sides check the directory before using it (checkSocketDir): it must be a real directory
// (not a symbolic link) owned by the user or by root, and if its group or others may write to
// it, the sticky bit must be set (as on /tmp itself), so nobody else can rename or remove the
// socket. /tmp/tvs-<uid> created beforehand by another user, or with mode 777, is refused.

import { lstatSync } from "node:fs";
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

/** Why a socket directory cannot be trusted, or undefined when it can. Throws nothing. */
export function untrustedSocketDir(dir: string, uid: number | undefined = process.getuid?.()): string | undefined {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(dir);
  } catch (e) {
    return `cannot inspect "${dir}" (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
  if (st.isSymbolicLink()) return `"${dir}" is a symbolic link`;
  if (!st.isDirectory()) return `"${dir}" is not a directory`;
  if (uid === undefined) return undefined; // no ownership on this platform
  if (st.uid !== uid && st.uid !== 0) return `"${dir}" belongs to uid ${st.uid}, not to this user (uid ${uid})`;
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0)
    return `"${dir}" is writable by ${st.mode & 0o002 ? "every user" : "its group"} (mode ${(st.mode & 0o7777).toString(8)}); make it private (chmod 700) or use --socket`;
  return undefined;
}
