// `tvs`: the umbrella command (lab, realserver, check-config, status, sysctl, top). argv → run; exits here only.
import { main } from "../src/cli/tvs/main.ts";

process.exitCode = await main(process.argv.slice(2));
