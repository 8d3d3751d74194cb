// Hardening regressions (issue #11), end to end against a real tvsd under a lowered open-files
// limit: a UDP flood and a crowd of idle TCP clients cannot take the descriptors the control
// socket needs; a change that cannot be carried out changes nothing and names its line; the
// control socket's directory is checked; SIGHUP during start-up; the smaller items.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import dgram from "node:dgram";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { main as tvsadmMain } from "../src/cli/tvsadm/main.ts";
import { ApiError, HttpControlClient } from "../src/control/api/client.ts";
import {
  adm,
  freePort,
  freeUdpPort,
  type HeldClient,
  nameServer,
  openClient,
  ROOT,
  startTvsd,
  udpClient,
  udpNameServer,
  waitFor,
  whoAnswers,
} from "./tvsd-harness.ts";

const NOFILE = 256;

function fdCount(pid: number | undefined): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function notes(status: { notes: string[] }, prefix: string): string {
  return status.notes.find((n) => n.startsWith(prefix)) ?? "";
}

async function tvsadmIn(
  socket: string,
  args: string[],
  stdin?: string,
): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await tvsadmMain(["--socket", socket, ...args], {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    ...(stdin !== undefined ? { readStdin: async () => stdin } : {}),
  });
  return { code, out, err };
}

test("item 1: a UDP flood from 3,000 source ports cannot exhaust descriptors; TCP, UDP and tvsadm keep working", async (t) => {
  const udpReal = await udpNameServer("u1");
  const tcpReal = await nameServer("t1");
  const tvsd = await startTvsd([], { nofile: NOFILE });
  t.after(async () => {
    await tvsd.stop();
    await udpReal.close();
    await tcpReal.close();
  });
  const uport = await freeUdpPort();
  const tport = await freePort();
  await adm(tvsd, "-A", "-u", `127.0.0.1:${uport}`, "-s", "rr");
  await adm(tvsd, "-a", "-u", `127.0.0.1:${uport}`, "-r", `127.0.0.1:${udpReal.port}`, "-m");
  await adm(tvsd, "-A", "-t", `127.0.0.1:${tport}`, "-s", "rr");
  await adm(tvsd, "-a", "-t", `127.0.0.1:${tport}`, "-r", `127.0.0.1:${tcpReal.port}`, "-m");
  // One datagram from each of 3,000 fresh source ports (bounded: 3,000 sockets, 30 at a time).
  for (let i = 0; i < 3000; i += 30) {
    await Promise.all(
      Array.from({ length: 30 }, async () => {
        const s = dgram.createSocket("udp4");
        s.on("error", () => {});
        await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
        await new Promise<void>((r) => s.send("flood", uport, "127.0.0.1", () => r()));
        await new Promise<void>((r) => s.close(() => r()));
      }),
    );
  }
  assert.ok(fdCount(tvsd.proc.pid) < NOFILE, `tvsd holds ${fdCount(tvsd.proc.pid)} descriptors`);
  const list = await tvsd.tvsadm("-L", "-n");
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, new RegExp(`UDP  127\\.0\\.0\\.1:${uport}`));
  assert.equal(await whoAnswers(tport), "t1");
  const c = await udpClient();
  assert.equal(await c.ask(uport, "still"), "u1:still");
  await c.close();
  const status = await tvsd.client.status();
  const m = /^UDP flows: (\d+) of (\d+) on (\d+) socket\(s\) \(evicted (\d+)\)$/.exec(notes(status, "UDP flows:"));
  assert.ok(m, JSON.stringify(status.notes));
  const [flows, limit, sockets, evicted] = m.slice(1).map(Number) as [number, number, number, number];
  assert.ok(flows <= limit && sockets <= flows, m[0]);
  assert.ok(evicted > 0, m[0]);
  assert.ok(tvsd.logs.some((l) => l.level === "warn" && String(l.msg).startsWith("UDP flow table full")));
});

test("item 1: flows towards different real servers share sockets", async (t) => {
  const reals = [await udpNameServer("a"), await udpNameServer("b"), await udpNameServer("c")];
  const tvsd = await startTvsd();
  const clients: Awaited<ReturnType<typeof udpClient>>[] = [];
  t.after(async () => {
    for (const c of clients) await c.close();
    await tvsd.stop();
    for (const r of reals) await r.close();
  });
  const uport = await freeUdpPort();
  await adm(tvsd, "-A", "-u", `127.0.0.1:${uport}`, "-s", "rr");
  for (const r of reals) await adm(tvsd, "-a", "-u", `127.0.0.1:${uport}`, "-r", `127.0.0.1:${r.port}`, "-m");
  const answers: string[] = [];
  for (let i = 0; i < 9; i++) {
    const c = await udpClient();
    clients.push(c);
    answers.push((await c.ask(uport, `q${i}`)).split(":")[0] as string);
  }
  assert.deepEqual(answers.sort(), ["a", "a", "a", "b", "b", "b", "c", "c", "c"]);
  // Replies reach the right client on a shared socket.
  for (const [i, c] of clients.entries()) assert.match(await c.ask(uport, `again${i}`), new RegExp(`:again${i}$`));
  const status = await tvsd.client.status();
  assert.match(notes(status, "UDP flows:"), /^UDP flows: 9 of \d+ on 3 socket\(s\) \(evicted 0\)$/);
});

test("item 1: --udp-flow-limit and --fd-reserve are honoured", async (t) => {
  const udpReal = await udpNameServer("u1");
  const tvsd = await startTvsd(["--udp-flow-limit", "5", "--fd-reserve", "100"], { nofile: NOFILE });
  const clients: Awaited<ReturnType<typeof udpClient>>[] = [];
  t.after(async () => {
    for (const c of clients) await c.close();
    await tvsd.stop();
    await udpReal.close();
  });
  const uport = await freeUdpPort();
  await adm(tvsd, "-A", "-u", `127.0.0.1:${uport}`, "-s", "rr");
  await adm(tvsd, "-a", "-u", `127.0.0.1:${uport}`, "-r", `127.0.0.1:${udpReal.port}`, "-m");
  for (let i = 0; i < 12; i++) {
    const c = await udpClient();
    clients.push(c);
    assert.equal(await c.ask(uport, `q${i}`), `u1:q${i}`);
  }
  const status = await tvsd.client.status();
  assert.match(notes(status, "UDP flows:"), /^UDP flows: 5 of 5 on 5 socket\(s\) \(evicted 7\)$/);
  assert.match(notes(status, "File descriptors on the data plane:"), /of \d+ \(reserve 100 for control; refused 0\)$/);
  // The five most recent clients still have their flows.
  const snap = await tvsd.snapshot(true);
  assert.equal((snap.conns ?? []).filter((c) => c.protocol === "udp").length, 5);
});

test("item 2: idle TCP clients beyond the descriptor budget are refused with an error log; the control socket answers", async (t) => {
  const real = await nameServer("t1");
  const tvsd = await startTvsd([], { nofile: NOFILE });
  const held: HeldClient[] = [];
  const raw: net.Socket[] = [];
  t.after(async () => {
    for (const c of held) c.sock.destroy();
    for (const s of raw) s.destroy();
    await tvsd.stop();
    await real.close();
  });
  const port = await freePort();
  await adm(tvsd, "-A", "-t", `127.0.0.1:${port}`, "-s", "rr");
  await adm(tvsd, "-a", "-t", `127.0.0.1:${port}`, "-r", `127.0.0.1:${real.port}`, "-m");
  // 200 idle clients would need 400 descriptors in tvsd; it has 256 in all.
  let refused = 0;
  for (let i = 0; i < 200; i++) {
    try {
      held.push(await openClient(port));
    } catch {
      refused++;
    }
  }
  assert.ok(refused > 0 && held.length > 50, `held ${held.length}, refused ${refused}`);
  assert.ok(fdCount(tvsd.proc.pid) < NOFILE);
  const list = await tvsd.tvsadm("-L", "-n");
  assert.equal(list.code, 0, list.err);
  const status = await tvsd.client.status();
  assert.match(notes(status, "File descriptors on the data plane:"), /refused [1-9]\d*\)$/);
  await waitFor("the error line", () =>
    tvsd.logs.find((l) => l.level === "error" && String(l.msg).startsWith("Data plane at its file descriptor limit")),
  );
  // Held clients still work; once they go, new clients are served again.
  assert.equal(await (held[0] as HeldClient).echo("ping"), "ping");
  for (const c of held.splice(0)) await c.close();
  await waitFor(
    "a new client to be served",
    async () => (await whoAnswers(port).catch(() => "")) === "t1" || undefined,
  );
});

test("item 3: a batch whose second VIP cannot be bound changes nothing and names line 2", async (t) => {
  const tvsd = await startTvsd();
  t.after(() => tvsd.stop());
  const port = await freePort();
  const r = await tvsadmIn(tvsd.socket, ["-R"], `-A -t 127.0.0.1:${port} -s rr\n-A -t 10.255.1.1:80 -s rr\n`);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /Restore failed at line 2 "-A -t 10\.255\.1\.1:80 -s rr"/);
  assert.equal((await adm(tvsd, "-S", "-n")).trim(), "");
  // Nothing is left listening on the first VIP.
  await assert.rejects(whoAnswers(port));
  const snap = await tvsd.snapshot();
  assert.equal(snap.services.length, 0);
});

test("item 3: a refused reload leaves the running services exactly as they were", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-harden-"));
  const real = await nameServer("t1");
  const port = await freePort();
  const rules = join(dir, "rules");
  const keep = `-A -t 127.0.0.1:${port} -s rr\n-a -t 127.0.0.1:${port} -r 127.0.0.1:${real.port} -m -w 1\n`;
  writeFileSync(rules, keep);
  const tvsd = await startTvsd(["--rules", rules]);
  t.after(async () => {
    await tvsd.stop();
    await real.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const before = await adm(tvsd, "-S", "-n");
  // The new file drops the service and adds one whose VIP is not local.
  writeFileSync(rules, "-A -t 10.255.1.1:80 -s rr\n");
  await assert.rejects(tvsd.client.reload(), (e: unknown) => e instanceof ApiError && /10\.255\.1\.1/.test(e.message));
  assert.equal(await adm(tvsd, "-S", "-n"), before);
  assert.equal(await whoAnswers(port), "t1");
});

test("item 3: a 300-service batch refused for lack of descriptors leaves no listener behind", async (t) => {
  const tvsd = await startTvsd([], { nofile: NOFILE });
  t.after(() => tvsd.stop());
  const baseline = fdCount(tvsd.proc.pid);
  const lines: string[] = [];
  for (let i = 0; i < 300; i++) lines.push(`-A -t 127.78.${1 + Math.floor(i / 250)}.${1 + (i % 250)}:8080 -s rr`);
  const r = await tvsadmIn(tvsd.socket, ["-R"], `${lines.join("\n")}\n`);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /^Device or resource busy\nRestore failed at line \d+ "-A -t 127\.78\./);
  const refusal = await waitFor("the refusal in the log", () => tvsd.logs.find((l) => l.msg === "Request refused"));
  assert.match(String(refusal?.message), /^Cannot listen on tcp 127\.78\.\S+: no file descriptor left/);
  assert.equal((await adm(tvsd, "-S", "-n")).trim(), "");
  assert.ok(fdCount(tvsd.proc.pid) <= baseline + 2, `${fdCount(tvsd.proc.pid)} descriptors, ${baseline} before`);
  // The operator can still change things.
  const port = await freePort();
  await adm(tvsd, "-A", "-t", `127.0.0.1:${port}`, "-s", "rr");
});

test("item 4: tvsd refuses a control socket directory others can write or another user owns", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-sockdir-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const open = join(dir, "open");
  mkdirSync(open);
  chmodSync(open, 0o777);
  const theirs = join(dir, "theirs");
  mkdirSync(theirs, { mode: 0o755 });
  chownSync(theirs, 65534, 65534);
  for (const d of [open, theirs]) {
    const started = await startTvsd([], { socket: join(d, "control.sock") }).catch((e: Error) => e);
    if (!(started instanceof Error)) {
      await started.stop(); // never leave a daemon behind, even when the check is missing
      assert.fail(`tvsd started with its socket in ${d}`);
    }
    assert.match(started.message, /Refusing control socket directory/);
    assert.ok(!existsSync(join(d, "control.sock")));
  }
  // tvsadm will not talk to a socket in such a directory either.
  const fake = net.createServer((s) => s.end("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"));
  await new Promise<void>((r) => fake.listen(join(open, "control.sock"), () => r()));
  t.after(() => fake.close());
  const r = await tvsadmIn(join(open, "control.sock"), ["-L", "-n"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /untrusted socket directory: ".*open" is writable by every user/);
  // A fresh directory is created private to its owner's writes.
  const fresh = join(dir, "fresh", "tvs");
  const tvsd = await startTvsd([], { socket: join(fresh, "control.sock") });
  await tvsd.stop();
});

test("item 6: a table full of TIME_WAIT entries takes new clients at once", async (t) => {
  const real = await nameServer("t1");
  const tvsd = await startTvsd(["--conn-limit", "20"]);
  t.after(async () => {
    await tvsd.stop();
    await real.close();
  });
  const port = await freePort();
  await adm(tvsd, "-A", "-t", `127.0.0.1:${port}`, "-s", "rr");
  await adm(tvsd, "-a", "-t", `127.0.0.1:${port}`, "-r", `127.0.0.1:${real.port}`, "-m");
  for (let i = 0; i < 20; i++) assert.equal(await whoAnswers(port), "t1");
  await waitFor("20 lingering entries", async () => {
    const c = (await tvsd.snapshot(true)).conns ?? [];
    return (c.length === 20 && c.every((e) => e.state === "TIME_WAIT" || e.state === "CLOSE")) || undefined;
  });
  // Twenty more short connections, right away: each finds room by reclaiming a lingering entry.
  for (let i = 0; i < 20; i++) assert.equal(await whoAnswers(port), "t1");
  const status = await tvsd.client.status();
  assert.match(
    notes(status, "Connection table:"),
    /^Connection table: \d+ entries \(limit 20, dropped 0, reclaimed [1-9]\d*\)$/,
  );
});

test("item 7: a SIGHUP during start-up is applied once ready and does not kill tvsd", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-hup-"));
  const rules = join(dir, "rules");
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) lines.push(`-A -t 127.79.${1 + Math.floor(i / 250)}.${1 + (i % 250)}:8080 -s rr`);
  writeFileSync(rules, `${lines.join("\n")}\n`);
  const socket = join(dir, "sub", "control.sock");
  const proc = spawn(
    process.execPath,
    ["--import", "tsx", join(ROOT, "bin/tvsd.ts"), "--socket", socket, "--rules", rules],
    {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let err = "";
  proc.stderr?.on("data", (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
    proc.once("exit", (code, signal) => r({ code, signal })),
  );
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  // The socket directory appears early in start-up, long before 3,000 VIPs are bound.
  await waitFor("start-up to begin", () => existsSync(join(dir, "sub")) || undefined, 20_000);
  proc.kill("SIGHUP");
  await waitFor(
    "tvsd to be ready",
    () => {
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(`tvsd died (${proc.signalCode}):\n${err.slice(-2000)}`);
      return err.includes('"msg":"tvsd ready"') || undefined;
    },
    60_000,
  );
  await waitFor("the queued reload", () => err.includes('"msg":"Reloaded"') || undefined, 30_000);
  // (Node runs the handler when start-up yields: either "SIGHUP during start-up" or right after "tvsd ready".)
  proc.kill("SIGTERM");
  assert.deepEqual(await exited, { code: 0, signal: null });
});

test("item 8: -g notes follow the table; an empty rules file is refused on reload; tvsadm names a non-tvsd socket", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-small-"));
  const real = await nameServer("t1");
  const port = await freePort();
  const rules = join(dir, "rules");
  writeFileSync(rules, `-A -t 127.0.0.1:${port} -s rr\n-a -t 127.0.0.1:${port} -r 127.0.0.1:${real.port} -m\n`);
  const tvsd = await startTvsd(["--rules", rules]);
  const fakePath = join(dir, "fake.sock");
  const fake = net.createServer((s) => {
    s.on("error", () => {});
    s.end("SSH-2.0-OpenSSH_9.2\r\n");
  });
  await new Promise<void>((r) => fake.listen(fakePath, () => r()));
  t.after(async () => {
    fake.close();
    await tvsd.stop();
    await real.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const other = await freePort();
  for (let i = 0; i < 5; i++) {
    await adm(tvsd, "-A", "-t", `127.0.0.1:${other}`, "-s", "rr");
    await adm(tvsd, "-a", "-t", `127.0.0.1:${other}`, "-r", "127.0.0.2", "-g");
    if (i === 0)
      assert.ok(
        (await tvsd.client.status()).notes.some((n) => n.startsWith("Direct routing carried as masq")),
        "the mapping is noted while it exists",
      );
    await adm(tvsd, "-D", "-t", `127.0.0.1:${other}`);
  }
  const st = await tvsd.client.status();
  assert.deepEqual(
    st.notes.filter((n) => n.startsWith("Direct routing carried as masq")),
    [],
  );
  writeFileSync(rules, "");
  await assert.rejects(tvsd.client.reload(), /is empty; the running services stay/);
  assert.match(await adm(tvsd, "-L", "-n"), new RegExp(`127\\.0\\.0\\.1:${port}`));
  const r = await tvsadmIn(fakePath, ["-L", "-n"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /does not speak the tvsd control API/);
  assert.doesNotMatch(r.err, /^Can't initialize ipvs: HPE_/);
  // The client is a plain HTTP client: the same error from the library.
  await assert.rejects(
    new HttpControlClient({ socketPath: fakePath }).snapshot(),
    /does not speak the tvsd control API/,
  );
});
