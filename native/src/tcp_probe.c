// TCP connect probes for health checking (TCP_CHECK) in batches: a connect-and-close costs three
// system calls here (socket+connect, epoll_ctl, close) against the six a libuv TCP handle makes,
// and no JavaScript object is created per probe. Probes are registered with a private epoll
// instance; the caller watches that one descriptor (poll() in tvs_native.c) and, when it is
// readable, collects every finished probe in one call.
//
//   probeOpen()                                        → epoll descriptor (close it with close())
//   probeConnect(ep, token, family, addr, port, bind, bindPort) → probe descriptor, or -errno when
//       the probe failed before it started (socket, bind or connect refused at once)
//   probeCollect(ep, out Int32Array)                   → n; out[3i..3i+2] = token, errno (0 =
//       connected), descriptor. Every collected probe's descriptor is already closed.
//   cancel a probe with close(fd): closing removes it from the epoll set, so it is never collected.
//
// addr and bind are Buffers of 4 (AF_INET) or 16 (AF_INET6) bytes in network order; bind may be
// null (no bindto) and bindPort 0 (any). The close is the ordinary one (FIN, no SO_LINGER reset),
// as keepalived's TCP_CHECK closes.

#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tcp_probe.h"

#define PROBE_BATCH 256

static napi_value i32(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static napi_value type_error(napi_env env, const char* msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static int buffer_arg(napi_env env, napi_value v, uint8_t** data, size_t* len) {
  bool is;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is) return 0;
  return napi_get_buffer_info(env, v, (void**)data, len) == napi_ok;
}

static int fill_addr(struct sockaddr_storage* ss, socklen_t* len, int family, const uint8_t* a, size_t alen,
                     int port) {
  memset(ss, 0, sizeof *ss);
  if (family == 4 && alen == 4) {
    struct sockaddr_in* s = (struct sockaddr_in*)ss;
    s->sin_family = AF_INET;
    s->sin_port = htons((uint16_t)port);
    memcpy(&s->sin_addr, a, 4);
    *len = sizeof *s;
    return 1;
  }
  if (family == 6 && alen == 16) {
    struct sockaddr_in6* s = (struct sockaddr_in6*)ss;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons((uint16_t)port);
    memcpy(&s->sin6_addr, a, 16);
    *len = sizeof *s;
    return 1;
  }
  return 0;
}

napi_value tcp_probe_open(napi_env env, napi_callback_info info) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return i32(env, -errno);
  return i32(env, ep);
}

napi_value tcp_probe_connect(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int32_t ep, token, family, port, bind_port;
  uint8_t *addr, *baddr = NULL;
  size_t alen, blen = 0;
  napi_valuetype bt;
  if (argc < 7 || napi_get_value_int32(env, argv[0], &ep) != napi_ok ||
      napi_get_value_int32(env, argv[1], &token) != napi_ok || napi_get_value_int32(env, argv[2], &family) != napi_ok ||
      !buffer_arg(env, argv[3], &addr, &alen) || napi_get_value_int32(env, argv[4], &port) != napi_ok ||
      napi_typeof(env, argv[5], &bt) != napi_ok || (bt != napi_null && !buffer_arg(env, argv[5], &baddr, &blen)) ||
      napi_get_value_int32(env, argv[6], &bind_port) != napi_ok)
    return type_error(env, "probeConnect(ep, token, family, addr, port, bind, bindPort) has bad arguments");
  struct sockaddr_storage dst, src;
  socklen_t dlen, slen;
  if (port < 0 || port > 65535 || bind_port < 0 || bind_port > 65535 || !fill_addr(&dst, &dlen, family, addr, alen, port))
    return type_error(env, "probeConnect: addr must be 4 (family 4) or 16 (family 6) bytes, port and bindPort 0..65535");
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return i32(env, -errno);
  if (baddr != NULL || bind_port != 0) {
    static const uint8_t any[16] = {0};
    if (!fill_addr(&src, &slen, family, baddr ? baddr : any, baddr ? blen : (family == 4 ? 4 : 16), bind_port)) {
      close(fd);
      return type_error(env, "probeConnect: bind must match the family");
    }
    if (bind_port != 0) {
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    }
    if (bind(fd, (struct sockaddr*)&src, slen) < 0) {
      int e = errno;
      close(fd);
      return i32(env, -e);
    }
  }
  if (connect(fd, (struct sockaddr*)&dst, dlen) < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return i32(env, -e);
  }
  struct epoll_event ev;
  ev.events = EPOLLOUT;  // writable = the handshake finished; EPOLLERR/EPOLLHUP always reported
  ev.data.u64 = ((uint64_t)(uint32_t)fd << 32) | (uint32_t)token;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
    int e = errno;
    close(fd);
    return i32(env, -e);
  }
  return i32(env, fd);
}

napi_value tcp_probe_collect(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int32_t ep;
  bool is;
  napi_typedarray_type t;
  size_t n, off;
  napi_value ab;
  void* p;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &ep) != napi_ok ||
      napi_is_typedarray(env, argv[1], &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, argv[1], &t, &n, &p, &ab, &off) != napi_ok || t != napi_int32_array)
    return type_error(env, "probeCollect(ep, out Int32Array) has bad arguments");
  int32_t* out = p;
  int max = (int)(n / 3);
  if (max > PROBE_BATCH) max = PROBE_BATCH;
  if (max <= 0) return i32(env, 0);
  struct epoll_event evs[PROBE_BATCH];
  int k = epoll_wait(ep, evs, max, 0);
  if (k < 0) return i32(env, errno == EINTR ? 0 : -errno);
  for (int i = 0; i < k; i++) {
    int fd = (int)(evs[i].data.u64 >> 32);
    int32_t token = (int32_t)(uint32_t)evs[i].data.u64;
    int err = 0;
    if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
      socklen_t len = sizeof err;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
      if (err == 0) err = ECONNRESET;  // hung up without a pending error: the peer reset at once
    }
    close(fd);
    out[3 * i] = token;
    out[3 * i + 1] = err;
    out[3 * i + 2] = fd;
  }
  return i32(env, k);
}
