// tvsadm end to end: main() with its real HttpControlClient, over a Unix socket, to tvsd's
// ControlServer in front of a Director. Checks that requests, refusals (with batch indexes) and
// snapshots survive the transport unchanged.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { main } from "../../../src/cli/tvsadm/main.ts";
import { ControlServer } from "../../../src/control/server.ts";
import { silentLogger } from "../../../src/core/log.ts";
import { testBed, testResolver } from "./harness.ts";

test("tvsadm over the control socket", async (t) => {
  const bed = await testBed();
  const d = bed.director;
  const server = new ControlServer(
    {
      exec: async (req) => d.exec(req),
      snapshot: (q) => d.snapshot({ conns: q.conns, ...(q.service !== undefined ? { service: q.service } : {}) }),
      status: () => ({ dataplane: "none", pid: process.pid, uptimeMs: 0, checks: [], notes: [] }),
      reload: async () => {},
    },
    silentLogger,
  );
  const dir = mkdtempSync(join(tmpdir(), "tvsadm-e2e-"));
  const sock = join(dir, "control.sock");
  await server.listen(sock);
  t.after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = async (args: string[], stdin = "") => {
    let out = "";
    let err = "";
    const code = await main([...args, "--socket", sock], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      resolver: testResolver(),
      program: "ipvsadm",
      readStdin: async () => stdin,
    });
    return { code, out, err };
  };

  assert.deepEqual(await run(["-A", "-t", "10.0.0.100:80", "-s", "rr"]), { code: 0, out: "", err: "" });
  assert.deepEqual(await run(["-a", "-t", "10.0.0.100:80", "-r", "192.168.10.1", "-m", "-w", "2"]), {
    code: 0,
    out: "",
    err: "",
  });
  assert.deepEqual(await run(["-A", "-t", "10.0.0.100:80"]), { code: 255, out: "", err: "Service already exists\n" });
  assert.deepEqual(await run(["-L", "-n", "-t", "10.0.0.100:80"]), {
    code: 0,
    out:
      "Prot LocalAddress:Port Scheduler Flags\n" +
      "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
      "TCP  10.0.0.100:80 rr\n" +
      "  -> 192.168.10.1:80              Masq    2      0          0         \n",
    err: "",
  });
  assert.deepEqual(await run(["-L", "-n", "-t", "10.0.0.100:81"]), { code: 1, out: "", err: "No such service\n" });
  const refused = await run(["-R"], "-A -u 10.0.0.100:53\n-a -t 10.0.0.100:80 -r 192.168.10.1 -m\n");
  assert.deepEqual(refused, {
    code: 255,
    out: "",
    err: 'Destination already exists\nRestore failed at line 2 "-a -t 10.0.0.100:80 -r 192.168.10.1 -m": no rule was applied\n',
  });
  assert.deepEqual(await run(["-S", "-n"]), {
    code: 0,
    out: "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 192.168.10.1:80 -m -w 2\n",
    err: "",
  });
  assert.deepEqual(await run(["--set", "100", "0", "0"]), { code: 0, out: "", err: "" });
  assert.deepEqual(await run(["-L", "--timeout"]), {
    code: 0,
    out: "Timeout (tcp tcpfin udp): 100 120 300\n",
    err: "",
  });
  const sync = await run(["--start-daemon", "master"]);
  assert.equal(sync.code, 255);
  assert.match(sync.err, /^Operation not supported: /);
});
