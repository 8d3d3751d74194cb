// DNS_CHECK against a loopback UDP server: the query's bytes, a good answer, NXDOMAIN, a reply
// with the wrong id (ignored: the check times out, or passes when the right one follows), a reply
// that is not a response, a closed port (ICMP), and ldirectord's answer regex.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkWithTimeout } from "../checker.ts";
import { checkerCommon, type DnsCheckSpec } from "../checker-spec.ts";
import { listenUdp } from "../test-listeners.ts";
import { answerAddresses, createDnsChecker, encodeName, encodeQuery } from "./dns.ts";

const spec = (over: Partial<DnsCheckSpec> = {}): DnsCheckSpec => ({
  ...checkerCommon("DNS_CHECK", { connectTimeoutMs: 500 }),
  type: "DNS_CHECK",
  queryType: "SOA",
  name: "",
  ...over,
});

/** A response to `query`: same id and question, QR=1, RD copied, the given rcode and A answers. */
function answer(query: Buffer, opts: { rcode?: number; id?: number; qr?: boolean; a?: string[] } = {}): Buffer {
  const head = Buffer.from(query.subarray(0, 12));
  if (opts.id !== undefined) head.writeUInt16BE(opts.id, 0);
  head.writeUInt16BE((opts.qr === false ? 0 : 0x8000) | 0x0100 | 0x0080 | (opts.rcode ?? 0), 2);
  const answers = (opts.a ?? []).map((ip) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question name
    rr.writeUInt16BE(1, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(4, 10);
    ip.split(".").forEach((o, i) => {
      rr[12 + i] = Number(o);
    });
    return rr;
  });
  head.writeUInt16BE(answers.length, 6);
  return Buffer.concat([head, query.subarray(12), ...answers]);
}

test("names and queries are encoded as keepalived sends them", () => {
  assert.deepEqual(encodeName(""), Buffer.from([0]));
  assert.deepEqual(encodeName("."), Buffer.from([0]));
  assert.deepEqual(encodeName("www.example.com."), Buffer.from("\x03www\x07example\x03com\x00", "latin1"));
  assert.throws(() => encodeName(`${"a".repeat(64)}.com`), /longer than 63 bytes/);
  const q = encodeQuery(0x1234, "example.com", "A");
  assert.deepEqual(
    q,
    Buffer.concat([
      Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
      Buffer.from("\x07example\x03com\x00", "latin1"),
      Buffer.from([0, 1, 0, 1]),
    ]),
  );
  assert.deepEqual(answerAddresses(answer(q, { a: ["10.0.0.1", "10.0.0.2"] })), ["10.0.0.1", "10.0.0.2"]);
});

test("DNS_CHECK passes on a matching NOERROR response and sends the configured question", async (t) => {
  const srv = await listenUdp((msg, reply) => reply(answer(msg)));
  t.after(() => srv.close());
  const r = await checkWithTimeout(
    createDnsChecker(spec({ queryType: "MX", name: "example.com" })),
    { address: "127.0.0.1", port: srv.port },
    500,
  );
  assert.equal(r.ok, true, r.reason);
  const q = srv.received[0] as Buffer;
  assert.equal(q.readUInt16BE(2), 0x0100);
  assert.equal(q.readUInt16BE(4), 1);
  assert.deepEqual(q.subarray(12), Buffer.from("\x07example\x03com\x00\x00\x0f\x00\x01", "latin1"));
});

test("DNS_CHECK fails on NXDOMAIN", async (t) => {
  const srv = await listenUdp((msg, reply) => reply(answer(msg, { rcode: 3 })));
  t.after(() => srv.close());
  const r = await checkWithTimeout(createDnsChecker(spec()), { address: "127.0.0.1", port: srv.port }, 500);
  assert.equal(r.ok, false);
  assert.equal(r.reason, "DNS rcode 3 (NXDOMAIN)");
});

test("DNS_CHECK ignores a reply with the wrong id (times out) but takes the right one that follows", async (t) => {
  const wrong = await listenUdp((msg, reply) => reply(answer(msg, { id: (msg.readUInt16BE(0) + 1) & 0xffff })));
  t.after(() => wrong.close());
  const r = await checkWithTimeout(createDnsChecker(spec()), { address: "127.0.0.1", port: wrong.port }, 250);
  assert.equal(r.ok, false);
  assert.equal(r.reason, "Timed out after 250 ms");
  const both = await listenUdp((msg, reply) => {
    reply(answer(msg, { id: (msg.readUInt16BE(0) + 1) & 0xffff, rcode: 2 }));
    reply(answer(msg, { qr: false, rcode: 2 }));
    reply(answer(msg));
  });
  t.after(() => both.close());
  const r2 = await checkWithTimeout(createDnsChecker(spec()), { address: "127.0.0.1", port: both.port }, 500);
  assert.equal(r2.ok, true, r2.reason);
});

test("DNS_CHECK fails at once when the port is closed (ICMP port unreachable)", async () => {
  const srv = await listenUdp(() => {});
  const port = srv.port;
  await srv.close();
  const r = await checkWithTimeout(createDnsChecker(spec()), { address: "127.0.0.1", port }, 2000);
  assert.equal(r.ok, false);
  assert.equal(r.reason, "Connection refused");
});

test("ldirectord's receive: an answer address must match", async (t) => {
  const srv = await listenUdp((msg, reply) => reply(answer(msg, { a: ["192.0.2.7"] })));
  t.after(() => srv.close());
  const target = { address: "127.0.0.1", port: srv.port };
  const ok = await checkWithTimeout(
    createDnsChecker(spec({ queryType: "A", name: "www", answerRegex: "^192\\.0\\.2\\.7$" })),
    target,
    500,
  );
  assert.equal(ok.ok, true, ok.reason);
  const bad = await checkWithTimeout(
    createDnsChecker(spec({ queryType: "A", name: "www", answerRegex: "^10\\." })),
    target,
    500,
  );
  assert.equal(bad.ok, false);
  assert.equal(bad.reason, "No DNS answer address [192.0.2.7] matches /^10\\./");
});
