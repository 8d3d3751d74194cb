// tvs_native: the small N-API addon behind tvs's packet data plane and the socket data plane's TCP
// pump. It only moves bytes and wraps system calls; every protocol decision lives in TypeScript
// (src/dataplane/packet, src/dataplane/proxy/native-relay.ts).
//
//   socketPacket() / bindPacket(fd, ifindex, proto)   AF_PACKET SOCK_RAW, created with protocol 0
//                                                     and bound later so nothing leaks in early
//   openRawIp(family, protocol)                       AF_INET/AF_INET6 SOCK_RAW (VRRP, IPIP)
//   openTun(name)                                     /dev/net/tun with IFF_TUN | IFF_NO_PI
//   recvBatch / sendBatch                             recvmmsg / sendmmsg into caller buffers
//   readBatch / writeBatch                            read / write loops for TUN descriptors
//   recvFrom / sendTo                                 one datagram with an address (raw IP)
//   recvMsg / bindAddr                                one datagram with TTL/hop limit and destination
//                                                     (VRRP); bind a raw socket to a local address
//   listenTcp(address, port, backlog, reusePort)     a listening TCP socket (SO_REUSEPORT per worker)
//   bindUdp(address, port, reusePort)                 a bound UDP socket (SO_REUSEPORT per worker)
//   setReuseportProgram(fd, program)                  SO_ATTACH_REUSEPORT_CBPF: a cBPF program that
//                                                     picks the socket of a SO_REUSEPORT group
//   setsockopt / getsockopt                           integer or byte-buffer passthrough
//   setFanoutProgram(fd, program)                     PACKET_FANOUT_DATA: a cBPF program for the group
//   ifInfo(name)                                      index, MAC, MTU, flags of an interface
//   poll(fd, events, cb) / pollStop(id)               uv_poll on the calling thread's loop
//   probeOpen / probeConnect / probeCollect           batched TCP connect probes (tcp_probe.c)
//   relayOpen / relayListen / relayConnect / ...      the socket plane's TCP byte pump (tcp_relay.c)
//   close(fd), constants
//
// Every descriptor is non-blocking and close-on-exec. Batched calls never allocate per packet:
// the iovecs and message headers live on the C stack, the frames in the caller's Buffer.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "tcp_probe.h"
#include "tcp_relay.h"

#define MAX_BATCH 64

// ---------------------------------------------------------------------------------------------
// Error and argument helpers

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s failed: %s", what, strerror(err));
  napi_value m, code, e, en;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, uv_err_name(-err), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, m, &e);
  napi_create_int32(env, err, &en);
  napi_set_named_property(env, e, "errno", en);
  napi_value sc;
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, e, "syscall", sc);
  napi_throw(env, e);
  return NULL;
}

static napi_value throw_type(napi_env env, const char* msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static int get_i32(napi_env env, napi_value v, int32_t* out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static napi_value mk_i32(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

/** Bytes of a Buffer / typed array / ArrayBuffer argument. */
static int get_bytes(napi_env env, napi_value v, uint8_t** data, size_t* len) {
  bool is;
  if (napi_is_buffer(env, v, &is) == napi_ok && is) {
    return napi_get_buffer_info(env, v, (void**)data, len) == napi_ok;
  }
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type t;
    size_t n, off;
    napi_value ab;
    void* p;
    if (napi_get_typedarray_info(env, v, &t, &n, &p, &ab, &off) != napi_ok) return 0;
    size_t el = (t == napi_int32_array || t == napi_uint32_array || t == napi_float32_array) ? 4
                : (t == napi_int16_array || t == napi_uint16_array)                           ? 2
                : (t == napi_float64_array || t == napi_bigint64_array || t == napi_biguint64_array) ? 8
                                                                                                     : 1;
    *data = p;
    *len = n * el;
    return 1;
  }
  return 0;
}

/** An Int32Array argument. */
static int get_i32_array(napi_env env, napi_value v, int32_t** data, size_t* count) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type t;
  size_t n, off;
  napi_value ab;
  void* p;
  if (napi_get_typedarray_info(env, v, &t, &n, &p, &ab, &off) != napi_ok) return 0;
  if (t != napi_int32_array) return 0;
  *data = p;
  *count = n;
  return 1;
}

#define ARGS(n)                                                         \
  size_t argc = n;                                                      \
  napi_value argv[n];                                                   \
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) \
    return NULL;

// ---------------------------------------------------------------------------------------------
// Sockets and devices

// socketPacket(): an AF_PACKET raw socket that receives nothing until bindPacket().
static napi_value socket_packet(napi_env env, napi_callback_info info) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_PACKET)", errno);
  return mk_i32(env, fd);
}

// bindPacket(fd, ifindex, ethertype): bind to one interface and start receiving that protocol.
static napi_value bind_packet(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd, ifindex, proto;
  if (argc < 3 || !get_i32(env, argv[0], &fd) || !get_i32(env, argv[1], &ifindex) || !get_i32(env, argv[2], &proto))
    return throw_type(env, "bindPacket(fd, ifindex, ethertype) expects three integers");
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons((uint16_t)proto);
  sll.sll_ifindex = ifindex;
  if (bind(fd, (struct sockaddr*)&sll, sizeof sll) < 0) return throw_errno(env, "bind(AF_PACKET)", errno);
  return NULL;
}

// openRawIp(family, protocol): a raw IPv4/IPv6 socket for one IP protocol.
static napi_value open_raw_ip(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t family, proto;
  if (argc < 2 || !get_i32(env, argv[0], &family) || !get_i32(env, argv[1], &proto) || (family != 4 && family != 6))
    return throw_type(env, "openRawIp(family 4|6, protocol) expects two integers");
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0) return throw_errno(env, "socket(SOCK_RAW)", errno);
  return mk_i32(env, fd);
}

// openTun(name): a TUN device (IFF_TUN | IFF_NO_PI); returns [fd, actual name].
static napi_value open_tun(napi_env env, napi_callback_info info) {
  ARGS(1);
  char name[IFNAMSIZ];
  size_t n = 0;
  memset(name, 0, sizeof name);
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n) != napi_ok)
    return throw_type(env, "openTun(name) expects a string");
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, "open(/dev/net/tun)", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, n < IFNAMSIZ - 1 ? n : IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "ioctl(TUNSETIFF)", e);
  }
  napi_value arr, s;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, mk_i32(env, fd));
  napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &s);
  napi_set_element(env, arr, 1, s);
  return arr;
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (argc < 1 || !get_i32(env, argv[0], &fd)) return throw_type(env, "close(fd) expects an integer");
  if (close(fd) < 0) return throw_errno(env, "close", errno);
  return NULL;
}

// ---------------------------------------------------------------------------------------------
// Batched receive and send

/*
 * recvBatch(fd, buf, slotSize, headroom, count, meta) → frames received (0 when none waiting)
 *
 * Frame i lands at buf[i*slotSize + headroom], at most slotSize - headroom bytes. meta is an
 * Int32Array with 4 entries per frame: [length, pkttype, auxdata tp_status, auxdata vlan tci].
 * length is the frame's real length (MSG_TRUNC), so a value above the capacity means truncated.
 * pkttype is -1 for non-packet sockets; status/vlan are 0 unless PACKET_AUXDATA is on.
 */
static napi_value recv_batch(napi_env env, napi_callback_info info) {
  ARGS(6);
  int32_t fd, slot, head, count;
  uint8_t* buf;
  size_t blen, mcount;
  int32_t* meta;
  if (argc < 6 || !get_i32(env, argv[0], &fd) || !get_bytes(env, argv[1], &buf, &blen) ||
      !get_i32(env, argv[2], &slot) || !get_i32(env, argv[3], &head) || !get_i32(env, argv[4], &count) ||
      !get_i32_array(env, argv[5], &meta, &mcount))
    return throw_type(env, "recvBatch(fd, buf, slotSize, headroom, count, meta: Int32Array) has bad arguments");
  if (count > MAX_BATCH) count = MAX_BATCH;
  if (slot <= head || head < 0 || count < 0 || (size_t)slot * (size_t)count > blen || mcount < (size_t)count * 4)
    return throw_type(env, "recvBatch: buffer or meta too small for count slots");
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_storage names[MAX_BATCH];
  union {
    char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
    struct cmsghdr align;
  } ctl[MAX_BATCH];
  for (int i = 0; i < count; i++) {
    iov[i].iov_base = buf + (size_t)i * slot + head;
    iov[i].iov_len = (size_t)(slot - head);
    memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &names[i];
    msgs[i].msg_hdr.msg_namelen = sizeof names[i];
    msgs[i].msg_hdr.msg_control = ctl[i].buf;
    msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
  }
  int n = recvmmsg(fd, msgs, (unsigned)count, MSG_DONTWAIT | MSG_TRUNC, NULL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return mk_i32(env, 0);
    return throw_errno(env, "recvmmsg", errno);
  }
  for (int i = 0; i < n; i++) {
    int32_t* m = meta + i * 4;
    m[0] = (int32_t)msgs[i].msg_len;
    struct sockaddr_ll* sll = (struct sockaddr_ll*)&names[i];
    m[1] = sll->sll_family == AF_PACKET ? sll->sll_pkttype : -1;
    m[2] = 0;
    m[3] = 0;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
      if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA &&
          c->cmsg_len >= CMSG_LEN(sizeof(struct tpacket_auxdata))) {
        struct tpacket_auxdata aux;
        memcpy(&aux, CMSG_DATA(c), sizeof aux);
        m[2] = (int32_t)aux.tp_status;
        m[3] = (int32_t)aux.tp_vlan_tci;
      }
    }
  }
  return mk_i32(env, n);
}

/*
 * sendBatch(fd, buf, desc, count) → frames sent, or -errno when the first frame failed.
 * desc is an Int32Array of [offset, length] pairs into buf. EAGAIN with nothing sent → 0.
 * The caller skips a frame that fails (e.g. EMSGSIZE) and sends the rest.
 */
static napi_value send_batch(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t fd, count;
  uint8_t* buf;
  size_t blen, dcount;
  int32_t* desc;
  if (argc < 4 || !get_i32(env, argv[0], &fd) || !get_bytes(env, argv[1], &buf, &blen) ||
      !get_i32_array(env, argv[2], &desc, &dcount) || !get_i32(env, argv[3], &count))
    return throw_type(env, "sendBatch(fd, buf, desc: Int32Array, count) has bad arguments");
  if (count > MAX_BATCH) count = MAX_BATCH;
  if (count < 0 || dcount < (size_t)count * 2) return throw_type(env, "sendBatch: desc too small for count");
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  for (int i = 0; i < count; i++) {
    int32_t off = desc[i * 2], len = desc[i * 2 + 1];
    if (off < 0 || len < 0 || (size_t)off + (size_t)len > blen) return throw_type(env, "sendBatch: frame outside buffer");
    iov[i].iov_base = buf + off;
    iov[i].iov_len = (size_t)len;
    memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  if (count == 0) return mk_i32(env, 0);
  int n = sendmmsg(fd, msgs, (unsigned)count, MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return mk_i32(env, 0);
    return mk_i32(env, -errno);
  }
  return mk_i32(env, n);
}

// readBatch(fd, buf, slotSize, headroom, count, meta): read() loop for TUN; meta as recvBatch.
static napi_value read_batch(napi_env env, napi_callback_info info) {
  ARGS(6);
  int32_t fd, slot, head, count;
  uint8_t* buf;
  size_t blen, mcount;
  int32_t* meta;
  if (argc < 6 || !get_i32(env, argv[0], &fd) || !get_bytes(env, argv[1], &buf, &blen) ||
      !get_i32(env, argv[2], &slot) || !get_i32(env, argv[3], &head) || !get_i32(env, argv[4], &count) ||
      !get_i32_array(env, argv[5], &meta, &mcount))
    return throw_type(env, "readBatch(fd, buf, slotSize, headroom, count, meta: Int32Array) has bad arguments");
  if (count > MAX_BATCH) count = MAX_BATCH;
  if (slot <= head || head < 0 || count < 0 || (size_t)slot * (size_t)count > blen || mcount < (size_t)count * 4)
    return throw_type(env, "readBatch: buffer or meta too small for count slots");
  int i = 0;
  for (; i < count; i++) {
    ssize_t r = read(fd, buf + (size_t)i * slot + head, (size_t)(slot - head));
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
      if (i > 0) break;
      return throw_errno(env, "read", errno);
    }
    meta[i * 4] = (int32_t)r;
    meta[i * 4 + 1] = -1;
    meta[i * 4 + 2] = 0;
    meta[i * 4 + 3] = 0;
  }
  return mk_i32(env, i);
}

// writeBatch(fd, buf, desc, count): write() loop for TUN; returns as sendBatch.
static napi_value write_batch(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t fd, count;
  uint8_t* buf;
  size_t blen, dcount;
  int32_t* desc;
  if (argc < 4 || !get_i32(env, argv[0], &fd) || !get_bytes(env, argv[1], &buf, &blen) ||
      !get_i32_array(env, argv[2], &desc, &dcount) || !get_i32(env, argv[3], &count))
    return throw_type(env, "writeBatch(fd, buf, desc: Int32Array, count) has bad arguments");
  if (count < 0 || dcount < (size_t)count * 2) return throw_type(env, "writeBatch: desc too small for count");
  int i = 0;
  for (; i < count; i++) {
    int32_t off = desc[i * 2], len = desc[i * 2 + 1];
    if (off < 0 || len < 0 || (size_t)off + (size_t)len > blen) return throw_type(env, "writeBatch: frame outside buffer");
    ssize_t r = write(fd, buf + off, (size_t)len);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
      if (i == 0) return mk_i32(env, -errno);
      break;
    }
  }
  return mk_i32(env, i);
}

static int parse_addr(napi_env env, napi_value v, struct sockaddr_storage* ss, socklen_t* len) {
  char text[64];
  size_t n;
  if (napi_get_value_string_utf8(env, v, text, sizeof text, &n) != napi_ok) return 0;
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in* a4 = (struct sockaddr_in*)ss;
  struct sockaddr_in6* a6 = (struct sockaddr_in6*)ss;
  if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    *len = sizeof *a4;
    return 1;
  }
  if (inet_pton(AF_INET6, text, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    *len = sizeof *a6;
    return 1;
  }
  return 0;
}

// sendTo(fd, buf, offset, length, address) → bytes sent (0 on EAGAIN). For raw IP sockets.
static napi_value send_to(napi_env env, napi_callback_info info) {
  ARGS(5);
  int32_t fd, off, len;
  uint8_t* buf;
  size_t blen;
  struct sockaddr_storage ss;
  socklen_t sl;
  if (argc < 5 || !get_i32(env, argv[0], &fd) || !get_bytes(env, argv[1], &buf, &blen) || !get_i32(env, argv[2], &off) ||
      !get_i32(env, argv[3], &len) || off < 0 || len < 0 || (size_t)off + (size_t)len > blen)
    return throw_type(env, "sendTo(fd, buf, offset, length, address) has bad arguments");
  if (!parse_addr(env, argv[4], &ss, &sl)) return throw_type(env, "sendTo: address is not an IPv4 or IPv6 address");
  ssize_t r = sendto(fd, buf + off, (size_t)len, MSG_DONTWAIT, (struct sockaddr*)&ss, sl);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return mk_i32(env, 0);
    return throw_errno(env, "sendto", errno);
  }
  return mk_i32(env, (int32_t)r);
}

// recvFrom(fd, buf) → [length, source address] or null when nothing is waiting.
static napi_value recv_from(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  uint8_t* buf;
  size_t blen;
  if (argc < 2 || !get_i32(env, argv[0], &fd) || !get_bytes(env, argv[1], &buf, &blen))
    return throw_type(env, "recvFrom(fd, buf) has bad arguments");
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  ssize_t r = recvfrom(fd, buf, blen, MSG_DONTWAIT, (struct sockaddr*)&ss, &sl);
  if (r < 0) {
    napi_value nul;
    napi_get_null(env, &nul);
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return nul;
    return throw_errno(env, "recvfrom", errno);
  }
  char text[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in*)&ss)->sin_addr, text, sizeof text);
  if (ss.ss_family == AF_INET6) inet_ntop(AF_INET6, &((struct sockaddr_in6*)&ss)->sin6_addr, text, sizeof text);
  napi_value arr, s;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, mk_i32(env, (int32_t)r));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &s);
  napi_set_element(env, arr, 1, s);
  return arr;
}

// recvMsg(fd, buf) → [length, source, ttl or hop limit (-1 unknown), destination ("" unknown), ifindex]
// or null when nothing is waiting. IPv6 raw sockets give no header: the hop limit and destination
// come from IPV6_RECVHOPLIMIT / IPV6_RECVPKTINFO ancillary data (enable them with setsockopt).
// IPv4 raw sockets include the header; IP_PKTINFO gives the receiving interface.
static napi_value recv_msg(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  uint8_t* buf;
  size_t blen;
  if (argc < 2 || !get_i32(env, argv[0], &fd) || !get_bytes(env, argv[1], &buf, &blen))
    return throw_type(env, "recvMsg(fd, buf) has bad arguments");
  struct sockaddr_storage ss;
  struct iovec iov = {buf, blen};
  union {
    char b[256];
    struct cmsghdr align;
  } ctrl;
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_name = &ss;
  mh.msg_namelen = sizeof ss;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctrl.b;
  mh.msg_controllen = sizeof ctrl.b;
  ssize_t r = recvmsg(fd, &mh, MSG_DONTWAIT);
  if (r < 0) {
    napi_value nul;
    napi_get_null(env, &nul);
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return nul;
    return throw_errno(env, "recvmsg", errno);
  }
  int32_t hops = -1, ifindex = 0;
  char src[INET6_ADDRSTRLEN] = "", dst[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in*)&ss)->sin_addr, src, sizeof src);
  if (ss.ss_family == AF_INET6) inet_ntop(AF_INET6, &((struct sockaddr_in6*)&ss)->sin6_addr, src, sizeof src);
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT) {
      int v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      hops = v;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      inet_ntop(AF_INET6, &pi.ipi6_addr, dst, sizeof dst);
      ifindex = (int32_t)pi.ipi6_ifindex;
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      struct in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      inet_ntop(AF_INET, &pi.ipi_addr, dst, sizeof dst);
      ifindex = pi.ipi_ifindex;
    }
  }
  napi_value arr, s, d;
  napi_create_array_with_length(env, 5, &arr);
  napi_set_element(env, arr, 0, mk_i32(env, (int32_t)r));
  napi_create_string_utf8(env, src, NAPI_AUTO_LENGTH, &s);
  napi_set_element(env, arr, 1, s);
  napi_set_element(env, arr, 2, mk_i32(env, hops));
  napi_create_string_utf8(env, dst, NAPI_AUTO_LENGTH, &d);
  napi_set_element(env, arr, 3, d);
  napi_set_element(env, arr, 4, mk_i32(env, ifindex));
  return arr;
}

// bindAddr(fd, address, scopeId): bind a raw socket to a local address (an IPv6 link-local one
// needs the interface index as scope).
static napi_value bind_addr(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd, scope = 0;
  struct sockaddr_storage ss;
  socklen_t sl;
  if (argc < 2 || !get_i32(env, argv[0], &fd)) return throw_type(env, "bindAddr(fd, address, scopeId) has bad arguments");
  if (!parse_addr(env, argv[1], &ss, &sl)) return throw_type(env, "bindAddr: address is not an IPv4 or IPv6 address");
  if (argc >= 3) get_i32(env, argv[2], &scope);
  if (ss.ss_family == AF_INET6) ((struct sockaddr_in6*)&ss)->sin6_scope_id = (uint32_t)scope;
  if (bind(fd, (struct sockaddr*)&ss, sl) < 0) return throw_errno(env, "bind", errno);
  return NULL;
}

// Set an on/off socket option to 1: NULL when done, else `name` (the call that failed, for the
// error message; errno is left as setsockopt set it).
static const char* set_flag(int fd, int level, int option, const char* name) {
  int one = 1;
  return setsockopt(fd, level, option, &one, sizeof one) < 0 ? name : NULL;
}

// listenTcp(address, port, backlog, reusePort) → fd: a TCP socket bound to address:port and
// listening, with SO_REUSEADDR and, when reusePort, SO_REUSEPORT, so each tvsd worker can own one
// listening socket on the same VIP and the kernel spreads new connections among them by hash (the
// socket data plane hands the fd to net.Server.listen({ fd })). IPv6 sockets are IPV6_V6ONLY.
static napi_value listen_tcp(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t port, backlog;
  bool reuse = false;
  struct sockaddr_storage ss;
  socklen_t sl;
  if (argc < 4 || !parse_addr(env, argv[0], &ss, &sl) || !get_i32(env, argv[1], &port) || port < 0 ||
      port > 65535 || !get_i32(env, argv[2], &backlog) || napi_get_value_bool(env, argv[3], &reuse) != napi_ok)
    return throw_type(env, "listenTcp(address, port, backlog, reusePort) has bad arguments");
  if (ss.ss_family == AF_INET) ((struct sockaddr_in*)&ss)->sin_port = htons((uint16_t)port);
  else ((struct sockaddr_in6*)&ss)->sin6_port = htons((uint16_t)port);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(SOCK_STREAM)", errno);
  const char* failed = set_flag(fd, SOL_SOCKET, SO_REUSEADDR, "setsockopt(SO_REUSEADDR)");
  if (!failed && reuse) failed = set_flag(fd, SOL_SOCKET, SO_REUSEPORT, "setsockopt(SO_REUSEPORT)");
  if (!failed && ss.ss_family == AF_INET6) failed = set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY, "setsockopt(IPV6_V6ONLY)");
  if (failed) {
    int e = errno;
    close(fd);
    return throw_errno(env, failed, e);
  }
  if (bind(fd, (struct sockaddr*)&ss, sl) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind", e);
  }
  if (listen(fd, backlog) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "listen", e);
  }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

// bindUdp(address, port, reusePort) → fd: a UDP socket bound to address:port with, when
// reusePort, SO_REUSEPORT, so every tvsd worker can receive on the same VIP (the kernel
// hashes each datagram's addresses and ports onto one socket of the group, so one flow always
// reaches one worker). IPv6 sockets are IPV6_V6ONLY. dgram takes the fd with bind({ fd }).
static napi_value bind_udp(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t port;
  bool reuse = false;
  struct sockaddr_storage ss;
  socklen_t sl;
  if (argc < 3 || !parse_addr(env, argv[0], &ss, &sl) || !get_i32(env, argv[1], &port) || port < 0 ||
      port > 65535 || napi_get_value_bool(env, argv[2], &reuse) != napi_ok)
    return throw_type(env, "bindUdp(address, port, reusePort) has bad arguments");
  if (ss.ss_family == AF_INET) ((struct sockaddr_in*)&ss)->sin_port = htons((uint16_t)port);
  else ((struct sockaddr_in6*)&ss)->sin6_port = htons((uint16_t)port);
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(SOCK_DGRAM)", errno);
  // No SO_REUSEADDR: on UDP it would let any other such socket share the port silently.
  const char* failed = NULL;
  if (reuse) failed = set_flag(fd, SOL_SOCKET, SO_REUSEPORT, "setsockopt(SO_REUSEPORT)");
  if (!failed && ss.ss_family == AF_INET6) failed = set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY, "setsockopt(IPV6_V6ONLY)");
  if (failed) {
    int e = errno;
    close(fd);
    return throw_errno(env, failed, e);
  }
  if (bind(fd, (struct sockaddr*)&ss, sl) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind", e);
  }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

// setReuseportProgram(fd, program): SO_ATTACH_REUSEPORT_CBPF with a classic BPF program (struct
// sock_filter array, 8 bytes per instruction) for the SO_REUSEPORT group fd belongs to: its
// return value is the index of the socket that gets the packet (an index past the group falls
// back to the kernel's hash). Detaching is setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, 0).
static napi_value set_reuseport_program(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  uint8_t* data;
  size_t len;
  if (argc < 2 || !get_i32(env, argv[0], &fd) || !get_bytes(env, argv[1], &data, &len) || len == 0 ||
      len % sizeof(struct sock_filter) != 0 || len / sizeof(struct sock_filter) > 0xffff)
    return throw_type(env, "setReuseportProgram(fd, program) expects an integer and a non-empty Buffer of 8-byte instructions");
  struct sock_fprog prog = {(unsigned short)(len / sizeof(struct sock_filter)), (struct sock_filter*)data};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0)
    return throw_errno(env, "setsockopt(SO_ATTACH_REUSEPORT_CBPF)", errno);
  return NULL;
}

// ---------------------------------------------------------------------------------------------
// Socket options and interfaces

// setsockopt(fd, level, name, value: integer | Buffer)
static napi_value set_sockopt(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t fd, level, name, iv;
  if (argc < 4 || !get_i32(env, argv[0], &fd) || !get_i32(env, argv[1], &level) || !get_i32(env, argv[2], &name))
    return throw_type(env, "setsockopt(fd, level, name, value) has bad arguments");
  int r;
  uint8_t* data;
  size_t len;
  if (get_i32(env, argv[3], &iv)) {
    int v = iv;
    r = setsockopt(fd, level, name, &v, sizeof v);
  } else if (get_bytes(env, argv[3], &data, &len)) {
    r = setsockopt(fd, level, name, data, (socklen_t)len);
  } else {
    return throw_type(env, "setsockopt: value must be an integer or a Buffer");
  }
  if (r < 0) {
    char what[64];
    snprintf(what, sizeof what, "setsockopt(%d, %d)", level, name);
    return throw_errno(env, what, errno);
  }
  return NULL;
}

// setFanoutProgram(fd, program): PACKET_FANOUT_DATA with a classic BPF program (struct sock_filter
// array, 8 bytes per instruction) that picks the member of a PACKET_FANOUT_CBPF group.
static napi_value set_fanout_program(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  uint8_t* data;
  size_t len;
  if (argc < 2 || !get_i32(env, argv[0], &fd) || !get_bytes(env, argv[1], &data, &len) || len == 0 ||
      len % sizeof(struct sock_filter) != 0 || len / sizeof(struct sock_filter) > 0xffff)
    return throw_type(env, "setFanoutProgram(fd, program) expects an integer and a non-empty Buffer of 8-byte instructions");
  struct sock_fprog prog = {(unsigned short)(len / sizeof(struct sock_filter)), (struct sock_filter*)data};
  if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT_DATA, &prog, sizeof prog) < 0)
    return throw_errno(env, "setsockopt(PACKET_FANOUT_DATA)", errno);
  return NULL;
}

// getsockopt(fd, level, name[, size]) → integer, or a Buffer of up to size bytes.
static napi_value get_sockopt(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t fd, level, name, size = 0;
  if (argc < 3 || !get_i32(env, argv[0], &fd) || !get_i32(env, argv[1], &level) || !get_i32(env, argv[2], &name))
    return throw_type(env, "getsockopt(fd, level, name[, size]) has bad arguments");
  if (argc >= 4) get_i32(env, argv[3], &size);
  if (size <= 0) {
    int v = 0;
    socklen_t l = sizeof v;
    if (getsockopt(fd, level, name, &v, &l) < 0) return throw_errno(env, "getsockopt", errno);
    return mk_i32(env, v);
  }
  if (size > 65536) size = 65536;
  uint8_t tmp[size];
  socklen_t l = (socklen_t)size;
  if (getsockopt(fd, level, name, tmp, &l) < 0) return throw_errno(env, "getsockopt", errno);
  napi_value out;
  void* copy;
  napi_create_buffer_copy(env, l, tmp, &copy, &out);
  return out;
}

// ifInfo(name) → { index, mac: Buffer, mtu, flags }
static napi_value if_info(napi_env env, napi_callback_info info) {
  ARGS(1);
  char name[IFNAMSIZ];
  size_t n = 0;
  memset(name, 0, sizeof name);
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n) != napi_ok || n == 0)
    return throw_type(env, "ifInfo(name) expects an interface name");
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return throw_errno(env, "socket(AF_INET)", errno);
  struct ifreq ifr;
  int32_t index, mtu, flags;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, n);
  if (ioctl(s, SIOCGIFINDEX, &ifr) < 0) {
    int e = errno;
    close(s);
    char what[64];
    snprintf(what, sizeof what, "ioctl(SIOCGIFINDEX, \"%s\")", name);
    return throw_errno(env, what, e);
  }
  index = ifr.ifr_ifindex;
  uint8_t mac[6] = {0};
  if (ioctl(s, SIOCGIFHWADDR, &ifr) == 0) memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  mtu = ioctl(s, SIOCGIFMTU, &ifr) == 0 ? ifr.ifr_mtu : 0;
  flags = ioctl(s, SIOCGIFFLAGS, &ifr) == 0 ? ifr.ifr_flags : 0;
  close(s);
  napi_value o, m;
  void* copy;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "index", mk_i32(env, index));
  napi_create_buffer_copy(env, 6, mac, &copy, &m);
  napi_set_named_property(env, o, "mac", m);
  napi_set_named_property(env, o, "mtu", mk_i32(env, mtu));
  napi_set_named_property(env, o, "flags", mk_i32(env, flags));
  return o;
}

// ---------------------------------------------------------------------------------------------
// Readiness: uv_poll on the loop of the thread that asked (main thread or a worker)

typedef struct poller {
  uv_poll_t handle;
  napi_env env;
  napi_ref cb;
  napi_async_context ctx;
  int32_t id;
  int closing;
  struct poller* next;
} poller;

typedef struct {
  poller* head;
  int32_t next_id;
} env_state;

static void on_closed(uv_handle_t* h) { free(h->data); }

static void poller_release(poller* p) {
  if (p->closing) return;
  p->closing = 1;
  uv_poll_stop(&p->handle);
  if (p->cb) napi_delete_reference(p->env, p->cb);
  p->cb = NULL;
  if (p->ctx) napi_async_destroy(p->env, p->ctx);
  p->ctx = NULL;
  p->handle.data = p;
  uv_close((uv_handle_t*)&p->handle, on_closed);
}

static void unlink_poller(env_state* st, poller* p) {
  for (poller** pp = &st->head; *pp; pp = &(*pp)->next) {
    if (*pp == p) {
      *pp = p->next;
      return;
    }
  }
}

static void on_poll(uv_poll_t* h, int status, int events) {
  poller* p = h->data;
  if (p->closing || !p->cb) return;
  napi_env env = p->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, args[2];
  napi_get_reference_value(env, p->cb, &cb);
  napi_create_object(env, &recv);  // napi_make_callback needs an object as the receiver
  args[0] = mk_i32(env, status);
  args[1] = mk_i32(env, events);
  napi_value result;
  napi_status s = napi_make_callback(env, p->ctx, recv, cb, 2, args, &result);
  if (s == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

// poll(fd, events (1 readable, 2 writable), callback(status, events)) → id
static napi_value poll_start(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd, events;
  napi_valuetype t;
  if (argc < 3 || !get_i32(env, argv[0], &fd) || !get_i32(env, argv[1], &events) ||
      napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function)
    return throw_type(env, "poll(fd, events, callback) has bad arguments");
  env_state* st;
  napi_get_instance_data(env, (void**)&st);
  uv_loop_t* loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_type(env, "poll: no event loop");
  poller* p = calloc(1, sizeof *p);
  if (!p) return throw_errno(env, "calloc", ENOMEM);
  p->env = env;
  int r = uv_poll_init(loop, &p->handle, fd);
  if (r < 0) {
    free(p);
    return throw_errno(env, "uv_poll_init", -r);
  }
  p->handle.data = p;
  napi_create_reference(env, argv[2], 1, &p->cb);
  napi_value name;
  napi_create_string_utf8(env, "tvs:poll", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &p->ctx);
  r = uv_poll_start(&p->handle, events & (UV_READABLE | UV_WRITABLE), on_poll);
  if (r < 0) {
    poller_release(p);
    return throw_errno(env, "uv_poll_start", -r);
  }
  p->id = ++st->next_id;
  p->next = st->head;
  st->head = p;
  return mk_i32(env, p->id);
}

// pollStop(id): stop watching; safe to call twice.
static napi_value poll_stop(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t id;
  if (argc < 1 || !get_i32(env, argv[0], &id)) return throw_type(env, "pollStop(id) expects an integer");
  env_state* st;
  napi_get_instance_data(env, (void**)&st);
  for (poller* p = st->head; p; p = p->next) {
    if (p->id == id) {
      unlink_poller(st, p);
      poller_release(p);
      break;
    }
  }
  return NULL;
}

// Worker or process teardown: close whatever is still being watched.
static void env_cleanup(void* arg) {
  env_state* st = arg;
  while (st->head) {
    poller* p = st->head;
    st->head = p->next;
    if (!p->closing) {
      p->closing = 1;
      uv_poll_stop(&p->handle);
      uv_close((uv_handle_t*)&p->handle, on_closed);
    }
  }
}

static void env_finalize(napi_env env, void* data, void* hint) { free(data); }

// ---------------------------------------------------------------------------------------------
// Module

static void set_const(napi_env env, napi_value o, const char* name, int32_t v) {
  napi_set_named_property(env, o, name, mk_i32(env, v));
}

NAPI_MODULE_INIT() {
  env_state* st = calloc(1, sizeof *st);
  napi_set_instance_data(env, st, env_finalize, NULL);
  napi_add_env_cleanup_hook(env, env_cleanup, st);
  napi_property_descriptor fns[] = {
      {"socketPacket", NULL, socket_packet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bindPacket", NULL, bind_packet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openRawIp", NULL, open_raw_ip, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openTun", NULL, open_tun, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvBatch", NULL, recv_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendBatch", NULL, send_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readBatch", NULL, read_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeBatch", NULL, write_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendTo", NULL, send_to, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvFrom", NULL, recv_from, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvMsg", NULL, recv_msg, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bindAddr", NULL, bind_addr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenTcp", NULL, listen_tcp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bindUdp", NULL, bind_udp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setReuseportProgram", NULL, set_reuseport_program, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setsockopt", NULL, set_sockopt, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getsockopt", NULL, get_sockopt, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setFanoutProgram", NULL, set_fanout_program, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ifInfo", NULL, if_info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"poll", NULL, poll_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pollStop", NULL, poll_stop, NULL, NULL, NULL, napi_enumerable, NULL},
      {"probeOpen", NULL, tcp_probe_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"probeConnect", NULL, tcp_probe_connect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"probeCollect", NULL, tcp_probe_collect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayOpen", NULL, tcp_relay_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayListen", NULL, tcp_relay_listen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayUnlisten", NULL, tcp_relay_unlisten, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayConnect", NULL, tcp_relay_connect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayReconnect", NULL, tcp_relay_reconnect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayAbort", NULL, tcp_relay_abort, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayReset", NULL, tcp_relay_reset, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayLocal", NULL, tcp_relay_local, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayRef", NULL, tcp_relay_ref, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayClose", NULL, tcp_relay_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  napi_value c;
  napi_create_object(env, &c);
  set_const(env, c, "MAX_BATCH", MAX_BATCH);
  set_const(env, c, "ETH_P_ALL", ETH_P_ALL);
  set_const(env, c, "ETH_P_ARP", ETH_P_ARP);
  set_const(env, c, "ETH_P_IP", ETH_P_IP);
  set_const(env, c, "SOL_SOCKET", SOL_SOCKET);
  set_const(env, c, "SOL_PACKET", SOL_PACKET);
  set_const(env, c, "SOL_IP", SOL_IP);
  set_const(env, c, "SOL_IPV6", SOL_IPV6);
  set_const(env, c, "SO_RCVBUF", SO_RCVBUF);
  set_const(env, c, "SO_SNDBUF", SO_SNDBUF);
  set_const(env, c, "SO_RCVBUFFORCE", SO_RCVBUFFORCE);
  set_const(env, c, "SO_SNDBUFFORCE", SO_SNDBUFFORCE);
  set_const(env, c, "SO_BINDTODEVICE", SO_BINDTODEVICE);
  set_const(env, c, "PACKET_ADD_MEMBERSHIP", PACKET_ADD_MEMBERSHIP);
  set_const(env, c, "PACKET_DROP_MEMBERSHIP", PACKET_DROP_MEMBERSHIP);
  set_const(env, c, "PACKET_MR_MULTICAST", PACKET_MR_MULTICAST);
  set_const(env, c, "PACKET_MR_PROMISC", PACKET_MR_PROMISC);
  set_const(env, c, "PACKET_AUXDATA", PACKET_AUXDATA);
  set_const(env, c, "PACKET_VNET_HDR", PACKET_VNET_HDR);
  set_const(env, c, "PACKET_FANOUT", PACKET_FANOUT);
  set_const(env, c, "PACKET_FANOUT_HASH", PACKET_FANOUT_HASH);
  set_const(env, c, "PACKET_FANOUT_CBPF", PACKET_FANOUT_CBPF);
  set_const(env, c, "PACKET_FANOUT_DATA", PACKET_FANOUT_DATA);
  set_const(env, c, "PACKET_FANOUT_FLAG_DEFRAG", PACKET_FANOUT_FLAG_DEFRAG);
  set_const(env, c, "PACKET_IGNORE_OUTGOING", PACKET_IGNORE_OUTGOING);
  set_const(env, c, "PACKET_STATISTICS", PACKET_STATISTICS);
  set_const(env, c, "PACKET_HOST", PACKET_HOST);
  set_const(env, c, "PACKET_BROADCAST", PACKET_BROADCAST);
  set_const(env, c, "PACKET_MULTICAST", PACKET_MULTICAST);
  set_const(env, c, "PACKET_OTHERHOST", PACKET_OTHERHOST);
  set_const(env, c, "PACKET_OUTGOING", PACKET_OUTGOING);
  set_const(env, c, "TP_STATUS_CSUMNOTREADY", TP_STATUS_CSUMNOTREADY);
  set_const(env, c, "TP_STATUS_CSUM_VALID", TP_STATUS_CSUM_VALID);
  set_const(env, c, "TP_STATUS_VLAN_VALID", TP_STATUS_VLAN_VALID);
  set_const(env, c, "IP_TOS", IP_TOS);
  set_const(env, c, "IP_TTL", IP_TTL);
  set_const(env, c, "IP_HDRINCL", IP_HDRINCL);
  set_const(env, c, "IP_MULTICAST_IF", IP_MULTICAST_IF);
  set_const(env, c, "IP_MULTICAST_TTL", IP_MULTICAST_TTL);
  set_const(env, c, "IP_MULTICAST_LOOP", IP_MULTICAST_LOOP);
  set_const(env, c, "IP_ADD_MEMBERSHIP", IP_ADD_MEMBERSHIP);
  set_const(env, c, "IP_DROP_MEMBERSHIP", IP_DROP_MEMBERSHIP);
  set_const(env, c, "IPV6_MULTICAST_IF", IPV6_MULTICAST_IF);
  set_const(env, c, "IPV6_MULTICAST_HOPS", IPV6_MULTICAST_HOPS);
  set_const(env, c, "IPV6_MULTICAST_LOOP", IPV6_MULTICAST_LOOP);
  set_const(env, c, "IPV6_UNICAST_HOPS", IPV6_UNICAST_HOPS);
  set_const(env, c, "IPV6_ADD_MEMBERSHIP", IPV6_ADD_MEMBERSHIP);
  set_const(env, c, "IFF_UP", IFF_UP);
  set_const(env, c, "IFF_RUNNING", IFF_RUNNING);
  set_const(env, c, "IPPROTO_IP", IPPROTO_IP);
  set_const(env, c, "IPPROTO_IPV6", IPPROTO_IPV6);
  set_const(env, c, "IP_PKTINFO", IP_PKTINFO);
  set_const(env, c, "IP_FREEBIND", IP_FREEBIND);
  set_const(env, c, "IP_MULTICAST_ALL", IP_MULTICAST_ALL);
  set_const(env, c, "IPV6_CHECKSUM", IPV6_CHECKSUM);
  set_const(env, c, "IPV6_RECVHOPLIMIT", IPV6_RECVHOPLIMIT);
  set_const(env, c, "IPV6_RECVPKTINFO", IPV6_RECVPKTINFO);
  set_const(env, c, "IPV6_DROP_MEMBERSHIP", IPV6_DROP_MEMBERSHIP);
  set_const(env, c, "ETH_P_IPV6", ETH_P_IPV6);
  set_const(env, c, "POLL_READABLE", UV_READABLE);
  set_const(env, c, "POLL_WRITABLE", UV_WRITABLE);
  napi_set_named_property(env, exports, "constants", c);
  return exports;
}
