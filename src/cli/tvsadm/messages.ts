// libipvs's ipvs_strerror: the words ipvsadm prints when the kernel refuses a request, chosen by
// the operation and the errno. tvsd answers with a CoreError code; tvsadm knows which request it
// sent, so the pair (request op, code) picks exactly the message ipvsadm would print.

import type { CoreErrorCode } from "../../core/errors.ts";

/** The operation as libipvs names its functions (by control API op). */
type LibOp =
  | "add-service"
  | "edit-service"
  | "del-service"
  | "zero"
  | "add-dest"
  | "edit-dest"
  | "del-dest"
  | "start-daemon"
  | "stop-daemon"
  | "get-service"
  | "flush"
  | "set-timeout";

const BY_OP: ReadonlyArray<[LibOp, CoreErrorCode, string]> = [
  ["add-service", "EEXIST", "Service already exists"],
  ["add-service", "ENOENT", "Scheduler or persistence engine not found"],
  ["edit-service", "ESRCH", "No such service"],
  ["edit-service", "ENOENT", "Scheduler or persistence engine not found"],
  ["del-service", "ESRCH", "No such service"],
  ["zero", "ESRCH", "No such service"],
  ["add-dest", "ESRCH", "Service not defined"],
  ["add-dest", "EEXIST", "Destination already exists"],
  ["edit-dest", "ESRCH", "Service not defined"],
  ["edit-dest", "ENOENT", "No such destination"],
  ["del-dest", "ESRCH", "Service not defined"],
  ["del-dest", "ENOENT", "No such destination"],
  ["start-daemon", "EEXIST", "Daemon has already run"],
  ["stop-daemon", "ESRCH", "No daemon is running"],
  ["get-service", "ESRCH", "No such service"],
];

const ANY_OP: Partial<Record<CoreErrorCode, string>> = {
  EINVAL: "Invalid operation.  Possibly wrong module version, address not unicast, ...",
  ENOMEM: "Memory allocation problem",
};

/** strerror(3) for the codes core uses. */
const STRERROR: Record<CoreErrorCode, string> = {
  EEXIST: "File exists",
  ENOENT: "No such file or directory",
  ESRCH: "No such process",
  EINVAL: "Invalid argument",
  ERANGE: "Numerical result out of range",
  EBUSY: "Device or resource busy",
  ENOMEM: "Cannot allocate memory",
  EOPNOTSUPP: "Operation not supported",
  ENODEV: "No such device",
};

/**
 * ipvsadm's message for (op, code). EOPNOTSUPP is tvs's own case (a valid request this tvsd
 * cannot honour yet, e.g. sync daemons): libipvs would say "Operation not supported with IPv6",
 * which would mislead, so the daemon's own explanation is appended instead.
 */
export function ipvsStrerror(op: string, code: CoreErrorCode, detail = ""): string {
  for (const [o, c, m] of BY_OP) if (o === op && c === code) return m;
  if (code === "EOPNOTSUPP") return detail ? `Operation not supported: ${detail}` : STRERROR.EOPNOTSUPP;
  // A code this tvsadm does not know (a newer daemon): the daemon's own words.
  return ANY_OP[code] ?? STRERROR[code] ?? (detail || code);
}
