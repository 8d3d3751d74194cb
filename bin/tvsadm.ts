// `tvsadm`: ipvsadm's syntax and output, talking to tvsd. argv → run; exits here only.
import { main } from "../src/cli/tvsadm/main.ts";

// A reader that goes away early (tvsadm -L | head) is not an error worth a stack trace.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

// No top-level await: the build also makes a CommonJS copy of this entry (bin/tvsadm.cjs loads it
// without starting Node's ES module loader, which is a good part of a short command's start-up).
// A rejection is unhandled and ends the process with its stack, as an uncaught error would.
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
