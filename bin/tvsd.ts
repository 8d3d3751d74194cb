// `tvsd`: the director daemon. argv → run; exits here only.
import { main } from "../src/control/tvsd-main.ts";

process.exitCode = await main(process.argv.slice(2));
