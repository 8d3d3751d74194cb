// tvsadm without a daemon: the HttpControlClient on the --socket path fails to connect, and tvsadm
// says so the way ipvsadm does when it cannot reach IPVS (exit 2), naming the socket.
import assert from "node:assert/strict";
import { test } from "node:test";
import { main } from "../../../src/cli/tvsadm/main.ts";
import { testResolver } from "./harness.ts";

test("no tvsd listening: a clear error and exit 2", async () => {
  let out = "";
  let err = "";
  const code = await main(["-L", "-n", "--socket", "/nonexistent/tvs.sock"], {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    resolver: testResolver(),
  });
  assert.equal(code, 2);
  assert.equal(out, "");
  assert.equal(
    err,
    `Can't initialize ipvs: ENOENT\nAre you sure that tvsd is running and listening on "/nonexistent/tvs.sock"?\n`,
  );
});

test("argument errors need no daemon", async () => {
  let err = "";
  const code = await main(["-A", "-t", "10.0.0.1:80", "-w", "3"], {
    stdout: { write: () => true },
    stderr: { write: (s: string) => (err += s) },
    env: { TVS_SOCKET: "/nonexistent/tvs.sock" },
    resolver: testResolver(),
  });
  assert.equal(code, 2);
  assert.equal(err, "Illegal 'weight' option with the 'add-service' command\n");
});
