// `tvsadm`: ipvsadm's syntax and output, talking to tvsd. argv → run; exits here only.
import { main } from "../src/cli/tvsadm/main.ts";

process.exitCode = await main(process.argv.slice(2));
