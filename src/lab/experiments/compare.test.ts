// The comparison table of `tvs lab compare`: one column per method, rows from the measurements.
import assert from "node:assert/strict";
import { test } from "node:test";
import { comparisonTable, type ModeMeasurement } from "./compare.ts";

function m(mode: ModeMeasurement["mode"], over: Partial<ModeMeasurement>): ModeMeasurement {
  return {
    mode,
    clientAddressAtRealServer: "10.0.0.70",
    repliesPassDirector: false,
    directorOutPackets: 0,
    capturedReplyPackets: 0,
    portMapping: false,
    portMappingListed: "10.0.0.45:8000",
    realServerNeeds: ["nothing"],
    bulkBytes: 1e6,
    bulkIntact: true,
    bulkSeconds: 1,
    bulkMBps: 1,
    directorCpuSeconds: 0.5,
    directorCpuShare: 0.5,
    directorCpuMsPerMB: 500,
    ...over,
  };
}

test("the table has a column per method and rows from the measurements", () => {
  const t = comparisonTable(
    [
      m("nat", {
        repliesPassDirector: true,
        directorOutPackets: 7,
        capturedReplyPackets: 6,
        portMapping: true,
        realServerNeeds: ["route"],
      }),
      m("dr", { realServerNeeds: ["VIP on lo", "arp"] }),
      m("fullnat", { clientAddressAtRealServer: "10.0.0.31", bulkIntact: false }),
    ],
    { client: "10.0.0.70" },
  );
  const lines = t.split("\n");
  assert.match(lines[0] ?? "", /^ +NAT +DR +FULLNAT$/);
  assert.match(
    t,
    /^client address at the RS +client's \(10\.0\.0\.70\) +client's \(10\.0\.0\.70\) +director's local \(10\.0\.0\.31\)$/m,
  );
  assert.match(t, /^replies via the director +yes \(out 7, cap 6\) +no \(out 0, cap 0\) +no \(out 0, cap 0\)$/m);
  assert.match(t, /^port mapping +yes +no \(lists :8000\) +no \(lists :8000\)$/m);
  assert.match(t, /^real server needs +route +VIP on lo +nothing$/m);
  assert.match(t, /^ +arp$/m, "a second need goes on a line of its own");
  assert.match(t, /^bulk download +1 MB\/s +1 MB\/s +1 MB\/s DAMAGED$/m);
  assert.match(t, /^director CPU +50% \(500 ms\/MB\)/m);
});
