// tvs status prints the BGP announcer's state: BIRD's pid and socket, the announced VIPs and each
// VIP's decision with its reason.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { StatusView } from "../../control/api/protocol.ts";
import { formatStatus } from "./status.ts";

const base: StatusView = { dataplane: "packet", pid: 42, uptimeMs: 5000, checks: [], notes: [] };

test("the announcer's VIPs and decisions are listed", () => {
  const text = formatStatus(
    {
      ...base,
      announce: {
        daemon: "bird",
        pid: 77,
        socket: "/run/tvs/bird/bird.ctl",
        config: "/run/tvs/bird/bird.conf",
        announced: ["10.0.0.1"],
        lastError: undefined,
        decisions: [
          { vip: "10.0.0.1", announce: true, reason: "every service on it can serve" },
          { vip: "10.0.0.2", announce: false, reason: "1 of 1 services lost quorum" },
        ],
      },
    },
    "/run/tvs/control.sock",
  );
  assert.match(text, /BGP announcing \(BIRD pid 77, socket \/run\/tvs\/bird\/bird\.ctl\): 10\.0\.0\.1\n/);
  assert.match(text, / {2}10\.0\.0\.1: announced \(every service on it can serve\)\n/);
  assert.match(text, / {2}10\.0\.0\.2: withdrawn \(1 of 1 services lost quorum\)\n/);
});

test("without an announcer nothing about BGP is printed", () => {
  assert.doesNotMatch(formatStatus(base, "/s"), /BGP/);
});
