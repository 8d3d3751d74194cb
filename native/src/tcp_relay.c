// The socket data plane's TCP byte pump: accepting on a VIP's listening sockets, connecting to the
// real server TypeScript chose, and moving bytes both ways between the two sockets, with no
// JavaScript call per read. Every decision stays in TypeScript (native-relay.ts): which clients
// are admitted, which real server, when a connection is retried, aborted or timed out, and what
// the connection table shows. This file only reports what happened, in batches.
//
// Why it exists. On keep-alive traffic a JavaScript relay pays, per request and direction, a call
// from C++ into JavaScript, an ArrayBuffer for the read and a write request object; measured, that
// user-space share was 4 µs per request against haproxy's 0.6 µs, the rest being the kernel's
// work that every proxy pays. Here a read and its write are two system calls and nothing else.
//
// How. One private epoll instance per process holds every socket of the plane; Node's loop watches
// only that descriptor (a uv_poll), so one wake-up of the loop serves every ready socket and
// ends in at most one call into JavaScript with all that happened, as records in a shared
// Float64Array (a wake-up that only moved bytes makes none: its counters follow within 20 ms):
//
//   [ACCEPT4 | ACCEPT6, listener, fd, peer port, address words w0..w3]   a client was accepted
//   [CONNECTED, id, 0 or -errno]        the real server accepted, or the connect failed (the
//                                        real-server socket is then closed; the client is kept)
//   [DATA, id, in packets, in bytes, out packets, out bytes]   reads since the last record
//   [EOF, id, 0 = from the client | 1 = from the real server]  an end of stream, passed on
//   [CLOSED, id, 0 or -errno, 0 = client side | 1 = real-server side]   both sockets are closed
//   [ACCEPT_ERROR, listener, -errno]    accept failed for lack of resources (listener paused 100 ms)
//
// Connection sockets are registered edge-triggered for input and output once, when they are
// made, and never modified: a direction reads until a short read (a new arrival raises a new
// edge; once a socket has reported its peer's shutdown, until the end of stream), and when the
// destination cannot take everything, the rest waits in a buffer of its own, the source is not
// read until that buffer is written (the kernel's windows carry the backpressure), and the
// destination's writable edge resumes it. One read buffer of 64 KiB is shared by every
// connection, because a read's bytes are written at once. A direction that keeps its source full
// yields after 16 reads so others are served; it is resumed from an idle handle.
//
// Half-close: an end of stream read on one side becomes a shutdown of the other side's write half
// once everything before it is written; the second one closes both sockets (close sends that FIN).
// A read or write error resets both sockets (SO_LINGER 0), and so does an error reported on a
// socket that no read would see now: its stream has ended (a reset after its FIN), its bytes wait
// for a destination that does not take them, or it is a client whose real server is still being
// reached. Ids are reused only at the start of the next wake-up,
// after JavaScript has consumed every record naming them.
//
// Arguments from JavaScript are checked before use: descriptors and ids must be integral numbers
// (a TypeError otherwise), and a descriptor is taken over or closed only if it is a TCP socket
// (-EBADF, -ENOTSOCK or -EPROTOTYPE otherwise; it is then left alone).

#define _GNU_SOURCE
#include "tcp_relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

// The sizes below the guards may be made smaller at compile time (-DMAX_READS=2 ...) so that a
// test build reaches the rare paths often: partial writes, yielding, flushing in mid-batch,
// growing the slot tables (tools/build-native-asan.sh --tight). MAX_RECORDS must leave room for
// an accept batch.
#ifndef RELAY_BUF
#define RELAY_BUF (64 * 1024)
#endif
#ifndef MAX_RECORDS
#define MAX_RECORDS 4096
#endif
#ifndef MAX_READS
#define MAX_READS 16
#endif
#ifndef MAX_ROUNDS
#define MAX_ROUNDS 8
#endif
#ifndef FIRST_SLOTS
#define FIRST_SLOTS 1024     // connection slots made at first; doubled as needed
#endif
#ifndef FIRST_LISTENERS
#define FIRST_LISTENERS 64   // listener slots made at first; doubled as needed
#endif
#define REC 8
#define EPOLL_BATCH 256
#define ACCEPT_BATCH 64
#define REPORT_MS 20
#define HEADER_MAX 536
_Static_assert(MAX_RECORDS > 2 * (ACCEPT_BATCH + 4), "MAX_RECORDS leaves no room for an accept batch");

enum { EV_ACCEPT4 = 1, EV_ACCEPT6, EV_CONNECTED, EV_DATA, EV_EOF, EV_CLOSED, EV_ACCEPT_ERROR };
enum { S_FREE = 0, S_CONNECTING, S_RELAY, S_DEAD };
enum { SIDE_CLIENT = 0, SIDE_SERVER = 1, SIDE_LISTENER = 2 };

typedef struct {
  uint8_t* pend;   // bytes read but not yet written to the destination
  uint32_t plen;   // how many
  uint32_t poff;   // written so far
  uint8_t eof;     // end of stream read from the source
} direction;

typedef struct conn {
  int32_t id;
  int cfd, sfd;
  uint8_t state;
  uint8_t dirty;   // counters not yet reported
  uint8_t again;   // on the list of directions that yielded
  uint8_t hup[2];  // the client's / real server's socket reported a peer shutdown or an error
  direction d[2];  // 0: client → real server, 1: real server → client
  double pkts[2], bytes[2];
  struct conn* next_dirty;
  struct conn* next_again;
  struct conn* next_free;
} conn;

typedef struct {
  int fd;          // -1: free
  uint8_t paused;
} listener;

typedef struct {
  napi_env env;
  int ep;
  uv_poll_t poll;
  uv_idle_t idle;
  uv_timer_t resume;
  uv_timer_t report;  // counters of wake-ups that had nothing else to say
  napi_ref cb;
  napi_ref events_ref;
  napi_ref recv_ref;  // the receiver of every call into JavaScript
  napi_async_context ctx;
  double* ev;
  size_t nev;
  uint8_t* buf;
  conn** conns;
  int32_t cap, made, used;
  conn* free_now;   // ids free for reuse
  conn* free_later; // ids freed during this wake-up, reusable from the next
  conn* dirty;
  conn* again;
  listener* listeners;  // grown as needed; fd -1: free
  int nlisteners;
  int lfree;            // no free listener slot below this one
  int closing;
} relay;

static relay* R;

// ---------------------------------------------------------------------------------------------
// Helpers

static napi_value i32v(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static napi_value fail_type(napi_env env, const char* msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value fail_errno(napi_env env, const char* what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s failed: %s", what, strerror(err));
  napi_throw_error(env, uv_err_name(-err), msg);
  return NULL;
}

// An integral number within int32's range. (napi_get_value_int32 alone would turn NaN and
// Infinity into 0, 2^32 + 3 into 3 and 3.5 into 3: a wrong argument must not name descriptor 0,
// 3 or an id that happens to be open.)
static int arg_i32(napi_env env, napi_value v, int32_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= INT32_MIN && d <= INT32_MAX) || d != (double)(int32_t)d)
    return 0;
  *out = (int32_t)d;
  return 1;
}

// The one argument of a call taking a descriptor or an id: a non-negative integral number, or a
// TypeError saying `usage` (then 0 is returned).
static int one_index_arg(napi_env env, napi_callback_info info, int32_t* out, const char* usage) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !arg_i32(env, argv[0], out) || *out < 0) {
    fail_type(env, usage);
    return 0;
  }
  return 1;
}

// 0 when fd is a TCP socket, else the errno saying why not (EBADF, ENOTSOCK, EPROTOTYPE); one
// system call. The functions that take over or close a descriptor check it first, so a stale or
// wrong number never closes a file, a pipe or the terminal.
static int tcp_socket(int fd) {
  int v = 0;
  socklen_t l = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &l) < 0) return errno;
  return v == IPPROTO_TCP ? 0 : EPROTOTYPE;
}


static uint64_t tag(int32_t id, int side) { return ((uint64_t)(uint32_t)id << 2) | (uint64_t)side; }

// A socket's pending error (SO_ERROR, which reading it clears), 0 when there is none.
static int pending_error(int fd) {
  int err = 0;
  socklen_t l = sizeof err;
  return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 ? errno : err;
}

static void reset_close(int fd) {
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

static double* record(relay* r, int kind, double id) {
  double* p = r->ev + r->nev * REC;
  r->nev++;
  p[0] = kind;
  p[1] = id;
  p[2] = p[3] = p[4] = p[5] = p[6] = p[7] = 0;
  return p;
}

static void report_counters(relay* r, conn* c) {
  if (!c->dirty) return;
  c->dirty = 0;
  double* p = record(r, EV_DATA, c->id);
  p[2] = c->pkts[0];
  p[3] = c->bytes[0];
  p[4] = c->pkts[1];
  p[5] = c->bytes[1];
  c->pkts[0] = c->pkts[1] = c->bytes[0] = c->bytes[1] = 0;
}

// Hand every record to JavaScript in one call. Exceptions there are fatal (napi_fatal_exception):
// a relay that JavaScript failed to follow is in an unknown state.
static void flush(relay* r) {
  if (r->nev == 0 || r->closing) return;
  napi_env env = r->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, arg, result;
  napi_get_reference_value(env, r->cb, &cb);
  napi_get_reference_value(env, r->recv_ref, &recv);
  arg = i32v(env, (int32_t)r->nev);
  r->nev = 0;
  napi_status s = napi_make_callback(env, r->ctx, recv, cb, 1, &arg, &result);
  if (s == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

// Room for the records one more event may produce (an accept batch at most).
static void ensure_room(relay* r) {
  if (r->nev + ACCEPT_BATCH + 4 > MAX_RECORDS) flush(r);
}

static void release(relay* r, conn* c) {
  free(c->d[0].pend);
  free(c->d[1].pend);
  c->d[0].pend = c->d[1].pend = NULL;
  c->state = S_DEAD;
  c->next_free = r->free_later;
  r->free_later = c;
  r->used--;
}

// Close both sockets: with a reset (an error either way, or JavaScript's abort) or the ordinary
// FIN (both ends of stream passed on).
static void close_conn(relay* r, conn* c, int reset) {
  if (c->cfd >= 0) reset ? reset_close(c->cfd) : (void)close(c->cfd);
  if (c->sfd >= 0) reset ? reset_close(c->sfd) : (void)close(c->sfd);
  c->cfd = c->sfd = -1;
  release(r, c);
}

static void finish(relay* r, conn* c, int err, int side) {
  report_counters(r, c);
  double* p = record(r, EV_CLOSED, c->id);
  p[2] = err ? -err : 0;
  p[3] = side;
  close_conn(r, c, err != 0);
}

// ---------------------------------------------------------------------------------------------
// Moving bytes

static void pump(relay* r, conn* c, int d);

// Write what waits for direction d's destination: 1 when nothing is left, 0 when it must wait
// for the destination's writable edge, -1 when the connection failed (and is gone).
static int drain(relay* r, conn* c, int d) {
  direction* D = &c->d[d];
  int dst = d == 0 ? c->sfd : c->cfd;
  while (D->poff < D->plen) {
    ssize_t w = send(dst, D->pend + D->poff, D->plen - D->poff, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return 0;
      finish(r, c, errno, d == 0 ? SIDE_SERVER : SIDE_CLIENT);
      return -1;
    }
    D->poff += (uint32_t)w;
  }
  free(D->pend);
  D->pend = NULL;
  D->plen = D->poff = 0;
  return 1;
}

// Keep what a destination did not take; the source is not read until it is written.
static int keep(relay* r, conn* c, int d, const uint8_t* data, size_t n) {
  direction* D = &c->d[d];
  D->pend = malloc(n);
  if (!D->pend) {
    finish(r, c, ENOMEM, d == 0 ? SIDE_SERVER : SIDE_CLIENT);
    return -1;
  }
  memcpy(D->pend, data, n);
  D->plen = (uint32_t)n;
  D->poff = 0;
  return 0;
}

// An end of stream from direction d's source: the second one closes both sockets, the first one
// shuts the destination's write half.
static void ended(relay* r, conn* c, int d) {
  c->d[d].eof = 1;
  double* p = record(r, EV_EOF, c->id);
  p[2] = d;
  if (c->d[1 - d].eof) {  // (an ended direction has nothing left to write)
    finish(r, c, 0, 0);
    return;
  }
  shutdown(d == 0 ? c->sfd : c->cfd, SHUT_WR);
}

static void pump(relay* r, conn* c, int d) {
  if (c->state != S_RELAY) return;
  direction* D = &c->d[d];
  if (D->plen || D->eof) return;  // waiting for the destination's writable edge, or over
  int src = d == 0 ? c->cfd : c->sfd;
  int dst = d == 0 ? c->sfd : c->cfd;
  for (int i = 0; i < MAX_READS; i++) {
    ssize_t n = read(src, r->buf, RELAY_BUF);
    if (n > 0) {
      c->pkts[d] += 1;
      c->bytes[d] += (double)n;
      if (!c->dirty) {
        c->dirty = 1;
        c->next_dirty = r->dirty;
        r->dirty = c;
      }
      ssize_t w;
      do w = send(dst, r->buf, (size_t)n, MSG_NOSIGNAL);
      while (w < 0 && errno == EINTR);
      if (w < 0 && errno != EAGAIN) {
        finish(r, c, errno, d == 0 ? SIDE_SERVER : SIDE_CLIENT);
        return;
      }
      if (w < 0) w = 0;
      if (w < n) {
        keep(r, c, d, r->buf + w, (size_t)(n - w));
        return;
      }
      // A short read emptied the socket: a new arrival raises a new edge. An end of stream that
      // came with the data raised its edge already, so it is read now.
      if (n < RELAY_BUF && !c->hup[d]) return;
      continue;
    }
    if (n == 0) {
      ended(r, c, d);
      return;
    }
    if (errno == EINTR) {
      i--;
      continue;
    }
    if (errno == EAGAIN) return;
    finish(r, c, errno, d == 0 ? SIDE_CLIENT : SIDE_SERVER);
    return;
  }
  // Still full after MAX_READS reads: serve the others first, come back from the idle handle.
  if (!c->again) {
    c->again = 1;
    c->next_again = r->again;
    r->again = c;
  }
}

// Write what waits for direction d, then read its source again: it may hold data that raised
// its edge while it was not being read. (An end of stream is only read after everything before
// it was written, so an ended direction never has bytes waiting.)
static void resume(relay* r, conn* c, int d) {
  if (c->d[d].plen && drain(r, c, d) <= 0) return;
  pump(r, c, d);
}

// ---------------------------------------------------------------------------------------------
// Events

static void connected(relay* r, conn* c) {
  int err = pending_error(c->sfd);
  if (err == EINPROGRESS || err == EALREADY) return;
  double* p = record(r, EV_CONNECTED, c->id);
  if (err) {
    p[2] = -err;
    close(c->sfd);
    c->sfd = -1;
    return;  // JavaScript reconnects elsewhere or aborts
  }
  c->state = S_RELAY;
  resume(r, c, 0);  // the PROXY header, if any, then what the client sent meanwhile
  if (c->state == S_RELAY) pump(r, c, 1);
}

static void on_conn_event(relay* r, int32_t id, int side, uint32_t events) {
  if (id < 0 || id >= r->made) return;
  conn* c = r->conns[id];
  if ((c->state == S_CONNECTING || c->state == S_RELAY) && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
    c->hup[side] = 1;
  if (c->state == S_CONNECTING) {
    if (side == SIDE_SERVER && c->sfd >= 0 && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) connected(r, c);
    // A client that reset meanwhile is gone: nothing waits for the real server any more (its
    // bytes and its FIN, on the other hand, wait until the real server has accepted).
    else if (side == SIDE_CLIENT && (events & EPOLLERR)) {
      int err = pending_error(c->cfd);
      if (err) finish(r, c, err, SIDE_CLIENT);
    }
    return;
  }
  if (c->state != S_RELAY) return;
  int in = side == SIDE_CLIENT ? 0 : 1;  // the direction this socket is the source of
  if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
    if (c->d[1 - in].plen) resume(r, c, 1 - in);
    if (c->state != S_RELAY) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) pump(r, c, in);
  // A socket that is not read now, because its stream has ended or its bytes wait for a
  // destination that does not take them, would keep its error (a reset: the real server closed
  // and answered the client's next bytes with one, the client gave up on a stalled upload) until
  // the other direction's next write or the destination's next read, which may never come. It
  // resets both now, as the reset passes through the kernel's IPVS.
  if (c->state == S_RELAY && (events & EPOLLERR) && (c->d[in].eof || c->d[in].plen)) {
    int err = pending_error(side == SIDE_CLIENT ? c->cfd : c->sfd);
    if (err) finish(r, c, err, side);
  }
}

static void on_resume(uv_timer_t* h);

static void pause_listener(relay* r, int lid) {
  listener* L = &r->listeners[lid];
  struct epoll_event e = {.events = 0, .data.u64 = tag(lid, SIDE_LISTENER)};
  epoll_ctl(r->ep, EPOLL_CTL_MOD, L->fd, &e);
  L->paused = 1;
  if (!uv_is_active((uv_handle_t*)&r->resume)) uv_timer_start(&r->resume, on_resume, 100, 0);
}

static void on_accept(relay* r, int lid) {
  listener* L = &r->listeners[lid];
  for (int i = 0; i < ACCEPT_BATCH && L->fd >= 0; i++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(L->fd, (struct sockaddr*)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN) return;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      double* p = record(r, EV_ACCEPT_ERROR, lid);
      p[2] = -errno;
      pause_listener(r, lid);
      return;
    }
    double* p;
    if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6* s = (struct sockaddr_in6*)&ss;
      p = record(r, EV_ACCEPT6, lid);
      p[3] = ntohs(s->sin6_port);
      for (int k = 0; k < 4; k++) {
        uint32_t w;
        memcpy(&w, s->sin6_addr.s6_addr + 4 * k, 4);
        p[4 + k] = ntohl(w);
      }
    } else {
      struct sockaddr_in* s = (struct sockaddr_in*)&ss;
      p = record(r, EV_ACCEPT4, lid);
      p[3] = ntohs(s->sin_port);
      p[4] = ntohl(s->sin_addr.s_addr);
    }
    p[2] = fd;
  }
}

static void report_dirty(relay* r) {
  while (r->dirty) {
    conn* c = r->dirty;
    r->dirty = c->next_dirty;
    if (c->state == S_CONNECTING || c->state == S_RELAY) {
      if (r->nev + 1 > MAX_RECORDS) flush(r);
      report_counters(r, c);
    }
    c->dirty = 0;
  }
}

static void run_again(relay* r) {
  conn* list = r->again;
  r->again = NULL;
  while (list) {
    conn* c = list;
    list = c->next_again;
    c->again = 0;
    ensure_room(r);
    if (c->state != S_RELAY) continue;
    if (c->d[0].plen == 0) pump(r, c, 0);
    if (c->state == S_RELAY && c->d[1].plen == 0) pump(r, c, 1);
  }
}

// Directions that yielded and have died since are taken off the list before their slots are reused.
static void prune_again(relay* r) {
  conn** pp = &r->again;
  while (*pp) {
    conn* c = *pp;
    if (c->state != S_RELAY) {
      *pp = c->next_again;
      c->again = 0;
    } else {
      pp = &c->next_again;
    }
  }
}

// Counters wait on the dirty list across wake-ups (see work()): connections that died since are
// taken off it before their slots are reused.
static void prune_dirty(relay* r) {
  conn** pp = &r->dirty;
  while (*pp) {
    conn* c = *pp;
    if (!c->dirty || (c->state != S_CONNECTING && c->state != S_RELAY)) {
      *pp = c->next_dirty;
      c->dirty = 0;
    } else {
      pp = &c->next_dirty;
    }
  }
}

static void reuse_freed(relay* r) {
  while (r->free_later) {
    conn* c = r->free_later;
    r->free_later = c->next_free;
    c->state = S_FREE;
    c->next_free = r->free_now;
    r->free_now = c;
  }
}

static void on_idle(uv_idle_t* h);

static void on_report(uv_timer_t* h);

static void work(relay* r) {
  prune_again(r);
  prune_dirty(r);
  reuse_freed(r);
  struct epoll_event evs[EPOLL_BATCH];
  for (int round = 0; round < MAX_ROUNDS && !r->closing; round++) {
    int n = epoll_wait(r->ep, evs, EPOLL_BATCH, 0);
    if (n <= 0 && !r->again) break;
    for (int i = 0; i < n && !r->closing; i++) {
      ensure_room(r);
      if (r->closing) break;  // relayClose was called from the records' callback
      uint64_t t = evs[i].data.u64;
      int side = (int)(t & 3);
      int32_t id = (int32_t)(t >> 2);
      if (side == SIDE_LISTENER) {
        if (id >= 0 && id < r->nlisteners && r->listeners[id].fd >= 0 && !r->listeners[id].paused) on_accept(r, id);
      } else {
        on_conn_event(r, id, side, evs[i].events);
      }
    }
    if (r->again) run_again(r);
    if (n < EPOLL_BATCH && !r->again) break;
  }
  // Counters go with the other records of this wake-up. A wake-up with nothing else to say (a
  // request or an answer on a kept-alive connection) calls no JavaScript: its counters follow
  // within REPORT_MS, so a busy connection costs one call per REPORT_MS, not one per read.
  if (r->nev > 0) {
    report_dirty(r);
    flush(r);
  } else if (r->dirty && !r->closing && !uv_is_active((uv_handle_t*)&r->report)) {
    uv_timer_start(&r->report, on_report, REPORT_MS, 0);
  }
  if (r->closing) return;
  if (r->again) {
    if (!uv_is_active((uv_handle_t*)&r->idle)) uv_idle_start(&r->idle, on_idle);
  } else if (uv_is_active((uv_handle_t*)&r->idle)) {
    uv_idle_stop(&r->idle);
  }
}


static void on_poll(uv_poll_t* h, int status, int events) { work(h->data); }
static void on_idle(uv_idle_t* h) { work(h->data); }

static void on_report(uv_timer_t* h) {
  relay* r = h->data;
  report_dirty(r);
  flush(r);
}

static void on_resume(uv_timer_t* h) {
  relay* r = h->data;
  for (int i = 0; i < r->nlisteners; i++) {
    listener* L = &r->listeners[i];
    if (L->fd < 0 || !L->paused) continue;
    L->paused = 0;
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = tag(i, SIDE_LISTENER)};
    epoll_ctl(r->ep, EPOLL_CTL_MOD, L->fd, &e);
  }
}

// ---------------------------------------------------------------------------------------------
// Calls from JavaScript

static relay* need(napi_env env) {
  if (!R || R->closing) fail_type(env, "the TCP relay is not open (relayOpen first)");
  return R;
}

static void freed_handle(uv_handle_t* h) {}

static void teardown(relay* r) {
  if (r->closing) return;
  r->closing = 1;
  for (int32_t i = 0; i < r->made; i++) {
    conn* c = r->conns[i];
    if (c->state == S_CONNECTING || c->state == S_RELAY) close_conn(r, c, 1);
  }
  for (int i = 0; i < r->nlisteners; i++)
    if (r->listeners[i].fd >= 0) {
      close(r->listeners[i].fd);
      r->listeners[i].fd = -1;
    }
  uv_poll_stop(&r->poll);  // before its descriptor is closed, which libuv must not see reused
  close(r->ep);
  uv_idle_stop(&r->idle);
  uv_timer_stop(&r->resume);
  uv_timer_stop(&r->report);
  uv_close((uv_handle_t*)&r->report, freed_handle);
  uv_close((uv_handle_t*)&r->poll, freed_handle);
  uv_close((uv_handle_t*)&r->idle, freed_handle);
  uv_close((uv_handle_t*)&r->resume, freed_handle);
  // The handles' memory and the connection slots stay until the process ends (one relay per process).
}

static void cleanup_hook(void* arg) { teardown(arg); }

// relayOpen(callback(count)) → ArrayBuffer of MAX_RECORDS records of 8 doubles.
napi_value tcp_relay_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function)
    return fail_type(env, "relayOpen(callback) expects a function");
  if (R && !R->closing) return fail_type(env, "the TCP relay is already open in this process");
  uv_loop_t* loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return fail_type(env, "relayOpen: no event loop");
  relay* r = calloc(1, sizeof *r);
  if (!r) return fail_errno(env, "calloc", ENOMEM);
  r->env = env;
  r->buf = malloc(RELAY_BUF);
  r->ep = epoll_create1(EPOLL_CLOEXEC);
  if (!r->buf || r->ep < 0) {
    int e = r->ep < 0 ? errno : ENOMEM;
    if (r->ep >= 0) close(r->ep);
    free(r->buf);
    free(r);
    return fail_errno(env, "epoll_create1", e);
  }
  napi_value ab;
  void* data;
  napi_create_arraybuffer(env, MAX_RECORDS * REC * sizeof(double), &data, &ab);
  r->ev = data;
  napi_create_reference(env, ab, 1, &r->events_ref);
  napi_create_reference(env, argv[0], 1, &r->cb);
  napi_value recv;
  napi_create_object(env, &recv);  // napi_make_callback needs an object as the receiver
  napi_create_reference(env, recv, 1, &r->recv_ref);
  napi_value name;
  napi_create_string_utf8(env, "tvs:tcp-relay", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &r->ctx);
  uv_poll_init(loop, &r->poll, r->ep);
  uv_idle_init(loop, &r->idle);
  uv_timer_init(loop, &r->resume);
  uv_timer_init(loop, &r->report);
  r->poll.data = r->idle.data = r->resume.data = r->report.data = r;
  uv_poll_start(&r->poll, UV_READABLE, on_poll);
  uv_unref((uv_handle_t*)&r->idle);
  uv_unref((uv_handle_t*)&r->resume);
  uv_unref((uv_handle_t*)&r->report);
  uv_unref((uv_handle_t*)&r->poll);
  napi_add_env_cleanup_hook(env, cleanup_hook, r);
  R = r;
  return ab;
}

// relayListen(fd) → listener id: accept on fd (a listening TCP socket; the relay owns it now).
napi_value tcp_relay_listen(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!one_index_arg(env, info, &fd, "relayListen(fd) expects a descriptor")) return NULL;
  relay* r = need(env);
  if (!r) return NULL;
  int bad = tcp_socket(fd), on = 0;
  socklen_t l = sizeof on;
  if (!bad && getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &l) == 0 && !on) bad = EINVAL;
  if (bad) return fail_errno(env, "relayListen (a listening TCP socket)", bad);
  int lid = -1;
  for (int i = r->lfree; i < r->nlisteners; i++)
    if (r->listeners[i].fd < 0) {
      lid = i;
      break;
    }
  if (lid < 0) {
    int n = r->nlisteners ? r->nlisteners * 2 : FIRST_LISTENERS;
    listener* grown = realloc(r->listeners, (size_t)n * sizeof *grown);
    if (!grown) return fail_errno(env, "relayListen", ENOMEM);
    for (int i = r->nlisteners; i < n; i++) grown[i].fd = -1;
    lid = r->nlisteners;
    r->listeners = grown;
    r->nlisteners = n;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // inherited by every accepted socket
  struct epoll_event e = {.events = EPOLLIN, .data.u64 = tag(lid, SIDE_LISTENER)};
  if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &e) < 0) return fail_errno(env, "epoll_ctl", errno);
  r->listeners[lid].fd = fd;
  r->listeners[lid].paused = 0;
  r->lfree = lid + 1;
  return i32v(env, lid);
}

// relayUnlisten(listener id): stop accepting and close the listening socket.
napi_value tcp_relay_unlisten(napi_env env, napi_callback_info info) {
  int32_t lid;
  if (!one_index_arg(env, info, &lid, "relayUnlisten(id) expects a listener id")) return NULL;
  relay* r = need(env);
  if (!r || lid >= r->nlisteners) return NULL;
  if (r->listeners[lid].fd >= 0) close(r->listeners[lid].fd);
  r->listeners[lid].fd = -1;
  if (lid < r->lfree) r->lfree = lid;
  return NULL;
}

static int parse_target(napi_env env, napi_value a, napi_value p, struct sockaddr_storage* ss, socklen_t* sl) {
  char s[64];
  size_t n;
  int32_t port;
  if (napi_get_value_string_utf8(env, a, s, sizeof s, &n) != napi_ok || !arg_i32(env, p, &port) || port < 1 ||
      port > 65535)
    return 0;
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in* s4 = (struct sockaddr_in*)ss;
  struct sockaddr_in6* s6 = (struct sockaddr_in6*)ss;
  if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *sl = sizeof *s4;
    return 1;
  }
  char* scope = strchr(s, '%');  // fe80::1%eth0: a link-local address and its interface
  if (scope) *scope++ = 0;
  if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
    if (scope) {
      s6->sin6_scope_id = if_nametoindex(scope);
      if (!s6->sin6_scope_id) s6->sin6_scope_id = (uint32_t)strtoul(scope, NULL, 10);
      if (!s6->sin6_scope_id) return 0;
    }
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    *sl = sizeof *s6;
    return 1;
  }
  return 0;
}

// A non-blocking connect of a new real-server socket for c: 0, or an errno (nothing left open).
static int start_connect(relay* r, conn* c, const struct sockaddr_storage* ss, socklen_t sl) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (const struct sockaddr*)ss, sl) < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return e;
  }
  struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = tag(c->id, SIDE_SERVER)};
  if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
    int err = errno;
    close(fd);
    return err;
  }
  c->sfd = fd;
  return 0;
}

static conn* new_conn(relay* r) {
  conn* c = r->free_now;
  if (c) {
    r->free_now = c->next_free;
  } else {
    if (r->made >= r->cap) {
      int32_t cap = r->cap ? r->cap * 2 : FIRST_SLOTS;
      conn** grown = realloc(r->conns, (size_t)cap * sizeof *grown);
      if (!grown) return NULL;
      memset(grown + r->cap, 0, (size_t)(cap - r->cap) * sizeof *grown);
      r->conns = grown;
      r->cap = cap;
    }
    c = calloc(1, sizeof *c);  // a slot is never freed, only reused with its id
    if (!c) return NULL;
    c->id = r->made++;
    r->conns[c->id] = c;
  }
  int32_t id = c->id;
  memset(c, 0, sizeof *c);
  c->id = id;
  c->cfd = c->sfd = -1;
  r->used++;
  return c;
}

// Read an optional header argument (null/undefined: none): 1 when valid.
static int header_arg(napi_env env, napi_value v, uint8_t** hdr, size_t* hlen) {
  *hdr = NULL;
  *hlen = 0;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return 0;
  if (t == napi_null || t == napi_undefined) return 1;
  bool isbuf;
  return napi_is_buffer(env, v, &isbuf) == napi_ok && isbuf &&
         napi_get_buffer_info(env, v, (void**)hdr, hlen) == napi_ok && *hlen <= HEADER_MAX;
}

// What the real server is sent before the client's first byte (the PROXY protocol header).
static int set_header(conn* c, const uint8_t* hdr, size_t hlen) {
  free(c->d[0].pend);
  c->d[0].pend = NULL;
  c->d[0].plen = c->d[0].poff = 0;
  if (!hlen) return 0;
  c->d[0].pend = malloc(hlen);
  if (!c->d[0].pend) return ENOMEM;
  memcpy(c->d[0].pend, hdr, hlen);
  c->d[0].plen = (uint32_t)hlen;
  return 0;
}

// relayConnect(clientFd, address, port, header|null) → id, or -errno when clientFd is not a TCP
// socket or the connect could not start (the descriptor then stays the caller's). From then on
// the relay owns clientFd.
napi_value tcp_relay_connect(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t cfd;
  struct sockaddr_storage ss;
  socklen_t sl;
  if (argc < 4 || !arg_i32(env, argv[0], &cfd) || cfd < 0 || !parse_target(env, argv[1], argv[2], &ss, &sl))
    return fail_type(env, "relayConnect(fd, address, port, header) has bad arguments");
  uint8_t* hdr;
  size_t hlen;
  if (!header_arg(env, argv[3], &hdr, &hlen))
    return fail_type(env, "relayConnect: header must be a Buffer of at most 536 bytes, or null");
  relay* r = need(env);
  if (!r) return NULL;
  int bad = tcp_socket(cfd);
  if (bad) return i32v(env, -bad);
  conn* c = new_conn(r);
  if (!c) return i32v(env, -ENOMEM);
  if (set_header(c, hdr, hlen)) {
    release(r, c);
    return i32v(env, -ENOMEM);
  }
  struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = tag(c->id, SIDE_CLIENT)};
  if (epoll_ctl(r->ep, EPOLL_CTL_ADD, cfd, &e) < 0) {
    int err = errno;
    release(r, c);
    return i32v(env, -err);
  }
  int err = start_connect(r, c, &ss, sl);
  if (err) {
    struct epoll_event dummy;
    epoll_ctl(r->ep, EPOLL_CTL_DEL, cfd, &dummy);
    release(r, c);
    return i32v(env, -err);
  }
  c->cfd = cfd;
  c->state = S_CONNECTING;
  return i32v(env, c->id);
}

static conn* conn_arg(napi_env env, relay* r, napi_value v) {
  int32_t id;
  if (!arg_i32(env, v, &id) || id < 0 || id >= r->made) return NULL;
  conn* c = r->conns[id];
  return c->state == S_CONNECTING || c->state == S_RELAY ? c : NULL;
}

// relayReconnect(id, address, port, header|null) → 0, or -errno (the client is still held: abort
// it). The real-server socket of the attempt before, if still open, is closed first.
napi_value tcp_relay_reconnect(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct sockaddr_storage ss;
  socklen_t sl;
  uint8_t* hdr;
  size_t hlen;
  if (argc < 4 || !parse_target(env, argv[1], argv[2], &ss, &sl) || !header_arg(env, argv[3], &hdr, &hlen))
    return fail_type(env, "relayReconnect(id, address, port, header) has bad arguments");
  relay* r = need(env);
  if (!r) return NULL;
  conn* c = conn_arg(env, r, argv[0]);
  if (!c || c->state != S_CONNECTING) return i32v(env, -EINVAL);
  if (c->sfd >= 0) {
    close(c->sfd);
    c->sfd = -1;
  }
  c->hup[SIDE_SERVER] = 0;  // what the attempt before reported is not the new socket's
  int err = set_header(c, hdr, hlen);
  if (!err) err = start_connect(r, c, &ss, sl);
  return i32v(env, -err);
}

// relayAbort(id, reset) → [in packets, in bytes, out packets, out bytes] not yet reported, or
// undefined when id is not open. Closes both sockets (reset: RST) without a record.
napi_value tcp_relay_abort(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool reset = true;
  if (argc < 2 || napi_get_value_bool(env, argv[1], &reset) != napi_ok)
    return fail_type(env, "relayAbort(id, reset) has bad arguments");
  relay* r = need(env);
  if (!r) return NULL;
  conn* c = conn_arg(env, r, argv[0]);
  if (!c) return NULL;
  napi_value out = NULL;
  if (c->dirty) {
    napi_create_array_with_length(env, 4, &out);
    for (int k = 0; k < 4; k++) {
      napi_value v;
      napi_create_double(env, k == 0 ? c->pkts[0] : k == 1 ? c->bytes[0] : k == 2 ? c->pkts[1] : c->bytes[1], &v);
      napi_set_element(env, out, k, v);
    }
    c->dirty = 0;  // it stays on the dirty list, which skips it now
  }
  close_conn(r, c, reset);
  return out;
}

// relayReset(fd) → 0, or -errno when fd is not a TCP socket (it is then left open): close a client
// socket that was never given to relayConnect, with a RST.
napi_value tcp_relay_reset(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!one_index_arg(env, info, &fd, "relayReset(fd) expects a descriptor")) return NULL;
  int bad = tcp_socket(fd);
  if (bad) return i32v(env, -bad);
  reset_close(fd);
  return i32v(env, 0);
}

// relayLocal(id) → [address, port] of the real-server socket's local end (FULLNAT's local
// endpoint), or undefined.
napi_value tcp_relay_local(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  relay* r = need(env);
  if (!r) return NULL;
  conn* c = argc >= 1 ? conn_arg(env, r, argv[0]) : NULL;
  if (!c || c->sfd < 0) return NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(c->sfd, (struct sockaddr*)&ss, &sl) < 0) return NULL;
  char s[INET6_ADDRSTRLEN];
  int port;
  if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &((struct sockaddr_in6*)&ss)->sin6_addr, s, sizeof s);
    port = ntohs(((struct sockaddr_in6*)&ss)->sin6_port);
  } else {
    inet_ntop(AF_INET, &((struct sockaddr_in*)&ss)->sin_addr, s, sizeof s);
    port = ntohs(((struct sockaddr_in*)&ss)->sin_port);
  }
  napi_value out, a;
  napi_create_array_with_length(env, 2, &out);
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &a);
  napi_set_element(env, out, 0, a);
  napi_set_element(env, out, 1, i32v(env, port));
  return out;
}

// relayRef(on): keep the event loop alive while the plane listens (true) or not (false).
napi_value tcp_relay_ref(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool on = false;
  if (argc < 1 || napi_get_value_bool(env, argv[0], &on) != napi_ok) return fail_type(env, "relayRef(on) expects a boolean");
  relay* r = need(env);
  if (!r) return NULL;
  if (on) uv_ref((uv_handle_t*)&r->poll);
  else uv_unref((uv_handle_t*)&r->poll);
  return NULL;
}

// relayClose(): close every socket and listener of the relay; relayOpen may be called again.
napi_value tcp_relay_close(napi_env env, napi_callback_info info) {
  if (R && !R->closing) {
    napi_remove_env_cleanup_hook(env, cleanup_hook, R);
    teardown(R);
  }
  return NULL;
}
