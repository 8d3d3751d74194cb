// The one request vocabulary of tvs, from tvsadm to core. ipvsadm's grammar (config/ipvsadm-grammar.ts)
// turns a command line into a SingleRequest, -R turns a rules file into a list of them, the control API
// (control/api/protocol.ts) carries them as JSON, reconcile and the health supervisor produce them,
// and a table image's diff (table-image.ts) is a list of TableRequests applied by the same table
// methods. Everything here is plain data so it crosses the socket and worker threads unchanged.
//
// A list applied all or nothing ("batch", ipvsadm -R) fails with a BatchError: the core error of the
// request that failed plus its zero-based index in the list, which tvsadm turns back into the line
// of the rules file and the control API reports as `index`.

import type { Timeouts } from "./conn/conn-timeouts.ts";
import type { DestSpec } from "./dest.ts";
import { CoreError } from "./errors.ts";
import type { ServiceKey, ServiceOptions } from "./service.ts";

export type { Timeouts } from "./conn/conn-timeouts.ts";

/** ipvsadm --start-daemon's settings; 0 or "" means "the daemon's default". */
export interface SyncDaemonSpec {
  state: "master" | "backup";
  mcastIfn: string;
  syncId: number;
  syncMaxLen: number;
  mcastGroup: string;
  mcastPort: number;
  mcastTtl: number;
}

/** A change to the service table alone: what a table image's diff is made of. */
export type TableRequest =
  | { op: "add-service"; key: ServiceKey; options: ServiceOptions }
  | { op: "edit-service"; key: ServiceKey; options: ServiceOptions }
  | { op: "del-service"; key: ServiceKey }
  | { op: "add-dest"; key: ServiceKey; dest: DestSpec }
  | { op: "edit-dest"; key: ServiceKey; dest: DestSpec }
  | { op: "del-dest"; key: ServiceKey; addr: string; port: number };

/** One mutating operation; ipvsadm's commands map onto these one to one. */
export type SingleRequest =
  | TableRequest
  | { op: "flush" }
  | { op: "zero"; key?: ServiceKey }
  | { op: "set-timeout"; timeouts: Timeouts }
  | { op: "start-daemon"; daemon: SyncDaemonSpec }
  | { op: "stop-daemon"; state: "master" | "backup" };

/** What the control API executes: one request, or a list applied all or nothing (ipvsadm -R). */
export type ExecRequest = SingleRequest | { op: "batch"; requests: ExecRequest[] };

/** A batch failed: the failing request's error, and `index`, its zero-based position in the list. */
export class BatchError extends CoreError {
  readonly index: number;
  constructor(cause: Pick<CoreError, "code" | "op" | "message">, index: number) {
    super(cause.code, cause.op, cause.message);
    this.name = "BatchError";
    this.index = index;
  }
}
