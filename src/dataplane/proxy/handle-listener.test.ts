// HandleListener on a given descriptor: when the handle cannot take it, the descriptor is closed
// (a worker's SO_REUSEPORT socket must not leak on a failed listen).

import assert from "node:assert/strict";
import { closeSync, fstatSync, openSync } from "node:fs";
import { test } from "node:test";
import { HandleListener } from "./handle-listener.ts";
import type { TcpBinding, TcpHandle } from "./libuv-tcp.ts";

const EBADF = -9;

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

test("a descriptor the handle refuses to open is closed, and the error names open", (t) => {
  const fd = openSync("/dev/null", "r");
  t.after(() => {
    if (isOpen(fd)) closeSync(fd);
  });
  let handleClosed = false;
  const server = {
    open: () => EBADF,
    close: () => {
      handleClosed = true;
    },
    setNoDelay: () => 0,
    listen: () => 0,
  } as unknown as TcpHandle;
  const uv = { newServer: () => server } as unknown as TcpBinding;
  assert.throws(
    () => HandleListener.listen(uv, "127.0.0.1", 1, () => {}, fd),
    (err: NodeJS.ErrnoException) => err.code === "EBADF" && /open/.test(err.message),
  );
  assert.equal(handleClosed, true);
  assert.equal(isOpen(fd), false, "the refused descriptor is closed");
});
