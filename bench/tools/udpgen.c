/* udpgen: a bounded small-UDP load source for bench/packet. Sends 18-byte datagrams to HOST:PORT
 * from a range of source ports (so flow-hash fanout spreads them) with sendmmsg in batches of 64,
 * until COUNT packets are sent or SECONDS pass, then prints "sent <n> <elapsed_ns>". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define SOCKS 16

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: udpgen HOST PORT COUNT SECONDS\n");
    return 2;
  }
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
    fprintf(stderr, "udpgen: bad host \"%s\"\n", argv[1]);
    return 2;
  }
  long long count = atoll(argv[3]);
  double seconds = atof(argv[4]);
  if (count <= 0 || seconds <= 0 || seconds > 120) {
    fprintf(stderr, "udpgen: COUNT must be > 0 and SECONDS in (0, 120]\n");
    return 2;
  }
  int fds[SOCKS];
  for (int i = 0; i < SOCKS; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
    if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&dst, sizeof dst) != 0) {
      perror("udpgen: socket/connect");
      return 1;
    }
  }
  char payload[18] = "tvs-bench-payload";
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = payload;
    iov[i].iov_len = sizeof payload;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  long long sent = 0, start = now_ns(), limit = start + (long long)(seconds * 1e9);
  int s = 0;
  while (sent < count && now_ns() < limit) {
    int want = count - sent < BATCH ? (int)(count - sent) : BATCH;
    int n = sendmmsg(fds[s], msgs, want, 0);
    if (n > 0) sent += n;
    s = (s + 1) % SOCKS;
  }
  printf("sent %lld %lld\n", sent, now_ns() - start);
  return 0;
}
