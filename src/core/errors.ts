// Typed errors thrown by core. The code is the errno the kernel's IPVS would return for the same
// request, and `op` names the operation, so the CLI can print ipvsadm's exact words for the pair.

export type CoreErrorCode =
  | "EEXIST" // the object already exists
  | "ENOENT" // scheduler/persistence engine not found, or destination missing (dest ops)
  | "ESRCH" // no such service
  | "EINVAL" // malformed argument
  | "ERANGE" // argument out of range
  | "EBUSY" // object in use
  | "ENOMEM" // a bounded table is full
  | "EOPNOTSUPP" // valid request this build or data plane cannot honour
  | "ENODEV"; // no such network interface (sync daemon's --mcast-interface)

export type CoreOp =
  | "add-service"
  | "edit-service"
  | "del-service"
  | "add-dest"
  | "edit-dest"
  | "del-dest"
  | "flush"
  | "zero"
  | "set-timeout"
  | "start-daemon"
  | "stop-daemon"
  | "get-service"
  | "get-dest"
  | "schedule"
  | "conn"
  | "stats" // rate estimator
  | "reload" // tvsd: re-reading the rules/config file
  | "request"; // tvsd: a control API request that could not be parsed or routed

export class CoreError extends Error {
  readonly code: CoreErrorCode;
  readonly op: CoreOp;
  constructor(code: CoreErrorCode, op: CoreOp, message: string) {
    super(message);
    this.name = "CoreError";
    this.code = code;
    this.op = op;
  }
}

export function isCoreError(e: unknown): e is CoreError {
  return e instanceof CoreError;
}
