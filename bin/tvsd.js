#!/usr/bin/env node
// Entry shim for `tvsd`: runs the TypeScript source through tsx so `npx tvsd` works right after
// `npm ci` with no build step.
import { register } from "tsx/esm/api";

register();
await import("./tvsd.ts");
