/* An independent C model of the hashes the IPVS hashing schedulers use, written from the kernel's
 * description (hash_32 in include/linux/hash.h, hsiphash on 64-bit in lib/siphash.c, the address
 * fold in ip_vs_sh.c / ip_vs_dh.c / ip_vs_mh.c / ip_vs_lblc.c). It hashes real in-memory network
 * byte order addresses (inet_pton into __be32 words, XOR, ntohl) exactly as the kernel does on
 * x86_64, so the TypeScript, which works from numbers, is checked against a second implementation.
 * Its SipHash is generic in its round counts and checks itself against the published SipHash-2-4
 * vectors before printing anything. Output: JSON vectors on stdout (see kernel-hash.test.ts). */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rol(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static void round_(uint64_t v[4]) {
  v[0] += v[1]; v[1] = rol(v[1], 13); v[1] ^= v[0]; v[0] = rol(v[0], 32);
  v[2] += v[3]; v[3] = rol(v[3], 16); v[3] ^= v[2];
  v[0] += v[3]; v[3] = rol(v[3], 21); v[3] ^= v[0];
  v[2] += v[1]; v[1] = rol(v[1], 17); v[1] ^= v[2]; v[2] = rol(v[2], 32);
}

/* SipHash-c-d of a byte string, keys as two little-endian 64-bit words. */
static uint64_t siphash(int c, int d, const uint8_t *in, size_t len, uint64_t k0, uint64_t k1) {
  uint64_t v[4] = {0x736f6d6570736575ULL ^ k0, 0x646f72616e646f6dULL ^ k1, 0x6c7967656e657261ULL ^ k0,
                   0x7465646279746573ULL ^ k1};
  size_t i, full = len - len % 8;
  for (i = 0; i < full; i += 8) {
    uint64_t m = 0;
    for (int j = 7; j >= 0; j--) m = (m << 8) | in[i + j];
    v[3] ^= m;
    for (int r = 0; r < c; r++) round_(v);
    v[0] ^= m;
  }
  uint64_t b = ((uint64_t)len) << 56;
  for (size_t j = 0; j < len % 8; j++) b |= ((uint64_t)in[full + j]) << (8 * j);
  v[3] ^= b;
  for (int r = 0; r < c; r++) round_(v);
  v[0] ^= b;
  v[2] ^= 0xff;
  for (int r = 0; r < d; r++) round_(v);
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* hsiphash(&v, 4, key) on a 64-bit kernel: the u32's bytes as they sit in memory. */
static uint32_t hsiphash_u32(uint32_t v, uint64_t k0, uint64_t k1) {
  uint8_t bytes[4];
  memcpy(bytes, &v, 4);
  return (uint32_t)siphash(1, 3, bytes, 4, k0, k1);
}

static uint32_t hash_32(uint32_t v, int bits) { return (uint32_t)(v * 0x61C88647u) >> (32 - bits); }

static uint64_t rng = 0x243f6a8885a308d3ULL;
static uint64_t next(void) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return rng;
}

/* ntohl of the kernel's fold of an address given as text. */
static uint32_t fold(const char *text) {
  uint32_t w[4] = {0, 0, 0, 0};
  if (strchr(text, ':')) {
    if (inet_pton(AF_INET6, text, w) != 1) exit(2);
    return ntohl(w[0] ^ w[1] ^ w[2] ^ w[3]);
  }
  if (inet_pton(AF_INET, text, w) != 1) exit(2);
  return ntohl(w[0]);
}

/* Maglev population as ip_vs_mh.c describes it, for a destination list in list order. */
#define MH_M 4093
struct mhdest { const char *addr; uint16_t port; int lw; };

static int gcd_(int a, int b) { while (b) { int t = a % b; a = b; b = t; } return a; }
static int fls_(unsigned x) { int n = 0; while (x) { n++; x >>= 1; } return n; }

static void mh_table(const char *name, const struct mhdest *d, int n) {
  static signed char table[MH_M];
  static unsigned char taken[MH_M];
  uint32_t offset[16], skip[16], perm[16];
  int turns[16], g = 0, mw = 0;
  for (int i = 0; i < n; i++) if (d[i].lw > 0) g = g ? gcd_(d[i].lw, g) : d[i].lw;
  for (int i = 0; i < n; i++) if (d[i].lw > mw) mw = d[i].lw;
  int rshift = fls_((unsigned)(mw / g)) - 6;
  if (rshift < 0) rshift = 0;
  for (int i = 0; i < n; i++) {
    uint32_t v = (uint32_t)d[i].port + fold(d[i].addr);
    offset[i] = hsiphash_u32(v, 2654435761ULL, 2654435761ULL) % MH_M;
    skip[i] = hsiphash_u32(v, 2654446892ULL, 2654446892ULL) % (MH_M - 1) + 1;
    perm[i] = offset[i];
    turns[i] = (d[i].lw / g) >> rshift;
    if (!turns[i]) turns[i] = d[i].lw != 0;
  }
  memset(taken, 0, sizeof taken);
  int filled = 0, i = 0, claimed = 0;
  while (filled < MH_M) {
    if (turns[i] < 1) { i = (i + 1) % n; continue; }
    while (taken[perm[i]]) perm[i] = (perm[i] + skip[i]) % MH_M;
    taken[perm[i]] = 1;
    table[perm[i]] = (signed char)i;
    filled++;
    if (++claimed >= turns[i]) { claimed = 0; i = (i + 1) % n; }
  }
  printf("    \"%s\": \"", name);
  for (int k = 0; k < MH_M; k++) putchar('0' + table[k]);
  printf("\"");
}

int main(void) {
  /* Self-check against the SipHash-2-4 reference: key 00..0f, messages 00, 01, ... */
  uint8_t key[16], msg[64];
  for (int i = 0; i < 16; i++) key[i] = (uint8_t)i;
  for (int i = 0; i < 64; i++) msg[i] = (uint8_t)i;
  uint64_t k0 = 0, k1 = 0;
  for (int j = 7; j >= 0; j--) { k0 = (k0 << 8) | key[j]; k1 = (k1 << 8) | key[8 + j]; }
  if (siphash(2, 4, msg, 0, k0, k1) != 0x726fdb47dd0e0e31ULL) return 1;
  if (siphash(2, 4, msg, 15, k0, k1) != 0xa129ca6149be45e5ULL) return 1;

  printf("{\n  \"hash32\": [");
  for (int i = 0; i < 64; i++) {
    uint32_t v = (uint32_t)next();
    int bits = 1 + (int)(next() % 32);
    if (i == 0) v = 0;
    printf("%s\n    [%u, %d, %u]", i ? "," : "", v, bits, hash_32(v, bits));
  }
  printf("\n  ],\n  \"hsiphash\": [");
  const uint64_t mhk[2] = {2654435761ULL, 2654446892ULL};
  for (int i = 0; i < 96; i++) {
    uint64_t a, b;
    if (i < 32) a = b = mhk[i % 2];
    else { a = next(); b = next(); }
    uint32_t v = (uint32_t)next();
    if (i < 4) v = (uint32_t)i;
    printf("%s\n    [%u, %u, %u, %u, %u, %u]", i ? "," : "", (uint32_t)(a >> 32), (uint32_t)a,
           (uint32_t)(b >> 32), (uint32_t)b, v, hsiphash_u32(v, a, b));
  }
  printf("\n  ],\n  \"addresses\": [");
  const char *addrs[] = {"0.0.0.0", "10.0.0.1", "192.168.56.1", "192.168.56.102", "172.16.254.3",
                         "255.255.255.255", "1.2.3.4", "::1", "2001:db8::1", "fe80::1:2:3:4",
                         "2001:db8:85a3::8a2e:370:7334", "::ffff:10.0.0.1"};
  int n = sizeof(addrs) / sizeof(addrs[0]);
  for (int i = 0; i < n; i++) {
    uint32_t f = fold(addrs[i]);
    uint16_t port = (uint16_t)(1024 + 977 * i);
    /* sh: (offset + hash_32(port + fold, 8)) & 255, offset 0; dh: hash_32(fold, 8);
       lblc: hash_32(fold, 10); mh: hsiphash(offset + port + fold) % 4093 with both keys. */
    uint32_t sh0 = hash_32(0 + f, 8) & 255, shp = hash_32(port + f, 8) & 255;
    uint32_t mh1 = hsiphash_u32(port + f, mhk[0], mhk[0]) % 4093;
    uint32_t mh2 = hsiphash_u32(port + f, mhk[1], mhk[1]) % 4092 + 1;
    printf("%s\n    {\"addr\": \"%s\", \"port\": %u, \"fold\": %u, \"sh\": %u, \"shPort\": %u, \"dh\": %u, "
           "\"lblc\": %u, \"mhOffset\": %u, \"mhSkip\": %u}",
           i ? "," : "", addrs[i], port, f, sh0, shp, hash_32(f, 8), hash_32(f, 10), mh1, mh2);
  }
  printf("\n  ],\n  \"mh\": {\n");
  /* Tables for the destination lists used by mh.test.ts, in the kernel's list order. */
  const struct mhdest v4[] = {{"10.1.0.3", 80, 3}, {"10.1.0.2", 80, 2}, {"10.1.0.1", 80, 1}};
  mh_table("v4", v4, 3);
  printf(",\n");
  const struct mhdest v6[] = {{"2001:db8::4", 8080, 7}, {"2001:db8::3", 8080, 0}, {"2001:db8::2", 8080, 1000},
                              {"2001:db8::1", 8080, 100}};
  mh_table("v6", v6, 4);
  printf("\n  }\n}\n");
  return 0;
}
