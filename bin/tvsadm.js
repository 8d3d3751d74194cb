#!/usr/bin/env node
// Entry for `tvsadm`: runs the compiled dist/bin/tvsadm.js. In a source checkout (src/ beside bin/),
// bin/checkout-entry.js decides between dist/ and the TypeScript sources through tsx.
import { existsSync } from "node:fs";
import module from "node:module";
import { fileURLToPath } from "node:url";

// V8's code cache on disk where the runtime has it (Node 22.1+; Node 20 has not): later starts
// skip compiling the modules again.
module.enableCompileCache?.();

const root = new URL("..", import.meta.url);
if (existsSync(new URL("src", root))) {
  const { runFromCheckout } = await import("./checkout-entry.js");
  await runFromCheckout(fileURLToPath(root), "tvsadm");
} else {
  await import("../dist/bin/tvsadm.js");
}
