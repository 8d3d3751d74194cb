// The health-checker specification as plain, JSON-able data: what a keepalived.conf real_server
// checker block (TCP_CHECK, HTTP_GET, SSL_GET, SMTP_CHECK, DNS_CHECK, MISC_CHECK, UDP_CHECK,
// PING_CHECK, FILE_CHECK) or an ldirectord.cf checktype/service pair asks for. The config parsers
// produce it, src/health turns it into checkers and a runner. All times are milliseconds; all
// defaults are keepalived's (keepalived.conf(5) and keepalived/check/*.c), filled in by
// `checkerCommon()` so a spec is always complete and the health code never guesses.

/** Options every checker shares (keepalived's "common checker options" plus the virtual_server's timing). */
export interface CheckerCommon {
  /** Address to check instead of the real server's (connect_ip). */
  connectIp?: string;
  /** Port to check instead of the real server's (connect_port). */
  connectPort?: number;
  /** Local source address for the check (bindto). */
  bindTo?: string;
  /** Local source port for the check (bind_port). */
  bindPort?: number;
  /** Per-attempt limit (connect_timeout, default 5 s): connect plus the whole exchange. */
  connectTimeoutMs: number;
  /** Extra attempts after a failure before the server is declared down (retry). Down after retry + 1 failures. */
  retry: number;
  /** Pause between a failed attempt and the next retry (delay_before_retry). */
  delayBeforeRetryMs: number;
  /** Interval between checks (delay_loop; the checker's own or the virtual_server's, default 60 s). */
  delayLoopMs: number;
  /** The first check happens after a random delay in [0, warmup] (warmup; 0 = check at once). */
  warmupMs: number;
  /** alpha: the server starts down and needs one success to come up (otherwise it starts up). */
  alpha: boolean;
  /** omega: on shutdown/removal, report the server down (keepalived runs notify_down on shutdown). */
  omega: boolean;
}

/** Inclusive status-code range; a single code is { from: c, to: c }. */
export interface StatusRange {
  from: number;
  to: number;
}

/** One url { } block of HTTP_GET/SSL_GET. Every url must pass for the check to pass. */
export interface UrlSpec {
  path: string;
  /** Accepted status codes (status_code, default 200-299). */
  statusCodes: StatusRange[];
  /** Lowercase hex MD5 of the response body (digest); absent = not compared. */
  digest?: string;
  /** Host header for this url (url-level virtualhost), overriding the checker's. */
  virtualhost?: string;
  /**
   * Body must match (ldirectord's negotiate `receive`, keepalived's `regex`): a JavaScript regular
   * expression source, tested against the body decoded as latin1.
   */
  bodyRegex?: string;
}

/** The HTTP version line keepalived sends: "1.0" (default), "1.0C" (1.0 with Connection: close), "1.1". */
export type HttpProtocol = "1.0" | "1.0C" | "1.1";

export interface TcpCheckSpec extends CheckerCommon {
  type: "TCP_CHECK";
}

export interface HttpCheckSpec extends CheckerCommon {
  type: "HTTP_GET" | "SSL_GET";
  urls: UrlSpec[];
  /** Host header value (virtualhost); default "<connect address>:<port>" as keepalived sends. */
  virtualhost?: string;
  httpProtocol: HttpProtocol;
  /** SSL_GET: TLS server name (enable_sni uses virtualhost; explicit name wins). Absent = no SNI. */
  sni?: string;
  /** SSL_GET: verify the server certificate (keepalived does not by default). */
  verifyCert: boolean;
}

export interface SmtpCheckSpec extends CheckerCommon {
  type: "SMTP_CHECK";
  /** Name sent with HELO (helo_name, default keepalived's "smtpchecker.keepalived.org"). */
  heloName: string;
}

/** Query types DNS_CHECK accepts (keepalived's list). */
export const DNS_QUERY_TYPES = ["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"] as const;
export type DnsQueryType = (typeof DNS_QUERY_TYPES)[number];

export interface DnsCheckSpec extends CheckerCommon {
  type: "DNS_CHECK";
  /** Query type (type, default SOA as keepalived). */
  queryType: DnsQueryType;
  /** Name queried (name, default "."). */
  name: string;
}

export interface MiscCheckSpec extends CheckerCommon {
  type: "MISC_CHECK";
  /** Command line run by /bin/sh -c semantics-free splitting: keepalived runs it as one shell command (misc_path). */
  path: string;
  /** Kill the script after this long (misc_timeout; default delay_loop). */
  timeoutMs: number;
  /** misc_dynamic: exit 0 up, 1 down, 2..255 up with weight exit-2. */
  dynamic: boolean;
  /** Run as this user (user); absent = the daemon's user. */
  user?: string;
  /** Group for `user` (the second word of keepalived's `user USER [GROUP]`). */
  group?: string;
}

export interface UdpCheckSpec extends CheckerCommon {
  type: "UDP_CHECK";
  /** Datagram sent, lowercase hex (payload); absent = an empty datagram. */
  payloadHex?: string;
  /** A reply is required (require_reply); without it only an ICMP error fails the check. */
  requireReply: boolean;
  /** With requireReply: the reply must start with these bytes (lowercase hex; require_reply <hex>). */
  replyHex?: string;
  /** Minimum reply length (min_reply_length), 0 = any. */
  minReplyLength: number;
  /** Maximum reply length (max_reply_length), 0 = any. */
  maxReplyLength: number;
}

export interface PingCheckSpec extends CheckerCommon {
  type: "PING_CHECK";
}

export interface FileCheckSpec extends CheckerCommon {
  type: "FILE_CHECK";
  /** The tracked file (track_file's file path). */
  file: string;
  /**
   * Weight factor (weight, may be negative): the number in the file times this is the real server's
   * weight change; 0 = the number only decides up (0) or down (non-zero).
   */
  weight: number;
  /** reverse: a file value of 0 means down and the weight is applied negated. */
  reverse: boolean;
}

export type CheckerSpec =
  | TcpCheckSpec
  | HttpCheckSpec
  | SmtpCheckSpec
  | DnsCheckSpec
  | MiscCheckSpec
  | UdpCheckSpec
  | PingCheckSpec
  | FileCheckSpec;

export type CheckerType = CheckerSpec["type"];

export const CHECKER_TYPES: readonly CheckerType[] = [
  "TCP_CHECK",
  "HTTP_GET",
  "SSL_GET",
  "SMTP_CHECK",
  "DNS_CHECK",
  "MISC_CHECK",
  "UDP_CHECK",
  "PING_CHECK",
  "FILE_CHECK",
];

/** keepalived's default delay_loop (virtual_server) in ms. */
export const DEFAULT_DELAY_LOOP_MS = 60_000;
/** keepalived's default connect_timeout in ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** keepalived's default helo_name. */
export const DEFAULT_SMTP_HELO = "smtpchecker.keepalived.org";
/** Status codes accepted when a url block names none. */
export const DEFAULT_STATUS_CODES: readonly StatusRange[] = [{ from: 200, to: 299 }];

/**
 * Common options with keepalived's defaults for a checker type: connect_timeout 5 s, retry 1
 * (0 for MISC_CHECK and FILE_CHECK, which keepalived does not retry unless told), delay_before_retry
 * 1 s (3 s for HTTP_GET/SSL_GET), delay_loop 60 s, warmup 0, no alpha, no omega. `over` wins.
 */
export function checkerCommon(type: CheckerType, over: Partial<CheckerCommon> = {}): CheckerCommon {
  const http = type === "HTTP_GET" || type === "SSL_GET";
  const noRetry = type === "MISC_CHECK" || type === "FILE_CHECK";
  return {
    connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
    retry: noRetry ? 0 : 1,
    delayBeforeRetryMs: http ? 3_000 : 1_000,
    delayLoopMs: DEFAULT_DELAY_LOOP_MS,
    warmupMs: 0,
    alpha: false,
    omega: false,
    ...over,
  };
}
