// Tests for the control socket path resolution order shared by tvsd and tvsadm.
import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultSocketPath, ROOT_SOCKET_PATH } from "./socket-path.ts";

test("an explicit --socket wins over everything", () => {
  assert.equal(defaultSocketPath({ explicit: "/x.sock", env: { TVS_SOCKET: "/y.sock" }, uid: 0 }), "/x.sock");
});

test("TVS_SOCKET comes next", () => {
  assert.equal(
    defaultSocketPath({ env: { TVS_SOCKET: "/y.sock", XDG_RUNTIME_DIR: "/run/user/1" }, uid: 0 }),
    "/y.sock",
  );
});

test("root uses /run/tvs/control.sock", () => {
  assert.equal(defaultSocketPath({ env: { XDG_RUNTIME_DIR: "/run/user/0" }, uid: 0 }), ROOT_SOCKET_PATH);
});

test("a user uses XDG_RUNTIME_DIR, else /tmp/tvs-<uid>", () => {
  assert.equal(
    defaultSocketPath({ env: { XDG_RUNTIME_DIR: "/run/user/1000" }, uid: 1000 }),
    "/run/user/1000/tvs/control.sock",
  );
  assert.equal(defaultSocketPath({ env: {}, uid: 1000 }), "/tmp/tvs-1000/control.sock");
});
