// Which packet worker a reassembled IPv6 datagram belongs to. Fragments are steered by addresses
// alone, so the worker that reassembled a datagram need not own its flow (address and port); it
// asks the steering program's own arithmetic (steering.ts steerFlow) over the whole datagram,
// with the plan built from its replica of the table (steering-plan.ts).
//
// The plan depends only on the table and the firewall-mark rules, so it is built once and kept
// until the worker is told they changed (invalidate(), on every table message). Building it for
// every datagram cost a walk over every service and a JSON image of the result: 4.6 ms a
// datagram with 1000 services, so a few hundred small fragmented datagrams a second kept a
// worker busy.

import { type SteeringPlan, steerFlow } from "../steering.ts";

export class DatagramHome {
  readonly #build: () => SteeringPlan;
  readonly #workers: number;
  #plan: SteeringPlan | undefined;
  /** Plans built so far (for tests). */
  builds = 0;

  constructor(build: () => SteeringPlan, workers: number) {
    this.#build = build;
    this.#workers = workers;
  }

  /** The table or the rules changed: the next datagram builds the plan again. */
  invalidate(): void {
    this.#plan = undefined;
  }

  /** The index of the worker that owns the flow of `frame` (link header, then the IPv6 datagram). */
  of(frame: Uint8Array): number {
    if (this.#plan === undefined) {
      this.#plan = this.#build();
      this.builds++;
    }
    return steerFlow(this.#plan, frame, 0, frame.length) % this.#workers;
  }
}
