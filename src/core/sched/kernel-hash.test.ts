// The TypeScript hashes against an independent C model (testdata/kernel-hash-ref.c, which checks
// its SipHash against the published SipHash-2-4 vectors and hashes real network-byte-order
// addresses). The checked-in vectors are its output; when gcc is present the program is rebuilt
// and run, and must reproduce them.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { dhBucket } from "./dh.ts";
import { foldAddress, hash32, hsiphashU32, MH_KEY1, MH_KEY2 } from "./kernel-hash.ts";
import { localityBucket } from "./locality-table.ts";
import { MH_TAB_SIZE, mhHash } from "./mh.ts";
import { shBucket } from "./sh.ts";

const here = new URL(".", import.meta.url).pathname;
const source = join(here, "testdata", "kernel-hash-ref.c");
const vectorsPath = join(here, "testdata", "kernel-hash-vectors.json");

interface Vectors {
  hash32: [number, number, number][];
  hsiphash: [number, number, number, number, number, number][];
  addresses: {
    addr: string;
    port: number;
    fold: number;
    sh: number;
    shPort: number;
    dh: number;
    lblc: number;
    mhOffset: number;
    mhSkip: number;
  }[];
  mh: Record<string, string>;
}

const vectors: Vectors = JSON.parse(readFileSync(vectorsPath, "utf8"));

describe("kernel hashes against the C model", () => {
  it("hash_32", () => {
    for (const [v, bits, out] of vectors.hash32) assert.equal(hash32(v, bits), out, `hash_32(${v}, ${bits})`);
  });

  it("hsiphash (SipHash-1-3 on 64-bit) for mh's keys and random keys", () => {
    for (const [k0hi, k0lo, k1hi, k1lo, v, out] of vectors.hsiphash)
      assert.equal(hsiphashU32(v, { k0hi, k0lo, k1hi, k1lo }), out, `hsiphash(${v})`);
  });

  it("address fold and every scheduler's bucket for IPv4 and IPv6 addresses", () => {
    for (const a of vectors.addresses) {
      const fold = foldAddress(a.addr);
      assert.equal(fold, a.fold, `fold ${a.addr}`);
      assert.equal(shBucket(fold, 0, 0), a.sh, `sh ${a.addr}`);
      assert.equal(shBucket(fold, a.port, 0), a.shPort, `sh-port ${a.addr}`);
      assert.equal(dhBucket(fold), a.dh, `dh ${a.addr}`);
      assert.equal(localityBucket(a.addr), a.lblc, `lblc ${a.addr}`);
      assert.equal(mhHash(fold, a.port, 0) % MH_TAB_SIZE, a.mhOffset, `mh offset ${a.addr}`);
      assert.equal((mhHash(fold, a.port, 0, MH_KEY2) % (MH_TAB_SIZE - 1)) + 1, a.mhSkip, `mh skip ${a.addr}`);
    }
  });

  it("mh's keys are the kernel's constants", () => {
    assert.deepEqual(MH_KEY1, { k0hi: 0, k0lo: 2654435761, k1hi: 0, k1lo: 2654435761 });
    assert.deepEqual(MH_KEY2, { k0hi: 0, k0lo: 2654446892, k1hi: 0, k1lo: 2654446892 });
  });

  const gcc = spawnSync("gcc", ["--version"]).status === 0;
  it("the C model, rebuilt, reproduces the checked-in vectors", { skip: gcc ? false : "gcc not installed" }, () => {
    const dir = mkdtempSync(join(tmpdir(), "tvs-khref-"));
    try {
      const bin = join(dir, "khref");
      execFileSync("gcc", ["-O2", "-o", bin, source]);
      const out = execFileSync(bin, { encoding: "utf8" });
      assert.deepEqual(JSON.parse(out), vectors);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
