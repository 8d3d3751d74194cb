#!/usr/bin/env node
// The installed `tvsadm` command (package.json "bin"). CommonJS on purpose: it requires the
// single-file CommonJS build dist/bin/tvsadm.cjs, so Node never starts its ES module loader and a
// `tvsadm -L -n` in a script's loop costs little more than Node's own start. In a source checkout
// (src/ beside bin/), or where that file was not built, it hands over to bin/tvsadm.js (ES module:
// the compiled dist/, or the sources through tsx when dist/ is stale).
"use strict";
const { existsSync } = require("node:fs");
const { join } = require("node:path");

require("node:module").enableCompileCache?.();

const root = join(__dirname, "..");
const single = join(root, "dist", "bin", "tvsadm.cjs");
if (!existsSync(join(root, "src")) && existsSync(single)) require(single);
else import("./tvsadm.js");
