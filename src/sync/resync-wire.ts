// tvs's bulk resync on the sync wire (kernel sync is one-way: a director that starts, or comes
// back, as backup has an empty table until each entry happens to be synced again). Two control
// messages ride the same multicast group and port:
//
//   request  00 syncid 000c 00 01 5452 | nonce be32          "TR": send me your table
//   end      00 syncid 0010 00 01 5445 | nonce be32 | count  "TE": that was all of it
//
// Both look like a v1 header with a non-zero spare field, which a kernel backup reads as a v0
// message of zero records (the count byte of a v0 header is our reserved 0): it checks the size
// and syncid and does nothing. A kernel master never listens, so it never answers; a tvs backup
// then stays with what the kernel sends in its own time. The table itself travels as ordinary v1
// messages, which every backup on the group (kernel or tvs) applies.

export const RESYNC_REQUEST = 0x5452;
export const RESYNC_END = 0x5445;

export type ResyncControl =
  | { kind: "request"; syncId: number; nonce: number }
  | { kind: "end"; syncId: number; nonce: number; count: number };

export function encodeResyncRequest(syncId: number, nonce: number): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  b[1] = syncId;
  v.setUint16(2, 12);
  b[5] = 1;
  v.setUint16(6, RESYNC_REQUEST);
  v.setUint32(8, nonce >>> 0);
  return b;
}

export function encodeResyncEnd(syncId: number, nonce: number, count: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  b[1] = syncId;
  v.setUint16(2, 16);
  b[5] = 1;
  v.setUint16(6, RESYNC_END);
  v.setUint32(8, nonce >>> 0);
  v.setUint32(12, count >>> 0);
  return b;
}

/** A resync control message, or undefined for anything else (never throws). */
export function decodeResyncControl(b: Uint8Array): ResyncControl | undefined {
  if (b.length !== 12 && b.length !== 16) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b[0] !== 0 || b[4] !== 0 || b[5] !== 1 || v.getUint16(2) !== b.length) return undefined;
  const kind = v.getUint16(6);
  const syncId = b[1] as number;
  if (kind === RESYNC_REQUEST && b.length === 12) return { kind: "request", syncId, nonce: v.getUint32(8) };
  if (kind === RESYNC_END && b.length === 16)
    return { kind: "end", syncId, nonce: v.getUint32(8), count: v.getUint32(12) };
  return undefined;
}
