import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { harness } from "./harness.ts";

describe("rr", () => {
  it("serves the kernel's list order: the most recently added first", () => {
    const h = harness("rr");
    h.add("10.1.0.1");
    h.add("10.1.0.2");
    h.add("10.1.0.3");
    assert.deepEqual(h.picks(7), ["10.1.0.3", "10.1.0.2", "10.1.0.1", "10.1.0.3", "10.1.0.2", "10.1.0.1", "10.1.0.3"]);
  });

  const cases: { name: string; weights: number[]; overloaded?: number[]; expect: string[] }[] = [
    { name: "weight 0 is skipped", weights: [1, 0, 1], expect: ["a3", "a1", "a3", "a1"] },
    { name: "weights do not matter otherwise", weights: [5, 1], expect: ["a2", "a1", "a2", "a1"] },
    { name: "overloaded is skipped", weights: [1, 1, 1], overloaded: [2], expect: ["a3", "a1", "a3"] },
    { name: "all weight 0: none", weights: [0, 0], expect: ["-", "-"] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const h = harness("rr");
      const ds = c.weights.map((w, i) => h.add(`10.1.0.${i + 1}`, w));
      for (const i of c.overloaded ?? []) (ds[i - 1] as (typeof ds)[0]).overloaded = true;
      const got = h.picks(c.expect.length).map((a) => (a === "-" ? a : `a${a.split(".")[3]}`));
      assert.deepEqual(got, c.expect);
    });
  }

  it("reports no destination with the kernel's message", () => {
    const h = harness("rr");
    assert.equal(h.pick(), undefined);
    assert.equal(h.svc.lastNoDestination, "RR: no destination available");
    assert.equal(h.svc.noDestinationCount, 1);
  });

  it("removing the destination under the cursor resumes with its successor", () => {
    const h = harness("rr");
    const d1 = h.add("10.1.0.1");
    h.add("10.1.0.2");
    h.add("10.1.0.3");
    const d4 = h.add("10.1.0.4"); // list: 4 3 2 1
    assert.deepEqual(h.picks(2), ["10.1.0.4", "10.1.0.3"]);
    h.del(h.svc.findDest("10.1.0.3", 80)!); // cursor on 3 → back to 4, next is 2
    assert.deepEqual(h.picks(3), ["10.1.0.2", "10.1.0.1", "10.1.0.4"]);
    h.del(d4); // cursor on 4 (head) → back to the list head
    assert.deepEqual(h.picks(2), ["10.1.0.2", "10.1.0.1"]);
    h.del(d1); // cursor on the last entry → predecessor 2
    assert.deepEqual(h.picks(2), ["10.1.0.2", "10.1.0.2"]);
  });

  it("an added destination goes to the head, visited after the walk wraps", () => {
    const h = harness("rr");
    h.add("10.1.0.1");
    h.add("10.1.0.2"); // 2 1
    assert.deepEqual(h.picks(1), ["10.1.0.2"]);
    h.add("10.1.0.3"); // 3 2 1, cursor still on 2
    assert.deepEqual(h.picks(4), ["10.1.0.1", "10.1.0.3", "10.1.0.2", "10.1.0.1"]);
  });
});
