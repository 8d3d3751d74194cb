// Runs every packet fixture through the pipeline over the memory PacketIo and compares verdicts,
// drop reasons and output frames byte for byte with the independently built expectations.
import assert from "node:assert/strict";
import { test } from "node:test";
import { packetFixtures, runFixture } from "./fixtures.ts";

function hex(b: Buffer): string {
  return b
    .toString("hex")
    .replace(/(.{28})/, "$1 ")
    .replace(/(.{70})/, "$1 ");
}

for (const fx of packetFixtures()) {
  test(fx.description, () => {
    const results = runFixture(fx);
    fx.steps.forEach((step, i) => {
      const r = results[i]!;
      assert.equal(r.verdict, step.verdict, `step ${i + 1}: verdict`);
      if (step.reason) assert.equal(r.reason, step.reason, `step ${i + 1}: drop reason`);
      assert.deepEqual(r.output.map(hex), step.output.map(hex), `step ${i + 1}: output frames`);
    });
  });
}
