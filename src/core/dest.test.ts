import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ConnKind, Dest, destSpec } from "./dest.ts";

function make(over: Partial<Parameters<typeof destSpec>[2]> = {}): Dest {
  return new Dest(destSpec("10.1.0.1", 80, over));
}

describe("destinations", () => {
  it("defaults as ipvsadm applies them", () => {
    const d = make();
    assert.deepEqual(d.spec(), {
      addr: "10.1.0.1",
      port: 80,
      fwd: "droute",
      weight: 1,
      uThreshold: 0,
      lThreshold: 0,
      tun: { type: "ipip", port: 0, nocsum: false, csum: false, remcsum: false },
    });
    assert.equal(d.family, 4);
    assert.equal(d.endpoint, "10.1.0.1:80");
    assert.equal(new Dest(destSpec("2001:db8::1", 80)).endpoint, "[2001:db8::1]:80");
  });

  it("counts: templates are references but not connections", () => {
    const d = make();
    d.bind("inactive");
    d.bind("active");
    d.bind("template");
    assert.deepEqual([d.activeConns, d.inactConns, d.persistConns, d.totalConns, d.refs], [1, 1, 1, 2, 3]);
    d.becameActive();
    assert.deepEqual([d.activeConns, d.inactConns], [2, 0]);
    d.becameInactive();
    for (const k of ["active", "inactive", "template"] as ConnKind[]) d.unbind(k);
    assert.deepEqual([d.activeConns, d.inactConns, d.persistConns, d.refs], [0, 0, 0, 0]);
  });

  // The kernel's overload rules: set on bind when u != 0 and total >= u; cleared on unbind when
  // total < l (l != 0), or total * 4 < u * 3 (l == 0, u != 0), or always (no thresholds).
  const overload: { name: string; u: number; l: number; binds: number; unbinds: number; over: boolean[] }[] = [
    { name: "u=3: set at the third", u: 3, l: 0, binds: 3, unbinds: 0, over: [false, false, true] },
    {
      name: "u=4, l=0: cleared when total*4 < 12",
      u: 4,
      l: 0,
      binds: 4,
      unbinds: 2,
      over: [false, false, false, true, true, false],
    },
    {
      name: "u=4, l=2: cleared below 2",
      u: 4,
      l: 2,
      binds: 4,
      unbinds: 3,
      over: [false, false, false, true, true, true, false],
    },
    {
      name: "no thresholds: never set",
      u: 0,
      l: 0,
      binds: 5,
      unbinds: 1,
      over: [false, false, false, false, false, false],
    },
  ];
  for (const c of overload) {
    it(`overload: ${c.name}`, () => {
      const d = make({ uThreshold: c.u, lThreshold: c.l });
      const seen: boolean[] = [];
      for (let i = 0; i < c.binds; i++) {
        d.bind("inactive");
        seen.push(d.overloaded);
      }
      for (let i = 0; i < c.unbinds; i++) {
        d.unbind("inactive");
        seen.push(d.overloaded);
      }
      assert.deepEqual(seen, c.over);
    });
  }

  it("an unbind with no thresholds clears a flag left from before the thresholds were removed", () => {
    const d = make({ uThreshold: 1 });
    d.bind("inactive");
    d.bind("inactive");
    d.update({ ...d.spec(), uThreshold: 0 }); // clearing u clears the flag at once (kernel)
    assert.equal(d.overloaded, false);
  });

  it("edits: a higher or zero upper threshold clears overload, a lower one does not", () => {
    const d = make({ uThreshold: 2 });
    d.bind("inactive");
    d.bind("inactive");
    assert.equal(d.overloaded, true);
    d.update({ ...d.spec(), uThreshold: 2 });
    assert.equal(d.overloaded, true);
    d.update({ ...d.spec(), uThreshold: 1 });
    assert.equal(d.overloaded, true);
    d.update({ ...d.spec(), uThreshold: 3 });
    assert.equal(d.overloaded, false);
  });

  it("last_weight keeps the latest non-zero weight; an add always sets it", () => {
    const d = make({ weight: 5 });
    assert.equal(d.lastWeight, 5);
    d.update({ ...d.spec(), weight: 0 });
    assert.deepEqual([d.weight, d.lastWeight], [0, 5]);
    d.update({ ...d.spec(), weight: 7 });
    assert.deepEqual([d.weight, d.lastWeight], [7, 7]);
    d.update({ ...d.spec(), weight: 0 }, true); // re-added from the trash with weight 0
    assert.deepEqual([d.weight, d.lastWeight], [0, 0]);
    assert.equal(make({ weight: 0 }).lastWeight, 0);
  });

  it("reports every rank change to its watcher", () => {
    const d = make();
    let calls = 0;
    d.loadWatcher = () => calls++;
    d.bind("inactive");
    d.becameActive();
    d.becameInactive();
    d.unbind("inactive");
    d.update(d.spec());
    assert.equal(calls, 5);
  });
});
