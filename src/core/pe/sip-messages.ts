// SIP messages for tests and fixtures, written to RFC 3261's grammar (CR LF line ends, a blank
// line before the body, SDP bodies with their own "i=" lines): one call's INVITE, 200 OK, ACK
// and BYE sent from different client ports, a second call, the compact header forms a phone
// squeezing into one datagram uses, a keepalive without Call-ID, a truncated message and
// lookalike headers. Tests read the Call-ID each should (or should not) yield.

const CRLF = "\r\n";

function msg(lines: string[], body = ""): string {
  const withLength = lines.map((l) => (l === "Content-Length: *" ? `Content-Length: ${body.length}` : l));
  return withLength.join(CRLF) + CRLF + CRLF + body;
}

const SDP = [
  "v=0",
  "o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com",
  "s=-",
  "i=A call about load balancing",
  "c=IN IP4 192.0.2.101",
  "t=0 0",
  "m=audio 49172 RTP/AVP 0",
  "a=rtpmap:0 PCMU/8000",
  "",
].join(CRLF);

export const CALL_1 = "a84b4c76e66710@pc33.atlanta.example.com";
export const CALL_2 = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@biloxi.example.com";
export const CALL_COMPACT = "3848276298220188511@atlanta.example.com";

/** INVITE opening call 1 (RFC 3261 §24.2's shape). */
export const INVITE = msg(
  [
    "INVITE sip:bob@biloxi.example.com SIP/2.0",
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
    "Max-Forwards: 70",
    "To: Bob <sip:bob@biloxi.example.com>",
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
    `Call-ID: ${CALL_1}`,
    "CSeq: 314159 INVITE",
    "Contact: <sip:alice@pc33.atlanta.example.com>",
    "Content-Type: application/sdp",
    "Content-Length: *",
  ],
  SDP,
);

/** The ACK for call 1's 200 OK. */
export const ACK = msg([
  "ACK sip:bob@192.0.2.4 SIP/2.0",
  "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds9",
  "Max-Forwards: 70",
  "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
  "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
  `Call-ID: ${CALL_1}`,
  "CSeq: 314159 ACK",
  "Content-Length: 0",
]);

/** BYE ending call 1 (header names in another case: they are case-insensitive). */
export const BYE = msg([
  "BYE sip:bob@192.0.2.4 SIP/2.0",
  "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds10",
  "Max-Forwards: 70",
  "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
  "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf",
  `CALL-ID: ${CALL_1}`,
  "CSeq: 231 BYE",
  "Content-Length: 0",
]);

/** An INVITE of another call (its Call-ID has a host part with dashes). */
export const INVITE_2 = msg(
  [
    "INVITE sip:carol@chicago.example.com SIP/2.0",
    "Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bK74bf9",
    "Max-Forwards: 70",
    "From: Bob <sip:bob@biloxi.example.com>;tag=9fxced76sl",
    "To: Carol <sip:carol@chicago.example.com>",
    `Call-ID: ${CALL_2}`,
    "CSeq: 1 INVITE",
    "Contact: <sip:bob@192.0.2.4>",
    "Content-Type: application/sdp",
    "Content-Length: *",
  ],
  SDP,
);

/** Compact forms (RFC 3261 §7.3.3): v, f, t, i, m, l; the Call-ID header is "i:" with no blank. */
export const COMPACT = msg([
  "OPTIONS sip:carol@chicago.example.com SIP/2.0",
  "v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877",
  "f: <sip:alice@atlanta.example.com>;tag=1928301774",
  "t: <sip:carol@chicago.example.com>",
  `i:${CALL_COMPACT}`,
  "CSeq: 63104 OPTIONS",
  "m: <sip:alice@pc33.atlanta.example.com>",
  "l: 0",
]);

/** Folded header: the value on a continuation line (allowed by RFC 3261 §7.3.1). */
export const FOLDED = msg([
  "MESSAGE sip:user2@domain.example.com SIP/2.0",
  "Via: SIP/2.0/UDP user1pc.domain.example.com;branch=z9hG4bK776sgdkse",
  "Call-ID:",
  ` ${CALL_2}`,
  "CSeq: 1 MESSAGE",
  "Content-Length: 0",
]);

/** A keepalive-like OPTIONS without any Call-ID header. */
export const NO_CALL_ID = msg([
  "OPTIONS sip:proxy.example.com SIP/2.0",
  "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKkeep",
  "From: <sip:alice@atlanta.example.com>;tag=88",
  "To: <sip:proxy.example.com>",
  "CSeq: 1 OPTIONS",
  "Content-Length: 0",
]);

/** The INVITE cut right after the Call-ID value (a datagram truncated in the middle). */
export const TRUNCATED = INVITE.slice(0, INVITE.indexOf(CALL_1) + CALL_1.length);

/** A Call-ID followed by a blank and more: not a line-ending value, so none. */
export const TRAILING_GARBAGE = msg([
  "BYE sip:bob@192.0.2.4 SIP/2.0",
  `Call-ID: ${CALL_1} extra`,
  "CSeq: 231 BYE",
  "Content-Length: 0",
]);

/** Lookalike headers that must not be taken for the Call-ID; the real one comes after. */
export const LOOKALIKES = msg([
  "INFO sip:bob@192.0.2.4 SIP/2.0",
  "Call-Info: <http://www.example.com/alice/photo.jpg> ;purpose=icon",
  "If-Match: abc",
  `Call-Id:   ${CALL_1}`,
  "Content-Length: 0",
]);

/** A 200 OK with LF-only line ends (RFC 2543 allowed them). */
export const LF_ONLY = [
  "SIP/2.0 200 OK",
  "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
  `i: ${CALL_1}`,
  "CSeq: 314159 INVITE",
  "Content-Length: 0",
  "",
  "",
].join("\n");

/** The bytes of a message as sent on the wire (one byte per character). */
export function sipBytes(text: string): Uint8Array {
  return Uint8Array.from(text, (ch) => ch.charCodeAt(0) & 0xff);
}
