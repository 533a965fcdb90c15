/*
 * A one-shot timer with microsecond precision on the event loop, for the 20 ms media clock.
 *
 * libuv's timers and its epoll wait count whole milliseconds, so a setTimeout-driven media tick runs 1–2 ms after
 * its deadline (measured: p50 2.2 ms at 50 calls), and that lateness is added to every packet's delay and to the
 * spacing of the packets we send. A timerfd watched by the loop (uv_poll) wakes it when the kernel's hrtimer
 * expires, so the tick starts within tens of microseconds of its deadline. The JS callback runs through
 * napi_make_callback, so microtasks (the batched sends) run right after it, as after a timer.
 *
 * timerCreate(callback) -> handle, or a negative errno when the kernel has no timerfd.
 * timerArm(handle, delayMicros) -> 0 or -errno: (re)arms to fire once after delayMicros (0: as soon as possible).
 * timerDisarm(handle): cancels a pending expiry.
 * timerClose(handle): stops and frees the timer; the handle is unusable afterwards.
 * An armed timer keeps the process alive, like a ref'd setTimeout; a disarmed one does not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <uv.h>
#include "media_addon.h"

typedef struct {
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  napi_async_cleanup_hook_handle cleanup;
  uv_poll_t poll;
  int fd;
  int closing;
  /* Owners of this memory: the libuv handle until its close callback, and the JS external until its finalizer. */
  int owners;
} media_timer;

static void release(media_timer *t) {
  if (--t->owners == 0) free(t);
}

static void on_closed(uv_handle_t *handle) {
  media_timer *t = handle->data;
  close(t->fd);
  if (t->cleanup) napi_remove_async_cleanup_hook(t->cleanup);
  t->cleanup = NULL;
  release(t);
}

/* Stops the poll and frees the timer once libuv has let go of the handle. JS references go first, while the env is alive. */
static void shut(media_timer *t) {
  if (t->closing) return;
  t->closing = 1;
  if (t->callback) napi_delete_reference(t->env, t->callback);
  if (t->async) napi_async_destroy(t->env, t->async);
  t->callback = NULL;
  t->async = NULL;
  uv_poll_stop(&t->poll);
  uv_close((uv_handle_t *)&t->poll, on_closed);
}

/* A worker thread (a media plane) ending with its timer open: close it before Node closes that thread's loop. */
static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  media_timer *t = arg;
  (void)handle;
  t->callback = NULL; /* the env is going away: its references go with it */
  t->async = NULL;
  if (t->closing) return;
  t->closing = 1;
  uv_poll_stop(&t->poll);
  uv_close((uv_handle_t *)&t->poll, on_closed);
}

static void on_ready(uv_poll_t *handle, int status, int events) {
  (void)events;
  media_timer *t = handle->data;
  uint64_t expirations;
  if (status < 0 || t->closing) return;
  if (read(t->fd, &expirations, sizeof expirations) != (ssize_t)sizeof expirations) return; /* not expired (re-armed meanwhile) */
  uv_unref((uv_handle_t *)&t->poll);
  napi_env env = t->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, result;
  if (napi_get_reference_value(env, t->callback, &fn) == napi_ok && fn != NULL && napi_get_global(env, &recv) == napi_ok) {
    if (napi_make_callback(env, t->async, recv, fn, 0, NULL, &result) == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* JS let go of the handle: a timer still open stops here (its callback reference dies with it). */
static void on_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  media_timer *t = data;
  shut(t);
  release(t);
}

static media_timer *timer_arg(napi_env env, napi_callback_info info, napi_value *argv, size_t want) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  if (argc < want || napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) return NULL;
  media_timer *t = data;
  return t->closing ? NULL : t;
}

static napi_value media_timer_create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype type;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_function) return addon_int(env, -EINVAL);
  struct uv_loop_s *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return addon_int(env, -ENOSYS);
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return addon_int(env, -errno);
  media_timer *t = calloc(1, sizeof *t);
  if (!t) {
    close(fd);
    return addon_int(env, -ENOMEM);
  }
  t->env = env;
  t->fd = fd;
  if (uv_poll_init(loop, &t->poll, fd) != 0) {
    close(fd);
    free(t);
    return addon_int(env, -EIO);
  }
  t->poll.data = t;
  napi_value name;
  napi_create_string_utf8(env, "MediaTimer", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[0], 1, &t->callback);
  napi_async_init(env, NULL, name, &t->async);
  napi_add_async_cleanup_hook(env, on_env_cleanup, t, &t->cleanup);
  uv_poll_start(&t->poll, UV_READABLE, on_ready);
  uv_unref((uv_handle_t *)&t->poll);
  t->owners = 2;
  napi_value handle;
  napi_create_external(env, t, on_finalize, NULL, &handle);
  return handle;
}

static napi_value media_timer_arm(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  media_timer *t = timer_arg(env, info, argv, 2);
  if (!t) return addon_int(env, -EBADF);
  int64_t micros = 0;
  napi_get_value_int64(env, argv[1], &micros);
  if (micros < 1) micros = 1; /* 0 would disarm */
  struct itimerspec spec = { .it_interval = { 0, 0 }, .it_value = { micros / 1000000, (micros % 1000000) * 1000 } };
  if (timerfd_settime(t->fd, 0, &spec, NULL) < 0) return addon_int(env, -errno);
  uv_ref((uv_handle_t *)&t->poll);
  return addon_int(env, 0);
}

static napi_value media_timer_disarm(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  media_timer *t = timer_arg(env, info, argv, 1);
  if (!t) return addon_int(env, -EBADF);
  struct itimerspec spec = { { 0, 0 }, { 0, 0 } };
  timerfd_settime(t->fd, 0, &spec, NULL);
  uv_unref((uv_handle_t *)&t->poll);
  return addon_int(env, 0);
}

static napi_value media_timer_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  media_timer *t = timer_arg(env, info, argv, 1);
  if (!t) return addon_int(env, -EBADF);
  shut(t);
  return addon_int(env, 0);
}

void register_media_timer(napi_env env, napi_value exports) {
  addon_export(env, exports, "timerCreate", media_timer_create);
  addon_export(env, exports, "timerArm", media_timer_arm);
  addon_export(env, exports, "timerDisarm", media_timer_disarm);
  addon_export(env, exports, "timerClose", media_timer_close);
}
