// Tests for tvsadm's name look-ups: /etc/services parsing per protocol, and the system resolver on
// names every host has (localhost from /etc/hosts).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { nameTable, parseServices, SystemResolver } from "./names.ts";

const SERVICES = `# comment
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
domain\t\t53/tcp
domain\t\t53/udp
ntp\t\t123/udp
altname\t\t80/tcp
bad line
`;

test("services: first name per port wins, aliases resolve, protocols are separate", () => {
  const db = parseServices(SERVICES);
  assert.equal(db.byPort.get("80/tcp"), "http");
  assert.equal(db.byName.get("www/tcp"), 80);
  assert.equal(db.byName.get("altname/tcp"), 80);
  assert.equal(db.byPort.get("123/udp"), "ntp");
  assert.equal(db.byPort.get("123/tcp"), undefined);
});

test("the system resolver reads a services file and /etc/hosts", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tvsadm-names-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "services");
  writeFileSync(file, SERVICES);
  const r = new SystemResolver(file);
  assert.equal(r.serviceToPort("ntp", "udp"), 123);
  assert.equal(r.serviceToPort("ntp", "tcp"), undefined);
  assert.equal(r.portToService(53, "udp"), "domain");
  assert.equal(await r.hostToIpv4("localhost"), "127.0.0.1");
  assert.equal(await r.hostToIpv4("no-such-host.invalid"), undefined);
  const names = await nameTable(r, ["127.0.0.1"]);
  assert.equal(names.host("127.0.0.1"), "localhost");
  assert.equal(names.service(80, "tcp"), "http");
});
