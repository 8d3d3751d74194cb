#!/usr/bin/env node
// The installed `tvs` command (package.json "bin"). `tvs status`, which scripts and monitoring
// call often, runs from the single-file CommonJS build of its subcommand
// (dist/src/cli/tvs/status.cjs), so Node never starts its ES module loader; every other
// subcommand, a source checkout (src/ beside bin/) and a build without that file go through
// bin/tvs.js (ES module: the compiled dist/, or the sources through tsx when dist/ is stale).
"use strict";
const { existsSync } = require("node:fs");
const { join } = require("node:path");

require("node:module").enableCompileCache?.();

const root = join(__dirname, "..");
const status = join(root, "dist", "src", "cli", "tvs", "status.cjs");
if (process.argv[2] === "status" && !existsSync(join(root, "src")) && existsSync(status)) {
  require(status)
    .run(process.argv.slice(3))
    .then((code) => {
      process.exitCode = code;
    });
} else import("./tvs.js");
