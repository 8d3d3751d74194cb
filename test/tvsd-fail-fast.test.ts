// tvsd fails fast (issue 10 item 6): a real tvsd process, serving a service with a connection
// open, meets an exception nobody catches or a rejection nobody handles. It must log the error
// as one JSON line at level error (with the stack) and exit at once with EX_SOFTWARE (70), not
// drain and not keep serving. The fault is raised inside the daemon by a module loaded with
// node --import (test/fixtures/fault-on-signal.mjs) when the test sends SIGUSR2.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { adm, freePort, nameServer, openClient, ROOT, startTvsd, waitFor } from "./tvsd-harness.ts";

const FAULT_MODULE = join(ROOT, "test/fixtures/fault-on-signal.mjs");
const EX_SOFTWARE = 70;

/** The daemon's exit status, or a failure when it is still running after `ms`. */
async function exitWithin(exited: Promise<number | null>, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`tvsd still running ${ms} ms after the fault`)), ms);
  });
  try {
    return await Promise.race([exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

for (const [fault, msg, errText] of [
  ["throw", "Uncaught exception: exiting", "Injected exception"],
  ["reject", "Unhandled rejection: exiting", "Injected rejection"],
] as const) {
  test(`tvsd logs ${fault === "throw" ? "an uncaught exception" : "an unhandled rejection"} and exits ${EX_SOFTWARE}`, async (t) => {
    const rs = await nameServer("rs1");
    t.after(() => rs.close());
    const vport = await freePort();
    const d = await startTvsd([], { nodeArgs: ["--import", FAULT_MODULE], env: { TVS_TEST_FAULT: fault } });
    t.after(() => d.stop());
    await adm(d, "-A", "-t", `127.0.0.1:${vport}`, "-s", "rr");
    await adm(d, "-a", "-t", `127.0.0.1:${vport}`, "-r", `127.0.0.1:${rs.port}`, "-m");
    const client = await openClient(vport);
    t.after(() => client.close());
    assert.equal(client.name, "rs1");

    d.proc.kill("SIGUSR2");
    const code = await exitWithin(d.exited, 10_000);

    assert.equal(code, EX_SOFTWARE);
    const fatal = d.logs.find((l) => l.msg === msg);
    assert.ok(fatal, `no "${msg}" line in:\n${d.stderrText()}`);
    assert.equal(fatal.level, "error");
    assert.equal(fatal.err, errText);
    assert.equal(fatal.exitCode, EX_SOFTWARE);
    assert.match(String(fatal.stack), new RegExp(`Error: ${errText}\\n\\s+at `));
    // Fail fast means no drain: the clean-stop path never ran.
    assert.equal(
      d.logs.some((l) => l.msg === "Draining" || l.msg === "tvsd stopped"),
      false,
    );
    // The open connection went with the process.
    await waitFor(
      "the client connection to close",
      () => client.sock.destroyed || client.sock.readableEnded || undefined,
    );
    assert.equal(existsSync(d.socket), true, "the stale control socket stays for the next daemon to replace");
  });
}

test("a tvsd started on the stale socket of a failed one replaces it and serves", async (t) => {
  const first = await startTvsd([], { nodeArgs: ["--import", FAULT_MODULE], env: { TVS_TEST_FAULT: "throw" } });
  t.after(() => first.stop());
  first.proc.kill("SIGUSR2");
  assert.equal(await exitWithin(first.exited, 10_000), EX_SOFTWARE);

  const second = await startTvsd([], { socket: first.socket, dir: first.dir });
  t.after(() => second.stop());
  assert.ok(second.logs.some((l) => l.msg === "Replaced a stale control socket"));
  assert.equal((await second.tvsadm("-L", "-n")).code, 0);
});
