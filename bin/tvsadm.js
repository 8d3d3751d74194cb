#!/usr/bin/env node
// Entry shim for `tvsadm`: runs the TypeScript source through tsx so `npx tvsadm` works right after
// `npm ci` with no build step.
import { register } from "tsx/esm/api";

register();
await import("./tvsadm.ts");
