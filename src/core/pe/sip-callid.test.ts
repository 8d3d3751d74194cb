// The SIP Call-ID as the kernel's SIP persistence engine reads it, on whole messages: full and
// compact header names in any case, folded values, LF-only line ends; no Call-ID for a message
// without one, a truncated one, a value followed by anything but a line break, a value over 255
// bytes, or a lookalike header that stops the search.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PE_DATA_MAXLEN, sipCallId } from "./sip-callid.ts";
import * as m from "./sip-messages.ts";

const id = (text: string) => {
  const b = m.sipBytes(text);
  return sipCallId(b, 0, b.length);
};

test("the Call-ID of whole messages", () => {
  const cases: [string, string, string | undefined][] = [
    ["INVITE", m.INVITE, m.CALL_1],
    ["ACK", m.ACK, m.CALL_1],
    ["BYE (CALL-ID in upper case)", m.BYE, m.CALL_1],
    ["INVITE of another call", m.INVITE_2, m.CALL_2],
    ["compact i: with no blank", m.COMPACT, m.CALL_COMPACT],
    ["value on a folded line", m.FOLDED, m.CALL_2],
    ["Call-Info and If-Match are passed over", m.LOOKALIKES, m.CALL_1],
    ["LF-only line ends, compact form", m.LF_ONLY, m.CALL_1],
    ["no Call-ID header", m.NO_CALL_ID, undefined],
    ["truncated right after the value", m.TRUNCATED, undefined],
    ["value followed by a blank and more", m.TRAILING_GARBAGE, undefined],
  ];
  for (const [name, text, want] of cases) assert.equal(id(text), want, name);
});

test("the request line is not a header; the search starts at the offset given", () => {
  const b = m.sipBytes(`Call-ID: first\r\nCall-ID: second\r\n\r\n`);
  assert.equal(sipCallId(b, 0, b.length), "second");
  const framed = Buffer.concat([Buffer.from("UDPHDR!!"), Buffer.from(m.sipBytes(m.INVITE))]);
  assert.equal(sipCallId(framed, 8, framed.length), m.CALL_1);
  assert.equal(sipCallId(framed, 8, 40), undefined, "the end bounds the search");
});

test("an empty value is skipped and the search goes on; a lookalike name or a bare line break stops it", () => {
  assert.equal(id("X sip:a SIP/2.0\r\nCall-ID: ;\r\nCall-ID: b@c\r\n\r\n"), "b@c");
  // A value that is a line break not followed by a continuation ends the search (the kernel's).
  assert.equal(id("X sip:a SIP/2.0\r\nCall-ID: \r\nCall-ID: b@c\r\n\r\n"), undefined);
  assert.equal(id("X sip:a SIP/2.0\r\nCall-IDs: a\r\nCall-ID: b\r\n\r\n"), undefined);
  assert.equal(id("X sip:a SIP/2.0\r\nCall-ID: a@\r\n\r\n"), undefined, "an @ with no host part");
  // An SDP "i=" line reached before any Call-ID ends the search, as in the kernel.
  assert.equal(id("X sip:a SIP/2.0\r\nContent-Length: 5\r\n\r\ni=x\r\nCall-ID: z\r\n"), undefined);
});

test("a value of 255 bytes is kept, 256 is refused", () => {
  const v = (n: number) => "a".repeat(n);
  assert.equal(id(`X sip:a SIP/2.0\r\nCall-ID: ${v(PE_DATA_MAXLEN)}\r\n\r\n`), v(PE_DATA_MAXLEN));
  assert.equal(id(`X sip:a SIP/2.0\r\nCall-ID: ${v(PE_DATA_MAXLEN + 1)}\r\n\r\n`), undefined);
});

test("bytes outside ASCII end the value; every byte value is safe to scan", () => {
  assert.equal(id("X sip:a SIP/2.0\r\nCall-ID: ab\xe9\r\n\r\n"), undefined);
  const all = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) & 0xff));
  assert.doesNotThrow(() => sipCallId(all, 0, all.length));
});
