// Reading a configuration file (the main file, an include, a rules file) without letting the
// file decide how long it takes or how much it costs. The file is opened non-blocking (a FIFO or a
// device opens at once instead of waiting for a writer), must be a regular file, and must not be
// larger than MAX_CONFIG_FILE_BYTES; exactly the size fstat reports is read, so a file that grows
// while it is read (or a /proc file that reports size 0) cannot make the read unbounded. Pseudo
// files whose reported size is 0 therefore read as empty, and their contents never reach a
// diagnostic.

import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";

/** Largest configuration file read (keepalived.conf with thousands of services is a few MB). */
export const MAX_CONFIG_FILE_BYTES = 16 * 1024 * 1024;

export type ConfigFileRead = { text: string } | { error: string };

/** Read `path` as UTF-8 text; never blocks on special files, never throws. */
export function readConfigFile(path: string, maxBytes = MAX_CONFIG_FILE_BYTES): ConfigFileRead {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    return { error: (e as NodeJS.ErrnoException).code ?? String(e) };
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) return { error: "EISDIR" };
    if (!st.isFile()) return { error: "not a regular file" };
    if (st.size > maxBytes) return { error: `larger than ${maxBytes} bytes` };
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return { text: buf.subarray(0, got).toString("utf8") };
  } catch (e) {
    return { error: (e as NodeJS.ErrnoException).code ?? String(e) };
  } finally {
    closeSync(fd);
  }
}
