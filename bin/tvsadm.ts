// `tvsadm`: ipvsadm's syntax and output, talking to tvsd. argv → run; exits here only.
import { main } from "../src/cli/tvsadm/main.ts";

// A reader that goes away early (tvsadm -L | head) is not an error worth a stack trace.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await main(process.argv.slice(2));
