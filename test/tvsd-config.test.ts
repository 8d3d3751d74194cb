// tvsd --config with a keepalived.conf in the style of seed 002/004 (loopback addresses): the
// virtual server comes up with its real servers, TCP_CHECK takes a killed real server out and puts
// it back when it returns, `tvs status` shows the checks, all servers down brings the sorry
// server in, and a broken config on SIGHUP is refused while the running state stays.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { freePort, nameServer, ROOT, startTvsd, waitFor, whoAnswers } from "./tvsd-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "tvsd-config-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function keepalivedConf(vport: number, rs: number[], sorry: number): string {
  const reals = rs
    .map(
      (port) => `    real_server 127.0.0.1 ${port} {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }`,
    )
    .join("\n");
  return `! Configuration File for keepalived (seed 004 style, on loopback)
global_defs {
    router_id LVS_DEVEL
}
virtual_server 127.0.0.1 ${vport} {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    persistence_timeout 0
    protocol TCP
    sorry_server 127.0.0.1 ${sorry}
${reals}
}
`;
}

test("keepalived.conf: checks remove and restore real servers; sorry server; broken reload refused", async (t) => {
  const rs1 = await nameServer("rs1");
  let rs2 = await nameServer("rs2");
  const sorry = await nameServer("sorry");
  t.after(async () => {
    await rs1.close();
    await rs2.close();
    await sorry.close();
  });
  const vport = await freePort();
  const conf = join(dir, "keepalived.conf");
  writeFileSync(conf, keepalivedConf(vport, [rs1.port, rs2.port], sorry.port));
  const d = await startTvsd(["--config", conf]);
  t.after(() => d.stop());

  const dests = async () => {
    const s = await d.snapshot();
    return s.services[0]?.dests.map((x) => `${x.spec.port}:${x.spec.weight}`).sort() ?? [];
  };
  const both = [`${rs1.port}:1`, `${rs2.port}:1`].sort();
  await waitFor("both real servers", async () => JSON.stringify(await dests()) === JSON.stringify(both) || undefined);
  const answers = new Set([await whoAnswers(vport), await whoAnswers(vport)]);
  assert.deepEqual([...answers].sort(), ["rs1", "rs2"]);

  // Kill rs2: TCP_CHECK fails retry + 1 times and the destination leaves the service.
  const port2 = rs2.port;
  await rs2.close();
  await waitFor(
    "rs2 removed",
    async () => JSON.stringify(await dests()) === JSON.stringify([`${rs1.port}:1`]) || undefined,
    15_000,
  );
  for (let i = 0; i < 4; i++) assert.equal(await whoAnswers(vport), "rs1");

  const status = spawnSync(process.execPath, [join(ROOT, "bin", "tvs.js"), "status", "--json"], {
    encoding: "utf8",
    env: { ...process.env, TVS_SOCKET: d.socket },
  });
  assert.equal(status.status, 0, status.stderr);
  const checks = JSON.parse(status.stdout).checks as { dest: string; state: string; checker: string }[];
  const rs2Check = checks.find((c) => c.dest.endsWith(`:${port2}`) && c.checker !== "sorry_server");
  assert.equal(rs2Check?.state, "down");

  // Bring rs2 back on the same port: one success restores it.
  rs2 = await nameServer("rs2", "127.0.0.1", port2);
  await waitFor(
    "rs2 restored",
    async () => JSON.stringify(await dests()) === JSON.stringify(both) || undefined,
    15_000,
  );

  // All down: the sorry server serves.
  await rs1.close();
  await rs2.close();
  await waitFor(
    "sorry server in",
    async () => JSON.stringify(await dests()) === JSON.stringify([`${sorry.port}:1`]) || undefined,
    15_000,
  );
  assert.equal(await whoAnswers(vport), "sorry");

  // A broken config on SIGHUP is refused; the running state stays.
  writeFileSync(conf, `${keepalivedConf(vport, [rs1.port], sorry.port)}\nvirtual_server 127.0.0.1 {\n`);
  d.proc.kill("SIGHUP");
  await waitFor("reload refused", () => d.logs.find((l) => String(l.msg).startsWith("Reload refused")));
  assert.deepEqual(await dests(), [`${sorry.port}:1`]);
  assert.equal(await whoAnswers(vport), "sorry");
});
