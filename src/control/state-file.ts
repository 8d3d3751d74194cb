// tvsd --state-file PATH: the live table kept on disk in ipvsadm -S format, so a restart (a crash,
// a reboot, `systemctl restart`) comes back with the table tvsadm left, as Debian's ipvsadm
// service saves the rules on stop and restores them on start. This file owns the bytes on disk:
// reading them back at start and replacing them atomically.
//
// Atomic replacement, so a crash or a power cut leaves either the old table or the new one, never
// a mixture: the text goes to a temporary file in the same directory, which is fsync'ed, renamed
// over PATH (rename(2) is atomic within one file system), and then the directory is fsync'ed so
// the rename itself is durable. Writes are serialised, and a write whose text equals what is
// already on disk is skipped (ipvsadm -Z or a listing changes nothing here).

import { randomBytes } from "node:crypto";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { parseIpvsadmRules } from "../config/ipvsadm-rules.ts";
import type { ExecRequest } from "./api/protocol.ts";

/** Write `text` to `path` so that readers (and a crash) see the old content or the new, whole. */
export async function writeFileAtomic(path: string, text: string, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(text, "utf8");
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  } finally {
    await fh.close().catch(() => {});
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

export interface RestoredState {
  /** The requests that rebuild the table (one batch, all or nothing). */
  requests: ExecRequest[];
  services: number;
}

export class StateFile {
  readonly path: string;
  #onDisk: string | undefined;
  #queue: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  /**
   * The saved table as requests, or undefined when there is no file yet (the first start). A file
   * that cannot be read or parsed throws with the path and line: tvsd refuses to start rather than
   * start empty and overwrite the only copy on the next change.
   */
  async load(): Promise<RestoredState | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return undefined;
      throw new Error(`Cannot read state file "${this.path}" (${code ?? (e as Error).message})`);
    }
    const rules = await parseIpvsadmRules(text, { file: this.path, program: "tvsd" }).catch((e: Error) => {
      throw new Error(`State file: ${e.message} (fix or remove "${this.path}" to start)`);
    });
    this.#onDisk = text;
    const requests: ExecRequest[] = rules.requests;
    return { requests, services: requests.filter((r) => r.op === "add-service").length };
  }

  /** Replace the file with `text` (queued behind earlier writes; skipped when unchanged unless `force`). */
  save(text: string, force = false): Promise<void> {
    const next = this.#queue.then(async () => {
      if (text === this.#onDisk && !force) return;
      await writeFileAtomic(this.path, text);
      this.#onDisk = text;
    });
    this.#queue = next.catch(() => {});
    return next;
  }
}
