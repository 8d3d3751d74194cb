// IPVS sysctls by the kernel's names end to end: tvsd --sysctl at start, GET/POST /v1/sysctl,
// `tvs sysctl [NAME[=VALUE]]`, refusals naming what was wrong, and drop_packet=3 actually refusing
// new connections through a real tvsd (socket plane) while the others get through.

import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import { run as sysctlCli } from "../src/cli/tvs/sysctl.ts";
import { ApiError } from "../src/control/api/client.ts";
import { parseTvsdArgs, UsageError } from "../src/control/tvsd-main.ts";
import { adm, freePort, nameServer, startTvsd } from "./tvsd-harness.ts";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const w1 = process.stdout.write.bind(process.stdout);
  const w2 = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => {
    out += s;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => {
    err += s;
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await sysctlCli(args);
    return { code, out, err };
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
  }
}

test("tvsd --sysctl NAME=VALUE: parsed, later wins, bad ones refused naming the flag", () => {
  const a = parseTvsdArgs([
    "--sysctl",
    "drop_entry=1",
    "--sysctl=net.ipv4.vs.amemthresh=50",
    "--sysctl",
    "drop_entry=3",
  ]);
  assert.deepEqual(a.sysctls, { drop_entry: 3, amemthresh: 50 });
  const bad = (argv: string[], re: RegExp) =>
    assert.throws(
      () => parseTvsdArgs(argv),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
    );
  bad(["--sysctl", "drop_entry=7"], /--sysctl: sysctl drop_entry "7" is not an integer in 0\.\.3/);
  bad(["--sysctl", "bogus=1"], /--sysctl: unknown sysctl "bogus"/);
  bad(["--sysctl", "secure_tcp"], /--sysctl: "secure_tcp" is not NAME=VALUE/);
  bad(["--sysctl", "secure_tcp=1"], /--sysctl secure_tcp=1: .*needs the packet data plane/);
  bad(["--sysctl", "synproxy=1"], /--sysctl synproxy=1: .*needs the packet data plane/);
  bad(["--sysctl", "synproxy=2"], /sysctl synproxy "2" is not an integer in 0\.\.1/);
  bad(["--sysctl", "stateless_syn=1"], /--sysctl stateless_syn=1: .*needs the packet data plane/);
  assert.equal(
    parseTvsdArgs(["--dataplane", "packet", "--interface", "eth0", "--sysctl", "stateless_syn=1"]).sysctls
      .stateless_syn,
    1,
  );
  assert.equal(
    parseTvsdArgs(["--dataplane", "packet", "--interface", "eth0", "--sysctl", "synproxy=1"]).sysctls.synproxy,
    1,
  );
  assert.equal(
    parseTvsdArgs(["--dataplane", "packet", "--interface", "eth0", "--sysctl", "secure_tcp=1"]).sysctls.secure_tcp,
    1,
  );
});

test("sysctls over the control API and tvs sysctl; drop_packet=3 refuses one new connection in am_droprate", async (t) => {
  const rs = await nameServer("rs1");
  const port = await freePort();
  const d = await startTvsd(["--sysctl", "drop_entry=1", "--sysctl", "am_droprate=4"]);
  t.after(async () => {
    await d.stop();
    await rs.close();
  });
  await adm(d, "-A", "-t", `127.0.0.1:${port}`, "-s", "rr");
  await adm(d, "-a", "-t", `127.0.0.1:${port}`, "-r", `127.0.0.1:${rs.port}`, "-m");

  const v = await d.client.sysctl();
  assert.equal(v.sysctls.drop_entry, 1);
  assert.equal(v.sysctls.am_droprate, 4);
  assert.equal(v.sysctls.conn_reuse_mode, 1);
  assert.equal(v.defense.dropRate, 0);

  let r = await cli(["--socket", d.socket]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^net\.ipv4\.vs\.drop_entry = 1 /m);
  assert.match(r.out, /defence: drop_entry off, secure_tcp off, drop_packet off/);
  r = await cli(["--socket", d.socket, "drop_packet=3"]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, "net.ipv4.vs.drop_packet = 3\n");
  r = await cli(["--socket", d.socket, "net.ipv4.vs.drop_packet"]);
  assert.equal(r.out, "net.ipv4.vs.drop_packet = 3\n");

  // The socket plane refuses what it cannot honour; nothing changes.
  await assert.rejects(
    d.client.sysctl({ name: "secure_tcp", value: 1 }),
    (e: unknown) => e instanceof ApiError && /packet data plane/.test(e.message),
  );
  await assert.rejects(
    d.client.sysctl({ name: "synproxy", value: 1 }),
    (e: unknown) => e instanceof ApiError && /packet data plane/.test(e.message),
  );
  r = await cli(["--socket", d.socket, "secure_tcp=9"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /tvs sysctl: sysctl secure_tcp "9" is not an integer in 0\.\.3/);
  assert.equal((await d.client.sysctl()).sysctls.secure_tcp, 0);

  // 12 connections one after another: every 4th is refused (reset) by drop_packet.
  const outcomes: boolean[] = [];
  for (let i = 0; i < 12; i++) {
    outcomes.push(
      await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: "127.0.0.1", port });
        s.on("data", () => {
          resolve(true);
          s.destroy();
        });
        s.on("error", () => resolve(false));
        s.on("close", () => resolve(false));
        setTimeout(() => s.destroy(), 3000).unref();
      }),
    );
  }
  assert.deepEqual(
    outcomes,
    Array.from({ length: 12 }, (_, i) => i % 4 !== 3),
  );
  const after = await d.client.sysctl();
  assert.equal(after.defense.dropRate, 4);
  assert.equal(after.defense.packetsDropped, 3);
});
