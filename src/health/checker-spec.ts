// The health-checker specification as plain, JSON-able data: what a keepalived.conf real_server
// checker block (TCP_CHECK, HTTP_GET, SSL_GET, SMTP_CHECK, DNS_CHECK, MISC_CHECK, UDP_CHECK,
// PING_CHECK, FILE_CHECK) or an ldirectord.cf checktype/service pair asks for. It lives beside the
// checkers that use it: the config parsers (src/config) produce it, src/health turns it into
// checkers and a runner. All times are milliseconds; all defaults are keepalived's
// (keepalived.conf(5) and keepalived/check/*.c), filled in by `checkerCommon()` so a spec is always
// complete and the health code never guesses.

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
  /**
   * ldirectord's numeric checktype N ("combined"): after a successful full check, the next N checks
   * are plain TCP connects; a failed connect makes the next check a full one again. Absent = always full.
   */
  connectChecksBetween?: number;
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
  /** ldirectord's simpletcp: send this after connecting (absent = connect only, as keepalived). */
  send?: string;
  /** ldirectord's simpletcp: the data received must match this regular expression source. */
  expectRegex?: string;
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
export const DNS_QUERY_TYPES = ["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY"] as const;
export type DnsQueryType = (typeof DNS_QUERY_TYPES)[number];

export interface DnsCheckSpec extends CheckerCommon {
  type: "DNS_CHECK";
  /** Query type (type, default SOA as keepalived). */
  queryType: DnsQueryType;
  /** Name queried (name, default "" = the root, as keepalived). */
  name: string;
  /**
   * ldirectord's dns receive: some A/AAAA answer's address (canonical text) must match this regular
   * expression source. keepalived checks no answers.
   */
  answerRegex?: string;
}

export interface MiscCheckSpec extends CheckerCommon {
  type: "MISC_CHECK";
  /**
   * The script and its arguments (misc_path), split on blanks with "..." and '...' quoting and run
   * directly, without a shell, as keepalived does.
   */
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
  /** Minimum reply length (min_reply_length, default 0). */
  minReplyLength: number;
  /** Maximum reply length (max_reply_length, default 255 as keepalived). */
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
   * Weight factor (weight, may be negative; keepalived's track_file semantics): with weight W != 0
   * the number N in the file (strtol base 0, missing/empty file = 0) makes the offset N*W (negated
   * with reverse) added to the real server's configured weight; an offset at or below -2^31 means
   * down. With weight 0 the number only decides: 0 up, non-zero down (reverse: 0 down, non-zero up).
   */
  weight: number;
  /** reverse: negate the offset, or invert the weight-0 decision. */
  reverse: boolean;
}

/** ldirectord's checktype on/off: no checking, the server is always up (on) or never up (off). */
export interface StaticCheckSpec extends CheckerCommon {
  type: "STATIC_CHECK";
  up: boolean;
}

export type CheckerSpec =
  | TcpCheckSpec
  | HttpCheckSpec
  | SmtpCheckSpec
  | DnsCheckSpec
  | MiscCheckSpec
  | UdpCheckSpec
  | PingCheckSpec
  | FileCheckSpec
  | StaticCheckSpec;

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
  "STATIC_CHECK",
];

/** keepalived's default delay_loop (virtual_server) in ms. */
export const DEFAULT_DELAY_LOOP_MS = 60_000;
/** keepalived's default connect_timeout in ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** keepalived's default helo_name. */
export const DEFAULT_SMTP_HELO = "smtpchecker.keepalived.org";
/** Status codes accepted when a url block names none. */
export const DEFAULT_STATUS_CODES: readonly StatusRange[] = [{ from: 200, to: 299 }];
/** keepalived's UDP_CHECK default max_reply_length. */
export const DEFAULT_UDP_MAX_REPLY = 255;

/**
 * Common options with keepalived's defaults for a checker type (check_api.c, check_data.c):
 * connect_timeout 5 s; retry 1 (3 for DNS_CHECK, 0 for MISC_CHECK, FILE_CHECK and STATIC_CHECK); delay_before_retry 1 s (3 s for
 * HTTP_GET/SSL_GET, delay_loop for DNS_CHECK); delay_loop 60 s; warmup = delay_loop (the first check
 * comes after a random delay up to warmup); no alpha; no omega. Fields given in `over` win, and the
 * derived defaults (warmup, DNS delay_before_retry) follow an overridden delay_loop.
 */
export function checkerCommon(type: CheckerType, over: Partial<CheckerCommon> = {}): CheckerCommon {
  const delayLoopMs = over.delayLoopMs ?? DEFAULT_DELAY_LOOP_MS;
  // FILE_CHECK reacts to the file at once (keepalived watches it with inotify); on/off never fail twice.
  const noRetry = type === "MISC_CHECK" || type === "FILE_CHECK" || type === "STATIC_CHECK";
  const retry = type === "DNS_CHECK" ? 3 : noRetry ? 0 : 1;
  const delayBeforeRetryMs =
    type === "HTTP_GET" || type === "SSL_GET" ? 3_000 : type === "DNS_CHECK" ? delayLoopMs : 1_000;
  return {
    connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
    retry,
    delayBeforeRetryMs,
    warmupMs: delayLoopMs,
    alpha: false,
    omega: false,
    ...over,
    delayLoopMs,
  };
}
