#!/usr/bin/env node
// Entry for `tvsd`: runs the compiled dist/bin/tvsd.js. In a source checkout (src/ beside bin/),
// bin/checkout-entry.js decides between dist/ and the TypeScript sources through tsx.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = new URL("..", import.meta.url);
if (existsSync(new URL("src", root))) {
  const { runFromCheckout } = await import("./checkout-entry.js");
  await runFromCheckout(fileURLToPath(root), "tvsd");
} else {
  await import("../dist/bin/tvsd.js");
}
