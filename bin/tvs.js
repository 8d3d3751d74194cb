#!/usr/bin/env node
// Entry shim for `tvs`: runs the TypeScript source through tsx so `npx tvs` works right after
// `npm ci` with no build step.
import { register } from "tsx/esm/api";

register();
await import("./tvs.ts");
