// SMTP_CHECK against loopback SMTP-speaking listeners: good dialogue, bad greeting, HELO refused,
// multi-line greeting, a server that stays silent.
import assert from "node:assert/strict";
import type net from "node:net";
import { test } from "node:test";
import { checkWithTimeout } from "../checker.ts";
import { checkerCommon, DEFAULT_SMTP_HELO, type SmtpCheckSpec } from "../checker-spec.ts";
import { listenTcp, silentTcp } from "../test-listeners.ts";
import { createSmtpChecker } from "./smtp.ts";

const spec = (over: Partial<SmtpCheckSpec> = {}): SmtpCheckSpec => ({
  ...checkerCommon("SMTP_CHECK", { connectTimeoutMs: 500 }),
  type: "SMTP_CHECK",
  heloName: DEFAULT_SMTP_HELO,
  ...over,
});

/** A scripted SMTP server: greeting, then a reply per command line; records the lines. */
function smtpServer(greeting: string, heloReply: string, lines: string[]) {
  return (s: net.Socket) => {
    s.write(greeting);
    let buf = "";
    s.on("data", (d) => {
      buf += d.toString("latin1");
      for (let i = buf.indexOf("\r\n"); i !== -1; i = buf.indexOf("\r\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        lines.push(line);
        if (line.startsWith("HELO ")) s.write(heloReply);
        else if (line === "QUIT") s.end("221 2.0.0 Bye\r\n");
        else s.write("500 5.5.1 Unknown\r\n");
      }
    });
  };
}

test("SMTP_CHECK reads 220, sends HELO with helo_name, expects 250, then QUITs", async (t) => {
  const lines: string[] = [];
  const l = await listenTcp(smtpServer("220 mx.example ESMTP\r\n", "250 mx.example\r\n", lines));
  t.after(() => l.close());
  const r = await checkWithTimeout(createSmtpChecker(spec()), { address: "127.0.0.1", port: l.port }, 500);
  assert.equal(r.ok, true, r.reason);
  assert.deepEqual(lines, [`HELO ${DEFAULT_SMTP_HELO}`, "QUIT"]);
  const lines2: string[] = [];
  const l2 = await listenTcp(smtpServer("220 mx\r\n", "250 ok\r\n", lines2));
  t.after(() => l2.close());
  await checkWithTimeout(
    createSmtpChecker(spec({ heloName: "lb1.example" })),
    { address: "127.0.0.1", port: l2.port },
    500,
  );
  assert.deepEqual(lines2, ["HELO lb1.example", "QUIT"]);
});

test("SMTP_CHECK fails on a greeting other than 220", async (t) => {
  const lines: string[] = [];
  const l = await listenTcp(smtpServer("554 No service\r\n", "250 ok\r\n", lines));
  t.after(() => l.close());
  const r = await checkWithTimeout(createSmtpChecker(spec()), { address: "127.0.0.1", port: l.port }, 500);
  assert.equal(r.ok, false);
  assert.equal(r.reason, 'Bad greeting "554 No service"');
  assert.deepEqual(lines, []);
});

test("SMTP_CHECK fails when HELO is not answered with 250", async (t) => {
  const lines: string[] = [];
  const l = await listenTcp(smtpServer("220 mx\r\n", "501 Syntax\r\n", lines));
  t.after(() => l.close());
  const r = await checkWithTimeout(createSmtpChecker(spec()), { address: "127.0.0.1", port: l.port }, 500);
  assert.equal(r.ok, false);
  assert.equal(r.reason, 'Bad HELO reply "501 Syntax"');
});

test("SMTP_CHECK reads a multi-line greeting to its last line", async (t) => {
  const lines: string[] = [];
  const l = await listenTcp(smtpServer("220-mx.example\r\n220-welcome\r\n220 ready\r\n", "250 ok\r\n", lines));
  t.after(() => l.close());
  const r = await checkWithTimeout(createSmtpChecker(spec()), { address: "127.0.0.1", port: l.port }, 500);
  assert.equal(r.ok, true, r.reason);
  assert.equal(lines.length, 2);
});

test("SMTP_CHECK times out on a silent server", async (t) => {
  const l = await silentTcp();
  t.after(() => l.close());
  const r = await checkWithTimeout(createSmtpChecker(spec()), { address: "127.0.0.1", port: l.port }, 200);
  assert.equal(r.ok, false);
  assert.equal(r.reason, "Timed out after 200 ms");
});
