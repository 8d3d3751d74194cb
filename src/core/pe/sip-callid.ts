// The Call-ID of a SIP message (RFC 3261 §8.1.1.4, §20.8), read the way the kernel's SIP
// persistence engine reads it (ip_vs_pe_sip.c through nf_conntrack_sip's header search), so a
// message tvs keys by a Call-ID is exactly one the kernel would key, and a message the kernel
// refuses is refused here too.
//
// How the search goes:
//  - The message is scanned for line starts. A line ends at CR, LF or CR LF (RFC 2543 allowed
//    all three; RFC 3261 only CR LF). The first line (request or status line) is never a header.
//    A line starting with a space or tab continues the previous header and is skipped.
//  - A header line matches when it starts with "Call-ID" in any case, or with the compact form
//    "i" (RFC 3261 §7.3.3) followed by something that is not a letter (so "If-Match" is not it).
//  - After the name come optional blanks (also across a folded line), then ":", then optional
//    blanks. Anything else after a matching name ends the whole search with no Call-ID (that is
//    the kernel's behaviour: "Call-IDx: ..." or an SDP "i=" line reached before any Call-ID).
//  - The value is a "word" (RFC 3261's word characters: letters, digits and
//    - . ! % * _ + ` ' ~ ( ) < > : \ " / [ ] ? { }), optionally followed by "@" and a second word
//    (callid = word ["@" word]). An empty value makes the search go on with the next line; an
//    "@" with nothing after it too.
//  - The value found must be at most 255 bytes (IP_VS_PEDATA_MAXLEN), must not end the message
//    (a header always ends with a line break: a message cut after the value is truncated), and
//    must be followed directly by CR or LF (so "Call-ID: a b" or "Call-ID: a;x" has none).
// The result is the value's bytes as a latin1 string (one character per byte), the key a
// template is found by; undefined when the message has no usable Call-ID.

/** IP_VS_PEDATA_MAXLEN: the longest persistence-engine key the kernel keeps. */
export const PE_DATA_MAXLEN = 255;

const CR = 13;
const LF = 10;
const SP = 32;
const TAB = 9;
const COLON = 58;
const AT = 64;

/** RFC 3261 word characters (the set nf_conntrack_sip's iswordc accepts). */
const WORD = buildWordTable();

function buildWordTable(): Uint8Array {
  const t = new Uint8Array(256);
  const set = (c: number) => {
    t[c] = 1;
  };
  for (let c = 48; c <= 57; c++) set(c); // 0-9
  for (let c = 65; c <= 90; c++) set(c); // A-Z
  for (let c = 97; c <= 122; c++) set(c); // a-z
  for (const ch of "!\"%()*+:<>?[\\]_`{}~-./'") set(ch.charCodeAt(0));
  return t;
}

function isAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

const NAME = [..."call-id"].map((ch) => ch.charCodeAt(0));
const COMPACT = "i".charCodeAt(0);

/** Whether buf[at, end) starts with the lower-case ASCII `name`, in any case. */
function startsWithName(buf: Uint8Array, at: number, end: number, name: readonly number[]): boolean {
  if (end - at < name.length) return false;
  for (let k = 0; k < name.length; k++) if (lower(buf[at + k]!) !== name[k]) return false;
  return true;
}

/**
 * Skip blanks, also across one line break followed by a blank (a folded header line).
 * Returns the position of the first other byte, end when the message ends, or -1 when a line
 * break is not followed by a continuation.
 */
function skipBlanks(buf: Uint8Array, at: number, end: number): number {
  let i = at;
  while (i < end) {
    const c = buf[i]!;
    if (c === SP || c === TAB) {
      i++;
      continue;
    }
    if (c !== CR && c !== LF) return i;
    // A line break: only a continuation line keeps the header going.
    i++;
    if (i >= end) return -1;
    if (c === CR && buf[i] === LF) {
      i++;
      if (i >= end) return -1;
    }
    if (buf[i] !== SP && buf[i] !== TAB) return -1;
    while (i < end && (buf[i] === SP || buf[i] === TAB)) i++;
    return i;
  }
  return i;
}

function wordLength(buf: Uint8Array, at: number, end: number): number {
  let i = at;
  while (i < end && WORD[buf[i]!] === 1) i++;
  return i - at;
}

/** callid = word ["@" word]; 0 when there is none (or "@" has no word after it). */
function callIdLength(buf: Uint8Array, at: number, end: number): number {
  const first = wordLength(buf, at, end);
  const after = at + first;
  if (first === 0 || after >= end || buf[after] !== AT) return first;
  const domain = wordLength(buf, after + 1, end);
  return domain === 0 ? 0 : first + 1 + domain;
}

/** Where the Call-ID value is in buf[off, end): [start, length], or undefined. */
export function findSipCallId(buf: Uint8Array, off: number, end: number): [number, number] | undefined {
  let i = off;
  while (i < end) {
    // Find the next line start.
    const c = buf[i]!;
    if (c !== CR && c !== LF) {
      i++;
      continue;
    }
    i++;
    if (i >= end) return undefined;
    if (c === CR && buf[i] === LF) {
      i++;
      if (i >= end) return undefined;
    }
    // A line that is not the Call-ID: the scan resumes after its first byte (as the kernel's,
    // which is why, with LF-only line ends, the line after an empty line is not a line start).
    const first = buf[i]!;
    let p: number;
    if (first === SP || first === TAB)
      p = -1; // a continuation line
    else if (startsWithName(buf, i, end, NAME)) p = i + NAME.length;
    else if (lower(first) === COMPACT && end - i >= 2 && !isAlpha(buf[i + 1]!)) p = i + 1;
    else p = -1;
    if (p < 0) {
      i++;
      continue;
    }
    p = skipBlanks(buf, p, end);
    if (p < 0 || p >= end || buf[p] !== COLON) return undefined;
    p = skipBlanks(buf, p + 1, end);
    if (p < 0 || p >= end) return undefined;
    const len = callIdLength(buf, p, end);
    if (len === 0) {
      // An empty value: the search goes on after it.
      i = p;
      continue;
    }
    if (len > PE_DATA_MAXLEN) return undefined;
    const after = p + len;
    if (after >= end) return undefined; // truncated: no line break after the value
    if (buf[after] !== CR && buf[after] !== LF) return undefined;
    return [p, len];
  }
  return undefined;
}

/** The Call-ID of the SIP message in buf[off, end) as a latin1 string, or undefined. */
export function sipCallId(buf: Uint8Array, off: number, end: number): string | undefined {
  const at = findSipCallId(buf, off, end);
  if (at === undefined) return undefined;
  let s = "";
  for (let k = at[0]; k < at[0] + at[1]; k++) s += String.fromCharCode(buf[k]!);
  return s;
}
