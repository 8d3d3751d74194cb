// tvsadm: ipvsadm 1.31's command line, talking to tvsd over the control API instead of to the
// kernel. argv is read by the shared ipvsadm grammar (config/ipvsadm-grammar.ts); listings are
// printed by format.ts from a Snapshot; refusals are printed with libipvs's words (messages.ts)
// and ipvsadm's exit statuses: 2 for argument errors, 255 for what the director refuses, 1 when a
// listed service does not exist.
//
// Extensions (not in ipvsadm): --socket PATH (where tvsd listens; see control/api/socket-path.ts),
// --json on list commands (prints the Snapshot, or the selected part, as JSON), --fullnat
// (FULLNAT forwarding for -a/-e). -R applies all lines as one atomic batch: one bad line and
// nothing is applied, and the error names the line.
//
// Start-up time is part of the contract (scripts call tvsadm in loops): what only some commands
// need (the -R reader, the help text, name resolution) is imported when they run.
//
// Everything the command touches is injectable (client, streams, stdin, name resolver), so tests
// run it in-process against an in-process Director.

import { IpvsadmArgError, type ParsedCommand, parseIpvsadmArgv, toRequest } from "../../config/ipvsadm-grammar.ts";
import { ApiError, type ControlClient, ControlConnectError, HttpControlClient } from "../../control/api/client.ts";
import type { ExecRequest, Snapshot } from "../../control/api/protocol.ts";
import { defaultSocketPath } from "../../control/api/socket-path.ts";
import {
  addressesOf,
  type FormatOptions,
  formatConns,
  formatDaemons,
  formatListAll,
  formatListService,
  formatTimeout,
  type NameTable,
  NO_NAMES,
} from "./format.ts";
import { nameTable, SystemResolver, type TvsadmResolver } from "./names.ts";

export interface TextSink {
  write(text: string): unknown;
}

export interface TvsadmIo {
  /** The control API; an HttpControlClient on the resolved socket path by default. */
  client?: ControlClient;
  stdout?: TextSink;
  stderr?: TextSink;
  /** All of standard input (for -R); process.stdin by default. */
  readStdin?: () => Promise<string>;
  resolver?: TvsadmResolver;
  /** argv[0] as printed in the help texts; "tvsadm" by default. */
  program?: string;
  env?: Readonly<Record<string, string | undefined>>;
}

/** ipvsadm's exit status for a request the kernel refused (main returns -1). */
const EXIT_REFUSED = 255;

async function readAll(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === "string" ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

/** Pull tvsadm's own options (--socket, --json) out of argv; they may appear anywhere before "--". */
function extractOwnOptions(argv: readonly string[]): { rest: string[]; socket: string | undefined; json: boolean } {
  const rest: string[] = [];
  let socket: string | undefined;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === "--json") json = true;
    else if (a === "--socket" && i + 1 < argv.length) socket = argv[++i];
    else if (a.startsWith("--socket=")) socket = a.slice("--socket=".length);
    else rest.push(a);
  }
  return { rest, socket, json };
}

export async function main(argv: string[], io: TvsadmIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const program = io.program ?? "tvsadm";
  const resolver = io.resolver ?? new SystemResolver();
  const own = extractOwnOptions(argv);
  const client =
    io.client ??
    new HttpControlClient({ socketPath: defaultSocketPath({ explicit: own.socket, env: io.env ?? process.env }) });

  try {
    if (own.rest.length === 0) {
      const snap = await client.snapshot();
      stdout.write(own.json ? json(snap) : formatListAll(snap, listFormat(undefined), await names(snap, false)));
      return 0;
    }
    const parsed = await parseIpvsadmArgv(own.rest, { program, resolver });
    return await run(parsed);
  } catch (e) {
    if (e instanceof IpvsadmArgError) {
      stderr.write(`${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof ControlConnectError) {
      stderr.write(
        `Can't initialize ipvs: ${e.reason}\nAre you sure that tvsd is running and listening on "${e.socketPath}"?\n`,
      );
      return 2;
    }
    throw e;
  }

  async function names(snap: Snapshot, numeric: boolean): Promise<NameTable> {
    return numeric ? NO_NAMES : nameTable(resolver, addressesOf(snap));
  }

  async function run(p: ParsedCommand): Promise<number> {
    const f = listFormat(p);
    switch (p.command) {
      case "help":
        stdout.write((await import("./usage.ts")).usageText(program));
        return 0;
      case "version":
        stdout.write((await import("./usage.ts")).versionLine());
        return 0;
      case "list":
        return list(p, f);
      case "save": {
        const snap = await client.snapshot();
        stdout.write(formatListAll(snap, { ...f, rule: true }, await names(snap, f.numeric)));
        return 0;
      }
      case "restore":
        return restore();
      default: {
        const req = toRequest(p);
        if (!req) throw new Error(`No request for the '${p.command}' command`);
        return exec(req);
      }
    }
  }

  async function list(p: ParsedCommand, f: FormatOptions): Promise<number> {
    const o = p.options;
    if (o.has("connection")) {
      const snap = await client.snapshot({ conns: true });
      stdout.write(own.json ? json(snap.conns ?? []) : formatConns(snap.conns ?? [], f, await names(snap, f.numeric)));
      return 0;
    }
    if (o.has("service-address") && p.key) {
      let snap: Snapshot;
      try {
        snap = await client.snapshot({ service: p.key });
      } catch (e) {
        if (e instanceof ApiError) {
          stderr.write(`${(await import("./messages.ts")).ipvsStrerror("get-service", e.code, e.message)}\n`);
          return 1;
        }
        throw e;
      }
      const svc = snap.services[0];
      if (!svc) {
        stderr.write("No such service\n");
        return 1;
      }
      stdout.write(own.json ? json(svc) : formatListService(svc, f, await names(snap, f.numeric)));
      return 0;
    }
    const snap = await client.snapshot();
    if (o.has("timeout")) stdout.write(own.json ? json(snap.timeouts) : formatTimeout(snap));
    else if (o.has("daemon")) stdout.write(own.json ? json(snap.daemons) : formatDaemons(snap.daemons));
    else stdout.write(own.json ? json(snap) : formatListAll(snap, f, await names(snap, f.numeric)));
    return 0;
  }

  async function exec(req: ExecRequest): Promise<number> {
    try {
      await client.exec(req);
      return 0;
    } catch (e) {
      if (e instanceof ApiError) {
        stderr.write(`${(await import("./messages.ts")).ipvsStrerror(req.op, e.code, e.message)}\n`);
        return EXIT_REFUSED;
      }
      throw e;
    }
  }

  async function restore(): Promise<number> {
    const text = await (io.readStdin ?? readAll)();
    const { parseIpvsadmRules, RulesError } = await import("../../config/ipvsadm-rules.ts");
    let rules: Awaited<ReturnType<typeof parseIpvsadmRules>>;
    try {
      rules = await parseIpvsadmRules(text, { file: "<stdin>", resolver, program });
    } catch (e) {
      if (e instanceof RulesError) {
        stderr.write(`${e.reason}\n${restoreFailed(e.line, e.text)}`);
        return e.exitCode;
      }
      throw e;
    }
    if (rules.requests.length === 0) return 0;
    const requests = rules.requests;
    try {
      await client.exec({ op: "batch", requests });
      return 0;
    } catch (e) {
      if (e instanceof ApiError) {
        const i = e.index ?? 0;
        const line = rules.lines[i];
        const op = requests[i]?.op ?? "flush";
        stderr.write(`${(await import("./messages.ts")).ipvsStrerror(op, e.code, e.message)}\n`);
        if (line) stderr.write(restoreFailed(line.line, line.text));
        return EXIT_REFUSED;
      }
      throw e;
    }
  }
}

function restoreFailed(line: number, text: string): string {
  return `Restore failed at line ${line} "${text}": no rule was applied\n`;
}

function listFormat(p: ParsedCommand | undefined): FormatOptions {
  return p
    ? { ...p.format }
    : {
        numeric: false,
        stats: false,
        rate: false,
        thresholds: false,
        persistentConn: false,
        nosort: false,
        exact: false,
        tunInfo: false,
      };
}

function json(v: unknown): string {
  return `${JSON.stringify(v, null, 2)}\n`;
}
