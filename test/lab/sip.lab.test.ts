// --pe sip on tvsd's packet plane with real SIP endpoints: SIPp (Debian's sip-tester) runs its
// built-in user agent server on each real server and its built-in client in the client
// namespace; every call is INVITE, 180, 200, ACK, BYE, 200, and a call only succeeds when its
// ACK and BYE reach the real server that took its INVITE (any other answers 481).
//  - NAT, -p 300 --pe sip, one client socket per call (-t un): all calls succeed, each call has
//    one persistence template keyed by its Call-ID (tvsadm -Lcn --persistent-conn), and the
//    calls spread over both real servers.
//  - NAT, -p 300 --pe sip -o, every call from one client socket: the answers have no entry to
//    follow and are translated through the call's template (conn_out).
//  - DR, -p 300 --pe sip -o, every call from one client socket (-t u1): each datagram is
//    scheduled by its own Call-ID, so calls from one port still spread, and every call succeeds.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CommandError, run, runIn, sleep, spawnIn } from "../../src/lab/exec.ts";
import { Experiment, FORWARD_FLAG } from "../../src/lab/experiment.ts";

const root = process.getuid?.() === 0;
const SIP_PORT = 5060;
const CALLS = 20;

async function haveSipp(): Promise<boolean> {
  try {
    await run("sipp", ["-v"]);
    return true;
  } catch (e) {
    // sipp -v exits non-zero after printing its version.
    return e instanceof CommandError && /SIPp/.test(e.stdout + e.stderr);
  }
}

const CASES = [
  { mode: "nat", transport: "un", ops: false },
  // -o behind NAT: no entry outlives a datagram, so every answer of the real servers is a
  // real-server-started packet that the call's template translates (the kernel's conn_out).
  { mode: "nat", transport: "u1", ops: true },
  { mode: "dr", transport: "u1", ops: true },
] as const;

for (const { mode, transport, ops } of CASES) {
  test(
    `--pe sip ${mode}${ops ? " -o" : ""}: ${CALLS} SIPp calls (-t ${transport}) all succeed, one template per Call-ID, spread over both real servers`,
    { skip: root ? false : "needs root (network namespaces, raw sockets)", timeout: 180_000 },
    async (t) => {
      if (!(await haveSipp())) {
        t.skip("sipp not installed (apt-get install sip-tester)");
        return;
      }
      const exp = await Experiment.start({ mode, configure: false });
      const logs = mkdtempSync(join(tmpdir(), "sctp-sip-sipp-"));
      const uas: ChildProcess[] = [];
      t.after(async () => {
        for (const c of uas) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, "SIGTERM");
        await exp.stop();
        rmSync(logs, { recursive: true, force: true });
      });
      const vip = exp.vip;
      const { client } = exp.topo;
      const svc = `${vip}:${SIP_PORT}`;
      await exp.tvsadm(["-A", "-u", svc, "-s", "rr", "-p", "300", "--pe", "sip", ...(ops ? ["-o"] : [])]);
      for (const rs of exp.topo.realServers)
        await exp.tvsadm(["-a", "-u", svc, "-r", `${rs.ip}:${SIP_PORT}`, FORWARD_FLAG[mode]]);

      // The user agent servers: NAT real servers answer from their own address (the director
      // rewrites it to the VIP); DR real servers hold the VIP on lo and answer from it.
      for (const rs of exp.topo.realServers) {
        const addr = mode === "dr" ? vip : rs.ip;
        const log = join(logs, `${rs.name}.log`);
        uas.push(
          spawnIn(rs.host.ns, "sipp", ["-sn", "uas", "-i", addr, "-p", String(SIP_PORT), "-nostdin"], process.env, log),
        );
      }
      await sleep(500);

      let out = "";
      try {
        const r = await runIn(
          client.ns,
          "sipp",
          [
            svc,
            "-sn",
            "uac",
            "-i",
            exp.topo.plan.client,
            "-t",
            transport,
            "-m",
            String(CALLS),
            "-r",
            "10",
            "-timeout",
            "60s",
            "-timeout_error",
            "-nostdin",
            // A socket per call (-t un) needs a socket budget below the open-files limit.
            "-max_socket",
            "100",
          ],
          { timeoutMs: 90_000 },
        );
        out = r.stdout;
      } catch (e) {
        const logsText = exp.topo.realServers
          .map((rs) => `${rs.name}: ${readFileSync(join(logs, `${rs.name}.log`), "utf8").slice(-2000)}`)
          .join("\n");
        const detail = e instanceof CommandError ? `${e.stdout.slice(-3000)}\n${e.stderr}` : String(e);
        assert.fail(`sipp client failed (exit ${e instanceof CommandError ? e.code : "?"}):\n${detail}\n${logsText}`);
      }
      // SIPp's final screen: successful and failed call counts (cumulative column).
      const ok = /Successful call\s+\|\s+\d+\s+\|\s+(\d+)/.exec(out);
      const failed = /Failed call\s+\|\s+\d+\s+\|\s+(\d+)/.exec(out);
      assert.equal(Number(ok?.[1]), CALLS, `every call succeeded:\n${out.slice(-3000)}`);
      assert.equal(Number(failed?.[1] ?? 0), 0);

      // One template per call, keyed by its Call-ID, on one of the two real servers.
      const listing = await exp.tvsadm(["-L", "-n", "-c", "--persistent-conn"], true);
      const templates = listing.split("\n").filter((l) => / sip +\S+$/.test(l.trimEnd()));
      const callIds = new Set(templates.map((l) => l.trimEnd().split(/\s+/).at(-1)));
      assert.equal(callIds.size, CALLS, `one template per Call-ID:\n${listing}`);
      const perServer = new Map<string, number>();
      for (const l of templates) {
        const dest = l.trim().split(/\s+/)[5]!.replace(/:\d+$/, "");
        perServer.set(dest, (perServer.get(dest) ?? 0) + 1);
      }
      assert.deepEqual(
        [...perServer.keys()].sort(),
        exp.topo.realServers.map((rs) => rs.ip).sort(),
        `calls spread over both real servers: ${[...perServer].join(", ")}`,
      );
      for (const n of perServer.values()) assert.ok(n >= CALLS / 4, `no server starved: ${[...perServer].join(", ")}`);
    },
  );
}
