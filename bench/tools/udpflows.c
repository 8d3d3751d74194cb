/* udpflows: a bounded many-flow UDP load source for bench/packet. Sends 18-byte datagrams to
 * HOST:PORT through a raw socket (IP_HDRINCL), so every packet may carry its own source address
 * and port. Flow i is source address SRCBASE + (i >> 15), source port 32768 + (i & 32767).
 *   MODE cycle: packet n belongs to flow n % FLOWS (FLOWS flows live at once, each revisited
 *               every FLOWS packets: a table of FLOWS established entries, looked up);
 *   MODE new:   packet n is flow n, never seen before (every packet makes a new entry).
 * Sends with sendmmsg in batches of 64 until COUNT packets are sent or SECONDS pass, then prints
 * "sent <n> <elapsed_ns>". Needs CAP_NET_RAW. Only for addresses inside the bench's namespaces.
 * usage: udpflows HOST PORT SRCBASE FLOWS cycle|new COUNT SECONDS */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PKT 46 /* 20 IPv4 + 8 UDP + 18 payload */

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: udpflows HOST PORT SRCBASE FLOWS cycle|new COUNT SECONDS\n");
    return 2;
  }
  struct sockaddr_in dst = {.sin_family = AF_INET};
  struct in_addr base;
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1 || inet_pton(AF_INET, argv[3], &base) != 1) {
    fprintf(stderr, "udpflows: bad address\n");
    return 2;
  }
  int port = atoi(argv[2]);
  long long flows = atoll(argv[4]);
  int cycle = strcmp(argv[5], "cycle") == 0;
  long long count = atoll(argv[6]);
  double seconds = atof(argv[7]);
  if (port <= 0 || port > 65535 || flows <= 0 || flows > (1LL << 24) || count <= 0 || seconds <= 0 || seconds > 120 ||
      (!cycle && strcmp(argv[5], "new") != 0)) {
    fprintf(stderr, "udpflows: PORT 1..65535, FLOWS 1..2^24, MODE cycle|new, COUNT > 0, SECONDS in (0, 120]\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  int one = 1;
  if (fd < 0 || setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one) != 0) {
    perror("udpflows: raw socket");
    return 1;
  }
  static uint8_t pkts[BATCH][PKT];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    uint8_t *p = pkts[i];
    memset(p, 0, PKT);
    p[0] = 0x45;
    p[2] = PKT >> 8;
    p[3] = PKT & 0xff;
    p[6] = 0x40; /* DF */
    p[8] = 64;
    p[9] = IPPROTO_UDP;
    memcpy(p + 16, &dst.sin_addr, 4);
    p[22] = port >> 8;
    p[23] = port & 0xff;
    p[24] = 0;
    p[25] = PKT - 20;
    memcpy(p + 28, "tvs-bench-payload", 18);
    iov[i].iov_base = p;
    iov[i].iov_len = PKT;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &dst;
    msgs[i].msg_hdr.msg_namelen = sizeof dst;
  }
  uint32_t b = ntohl(base.s_addr);
  long long sent = 0, n = 0, start = now_ns(), limit = start + (long long)(seconds * 1e9);
  while (sent < count && now_ns() < limit) {
    int want = count - sent < BATCH ? (int)(count - sent) : BATCH;
    for (int i = 0; i < want; i++) {
      long long flow = cycle ? (n + i) % flows : n + i;
      uint32_t src = htonl(b + (uint32_t)(flow >> 15));
      uint16_t sport = 32768 + (flow & 32767);
      memcpy(pkts[i] + 12, &src, 4);
      pkts[i][20] = sport >> 8;
      pkts[i][21] = sport & 0xff;
      /* The kernel fills the IPv4 checksum; UDP checksum 0 (none). */
    }
    int got = sendmmsg(fd, msgs, want, 0);
    if (got > 0) {
      sent += got;
      n += got;
    }
  }
  printf("sent %lld %lld\n", sent, now_ns() - start);
  return 0;
}
