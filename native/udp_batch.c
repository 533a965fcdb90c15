/*
 * Batched, non-blocking UDP I/O on sockets that Node created (dgram), for the media tick.
 *
 * On a VM, every wake-up of the event loop costs tens of microseconds of CPU. Read on arrival, each media packet
 * is one wake-up; read on the 20 ms media tick, a whole group of calls shares one. Node has no synchronous UDP
 * read, so this addon gives one: recvmmsg with MSG_DONTWAIT into a caller-owned area, and sendto from a
 * caller-owned buffer with a numeric address (no per-packet request object, no address string).
 *
 * recv(fd, area, slotSize, maxPackets, meta, ages) -> packets read (0 when none are waiting) or -errno.
 *   Packet i lands at area[i * slotSize]; meta[i * 8 ...] = length, port, family (4 or 6), truncated (0/1),
 *   then the address: IPv4 as one host-order word, IPv6 as four big-endian words. ages[i] is how long ago, in ms,
 *   the kernel received it (SO_TIMESTAMPNS, see timestamps()), or -1 when it gave no time: the tick reads late,
 *   but the jitter estimate needs the real arrival.
 * timestamps(fd) -> 0 or -errno: asks the kernel to stamp each datagram's arrival (SO_TIMESTAMPNS).
 * sendTo(fd, buf, offset, length, family, port, a0, a1, a2, a3) -> bytes sent or -errno.
 * sendBatch(area, slotSize, meta, count) -> datagrams the kernel took. Datagram i is area[i * slotSize ...] and
 *   meta[i * 8 ...] = fd, length, family, port, then the address as in recv; meta[i * 8 + 1] becomes -errno when
 *   that send failed. One call for a whole media tick's packets, across sockets.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include "media_addon.h"

#define MAX_BATCH 64
#define META_WORDS 8

static int64_t int_arg(napi_env env, napi_value v) {
  int64_t out = 0;
  napi_get_value_int64(env, v, &out);
  return out;
}

#define CTRL_SPACE CMSG_SPACE(sizeof(struct timespec))

static napi_value recv_batch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 6) return addon_int(env, -EINVAL);
  int fd = (int)int_arg(env, argv[0]);
  void *area_ptr, *meta_ptr, *ages_ptr;
  size_t area_len, meta_len, ages_len;
  if (!addon_typed_array(env, argv[1], napi_uint8_array, &area_ptr, &area_len) || !addon_typed_array(env, argv[4], napi_int32_array, &meta_ptr, &meta_len) ||
      !addon_typed_array(env, argv[5], napi_float64_array, &ages_ptr, &ages_len)) return addon_int(env, -EINVAL);
  uint8_t *area = area_ptr;
  meta_len *= 4; /* bytes, as the checks below count */
  int64_t slot = int_arg(env, argv[2]);
  int64_t max = int_arg(env, argv[3]);
  if (slot <= 0 || max <= 0) return addon_int(env, -EINVAL);
  if (max > MAX_BATCH) max = MAX_BATCH;
  if ((size_t)max * (size_t)slot > area_len) max = (int64_t)(area_len / (size_t)slot);
  if ((size_t)max * META_WORDS * 4 > meta_len) max = (int64_t)(meta_len / (META_WORDS * 4));
  if ((size_t)max > ages_len) max = (int64_t)ages_len;
  if (max <= 0) return addon_int(env, -EINVAL);

  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_storage from[MAX_BATCH];
  char ctrl[MAX_BATCH][CTRL_SPACE] __attribute__((aligned(8)));
  memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)max);
  for (int64_t i = 0; i < max; i++) {
    iov[i].iov_base = area + i * slot;
    iov[i].iov_len = (size_t)slot;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
    msgs[i].msg_hdr.msg_control = ctrl[i];
    msgs[i].msg_hdr.msg_controllen = CTRL_SPACE;
  }
  int n;
  do n = recvmmsg(fd, msgs, (unsigned)max, MSG_DONTWAIT, NULL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return addon_int(env, (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno);

  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  double *ages = (double *)ages_ptr;
  int32_t *meta = meta_ptr;
  for (int i = 0; i < n; i++) {
    ages[i] = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(c), sizeof(ts));
      double age = (double)(now.tv_sec - ts.tv_sec) * 1e3 + (double)(now.tv_nsec - ts.tv_nsec) / 1e6;
      // A clock step between the two readings is not an age: leave it unknown.
      if (age >= 0 && age < 10000) ages[i] = age;
    }
    int32_t *m = meta + i * META_WORDS;
    m[0] = (int32_t)msgs[i].msg_len;
    m[3] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? 1 : 0;
    if (from[i].ss_family == AF_INET) {
      const struct sockaddr_in *a = (const struct sockaddr_in *)&from[i];
      m[1] = ntohs(a->sin_port);
      m[2] = 4;
      m[4] = (int32_t)ntohl(a->sin_addr.s_addr);
      m[5] = m[6] = m[7] = 0;
    } else if (from[i].ss_family == AF_INET6) {
      const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&from[i];
      m[1] = ntohs(a->sin6_port);
      m[2] = 6;
      for (int w = 0; w < 4; w++) {
        uint32_t word;
        memcpy(&word, a->sin6_addr.s6_addr + 4 * w, 4);
        m[4 + w] = (int32_t)ntohl(word);
      }
    } else {
      m[1] = 0;
      m[2] = 0;
    }
  }
  return addon_int(env, n);
}

static socklen_t fill_addr(struct sockaddr_storage *to, int64_t family, uint16_t port, const uint32_t w[4]) {
  memset(to, 0, sizeof(*to));
  if (family == 4) {
    struct sockaddr_in *a = (struct sockaddr_in *)to;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(w[0]);
    return sizeof(*a);
  }
  if (family == 6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)to;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    for (int i = 0; i < 4; i++) {
      uint32_t word = htonl(w[i]);
      memcpy(a->sin6_addr.s6_addr + 4 * i, &word, 4);
    }
    return sizeof(*a);
  }
  return 0;
}

static ssize_t send_one(int fd, const uint8_t *data, size_t len, const struct sockaddr_storage *to, socklen_t to_len) {
  ssize_t n;
  do n = sendto(fd, data, len, MSG_DONTWAIT, (const struct sockaddr *)to, to_len);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

static napi_value send_batch(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4) return addon_int(env, -EINVAL);
  void *area_ptr, *meta_bytes;
  size_t area_len, meta_len;
  if (!addon_typed_array(env, argv[0], napi_uint8_array, &area_ptr, &area_len) || !addon_typed_array(env, argv[2], napi_int32_array, &meta_bytes, &meta_len)) return addon_int(env, -EINVAL);
  uint8_t *area = area_ptr;
  meta_len *= 4; /* bytes */
  int64_t slot = int_arg(env, argv[1]);
  int64_t count = int_arg(env, argv[3]);
  if (slot <= 0 || count < 0 || (size_t)count * (size_t)slot > area_len || (size_t)count * META_WORDS * 4 > meta_len) return addon_int(env, -EINVAL);
  int32_t *meta = meta_bytes;
  int64_t ok = 0;
  for (int64_t i = 0; i < count; i++) {
    int32_t *m = meta + i * META_WORDS;
    struct sockaddr_storage to;
    uint32_t w[4] = { (uint32_t)m[4], (uint32_t)m[5], (uint32_t)m[6], (uint32_t)m[7] };
    socklen_t to_len = fill_addr(&to, m[2], (uint16_t)m[3], w);
    if (m[1] < 0 || m[1] > slot || to_len == 0) {
      m[1] = -EINVAL;
      continue;
    }
    ssize_t n = send_one(m[0], area + i * slot, (size_t)m[1], &to, to_len);
    if (n < 0) m[1] = (int32_t)n;
    else ok++;
  }
  return addon_int(env, ok);
}

static napi_value send_to(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 10) return addon_int(env, -EINVAL);
  int fd = (int)int_arg(env, argv[0]);
  void *buf_ptr;
  size_t buf_len;
  if (!addon_typed_array(env, argv[1], napi_uint8_array, &buf_ptr, &buf_len)) return addon_int(env, -EINVAL);
  uint8_t *buf = buf_ptr;
  int64_t offset = int_arg(env, argv[2]);
  int64_t length = int_arg(env, argv[3]);
  if (offset < 0 || length < 0 || (size_t)(offset + length) > buf_len) return addon_int(env, -EINVAL);
  uint32_t w[4];
  for (int i = 0; i < 4; i++) w[i] = (uint32_t)int_arg(env, argv[6 + i]);
  struct sockaddr_storage to;
  socklen_t to_len = fill_addr(&to, int_arg(env, argv[4]), (uint16_t)int_arg(env, argv[5]), w);
  if (to_len == 0) return addon_int(env, -EAFNOSUPPORT);
  return addon_int(env, send_one(fd, buf + offset, (size_t)length, &to, to_len));
}

static napi_value timestamps(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) return addon_int(env, -EINVAL);
  int one = 1;
  int fd = (int)int_arg(env, argv[0]);
  return addon_int(env, setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0 ? -errno : 0);
}

NAPI_MODULE_INIT() {
  addon_export(env, exports, "recv", recv_batch);
  addon_export(env, exports, "sendTo", send_to);
  addon_export(env, exports, "sendBatch", send_batch);
  addon_export(env, exports, "timestamps", timestamps);
  register_media_timer(env, exports);
  register_srtp_crypto(env, exports);
  register_opus_fec(env, exports);
  return exports;
}
