// Tests for libipvs's (operation, errno) → message table as tvsadm applies it.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { CoreErrorCode } from "../../core/errors.ts";
import { ipvsStrerror } from "./messages.ts";

test("operation-specific messages", () => {
  const cases: Array<[string, CoreErrorCode, string]> = [
    ["add-service", "EEXIST", "Service already exists"],
    ["add-service", "ENOENT", "Scheduler or persistence engine not found"],
    ["edit-service", "ESRCH", "No such service"],
    ["del-service", "ESRCH", "No such service"],
    ["zero", "ESRCH", "No such service"],
    ["add-dest", "ESRCH", "Service not defined"],
    ["add-dest", "EEXIST", "Destination already exists"],
    ["edit-dest", "ENOENT", "No such destination"],
    ["del-dest", "ENOENT", "No such destination"],
    ["start-daemon", "EEXIST", "Daemon has already run"],
    ["stop-daemon", "ESRCH", "No daemon is running"],
    ["get-service", "ESRCH", "No such service"],
  ];
  for (const [op, code, msg] of cases) assert.equal(ipvsStrerror(op, code), msg, `${op} ${code}`);
});

test("any-operation messages, then strerror", () => {
  assert.equal(
    ipvsStrerror("add-dest", "EINVAL"),
    "Invalid operation.  Possibly wrong module version, address not unicast, ...",
  );
  assert.equal(ipvsStrerror("add-service", "ENOMEM"), "Memory allocation problem");
  assert.equal(ipvsStrerror("add-dest", "ERANGE"), "Numerical result out of range");
  assert.equal(ipvsStrerror("add-service", "ESRCH"), "No such process");
});

test("not supported says why; unknown codes show the daemon's words", () => {
  assert.equal(ipvsStrerror("start-daemon", "EOPNOTSUPP", "No sync yet"), "Operation not supported: No sync yet");
  assert.equal(ipvsStrerror("start-daemon", "ENODEV" as CoreErrorCode, "No such device"), "No such device");
});
