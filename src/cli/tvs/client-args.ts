// The command line shared by the tvs subcommands that ask a running tvsd something (status,
// sysctl): --socket PATH (or --socket=PATH), --json, -h/--help, and up to a given number of operands.
// Usage errors name the argument; the caller prints nothing more and exits with the code returned.

export interface ClientArgs {
  socket: string | undefined;
  json: boolean;
  operands: string[];
}

/** The parsed arguments, or the exit code after usage or an error was written. */
export function readClientArgs(
  argv: readonly string[],
  usage: string,
  maxOperands: number,
  out: { stdout(s: string): void; stderr(s: string): void } = {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
  },
): ClientArgs | { exit: number } {
  const args: ClientArgs = { socket: undefined, json: false, operands: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--json") args.json = true;
    else if (a === "--socket") {
      args.socket = argv[++i];
      if (args.socket === undefined) {
        out.stderr(`Option --socket needs a value\n${usage}`);
        return { exit: 2 };
      }
    } else if (a.startsWith("--socket=")) args.socket = a.slice("--socket=".length);
    else if (a === "-h" || a === "--help") {
      out.stdout(usage);
      return { exit: 0 };
    } else if (a.startsWith("-")) {
      out.stderr(`Unknown option "${a}"\n${usage}`);
      return { exit: 2 };
    } else if (args.operands.length >= maxOperands) {
      out.stderr(`Unexpected argument "${a}"\n${usage}`);
      return { exit: 2 };
    } else args.operands.push(a);
  }
  return args;
}
