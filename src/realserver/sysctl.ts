// Reading and writing sysctls through /proc/sys (no sysctl binary needed).

import { readFileSync, writeFileSync } from "node:fs";

function path(name: string): string {
  return `/proc/sys/${name.replaceAll(".", "/")}`;
}

export function readSysctl(name: string): string {
  return readFileSync(path(name), "utf8").trim();
}

export function writeSysctl(name: string, value: string): void {
  writeFileSync(path(name), `${value}\n`);
}
