/*
 * libopus's decoder, called natively with every argument of opus_decode (opus-fec-native.ts).
 *
 * The bridge decodes WhatsApp's Opus with in-band FEC (decode_fec = 1 rebuilds a lost frame from the LBRR copy in
 * the next packet) and with concealment (no packet at all). @evan/opus's native addon exposes neither, so that
 * decoder ran on the package's libopus WebAssembly build (perf at 50 bench calls: ~8 % of the gateway's CPU in wasm). Here the system's
 * libopus (Debian's libopus0) is opened at first use with dlopen: no libopus headers are needed to build, and a
 * machine without the library gets the wasm decoder instead of a module that fails to load. The few prototypes
 * below are libopus's stable ABI (opus.h, unchanged since 1.0).
 *
 * opusFecAvailable() -> libopus's version string, or null when libopus.so.0 cannot be opened.
 * opusFecCreate() -> handle (an 8 kHz mono decoder), or a negative errno: -ENOENT without libopus, -ENOMEM,
 *   -EIO when opus_decoder_init fails.
 * opusFecDecode(handle, packet, packetLength, pcm, frameSize, decodeFec) -> samples written to pcm, or a negative
 *   libopus error. packet is a Uint8Array (its first packetLength bytes are decoded), or null / packetLength 0 for
 *   concealment. pcm is the caller's Int16Array (nothing is allocated per frame); frameSize, the most samples to
 *   write, is a multiple of 2.5 ms (20 samples) up to 120 ms and fits in pcm. Bad arguments give OPUS_BAD_ARG (-1),
 *   a pcm too small OPUS_BUFFER_TOO_SMALL (-2), a destroyed decoder OPUS_INVALID_STATE (-6); never a crash.
 * opusFecDestroy(handle) -> 0, or OPUS_BAD_ARG for something that is not a handle: frees the decoder state now
 *   (idempotent); the handle itself is freed when JS lets go of it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include "media_addon.h"

#define OPUS_OK 0
#define OPUS_BAD_ARG -1
#define OPUS_BUFFER_TOO_SMALL -2
#define OPUS_INVALID_STATE -6

#define RATE 8000
#define STEP_SAMPLES (RATE / 400)    /* 2.5 ms, libopus's smallest frame */
#define MAX_SAMPLES (RATE * 120 / 1000) /* 120 ms, its longest packet */
#define MAX_PACKET (1 << 16)         /* far above any RTP payload; libopus's lengths are int32 */

typedef struct OpusDecoder OpusDecoder;
static struct {
  int (*get_size)(int channels);
  int (*init)(OpusDecoder *st, int32_t fs, int channels);
  int (*decode)(OpusDecoder *st, const unsigned char *data, int32_t len, int16_t *pcm, int frame_size, int decode_fec);
  const char *(*version)(void);
  int ok;
} lib;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

/* Once per process (media planes are worker threads sharing it); never closed, like any linked library. */
static void lib_open(void) {
  void *h = dlopen("libopus.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!h) return;
  *(void **)&lib.get_size = dlsym(h, "opus_decoder_get_size");
  *(void **)&lib.init = dlsym(h, "opus_decoder_init");
  *(void **)&lib.decode = dlsym(h, "opus_decode");
  *(void **)&lib.version = dlsym(h, "opus_get_version_string");
  lib.ok = lib.get_size && lib.init && lib.decode && lib.version && lib.get_size(1) > 0;
}

static int lib_ready(void) {
  pthread_once(&lib_once, lib_open);
  return lib.ok;
}

/* The handle's memory (freed by the external's finalizer) owns the decoder state (freed by destroy or then). */
typedef struct {
  OpusDecoder *st;
} fec_decoder;

/* Tells our handles from any other external (the timer's, another addon's). */
static const napi_type_tag HANDLE_TAG = {0x6f707573666563ULL, 0x8a1d3c5b7e294f60ULL};

static void on_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  fec_decoder *d = data;
  free(d->st);
  free(d);
}

static fec_decoder *handle_arg(napi_env env, napi_value v) {
  napi_valuetype type;
  bool tagged = false;
  void *data = NULL;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external) return NULL;
  if (napi_check_object_type_tag(env, v, &HANDLE_TAG, &tagged) != napi_ok || !tagged) return NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok) return NULL;
  return data;
}

/* An integral Number in [lo, hi], else 0 (NaN, fractions, other types). */
static int int_arg(napi_env env, napi_value v, int64_t lo, int64_t hi, int64_t *out) {
  napi_valuetype type;
  double d;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_number) return 0;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= (double)lo && d <= (double)hi)) return 0;
  if ((double)(int64_t)d != d) return 0;
  *out = (int64_t)d;
  return 1;
}

static napi_value fec_available(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  if (!lib_ready()) {
    napi_get_null(env, &out);
    return out;
  }
  const char *v = lib.version();
  napi_create_string_utf8(env, v ? v : "libopus", NAPI_AUTO_LENGTH, &out);
  return out;
}

static napi_value fec_create(napi_env env, napi_callback_info info) {
  (void)info;
  if (!lib_ready()) return addon_int(env, -ENOENT);
  fec_decoder *d = calloc(1, sizeof *d);
  OpusDecoder *st = malloc((size_t)lib.get_size(1));
  int err = !d || !st ? -ENOMEM : lib.init(st, RATE, 1) != OPUS_OK ? -EIO : 0;
  napi_value handle;
  if (!err) {
    d->st = st;
    if (napi_create_external(env, d, on_finalize, NULL, &handle) != napi_ok) err = -ENOMEM;
  }
  if (err) {
    free(d);
    free(st);
    return addon_int(env, err);
  }
  napi_type_tag_object(env, handle, &HANDLE_TAG);
  return handle;
}

static napi_value fec_decode(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) return addon_int(env, OPUS_BAD_ARG);
  fec_decoder *d = handle_arg(env, argv[0]);
  if (!d) return addon_int(env, OPUS_BAD_ARG);
  if (!d->st) return addon_int(env, OPUS_INVALID_STATE);

  int64_t len, frame_size, fec;
  if (!int_arg(env, argv[2], 0, MAX_PACKET, &len)) return addon_int(env, OPUS_BAD_ARG);
  if (!int_arg(env, argv[5], 0, 1, &fec)) return addon_int(env, OPUS_BAD_ARG);
  if (!int_arg(env, argv[4], STEP_SAMPLES, MAX_SAMPLES, &frame_size) || frame_size % STEP_SAMPLES != 0) return addon_int(env, OPUS_BAD_ARG);

  const unsigned char *data = NULL;
  napi_valuetype ptype;
  if (napi_typeof(env, argv[1], &ptype) != napi_ok) return addon_int(env, OPUS_BAD_ARG);
  if (ptype == napi_null || ptype == napi_undefined) {
    if (len != 0) return addon_int(env, OPUS_BAD_ARG);
  } else {
    void *bytes;
    size_t view_len;
    if (!addon_typed_array(env, argv[1], napi_uint8_array, &bytes, &view_len) || (size_t)len > view_len) return addon_int(env, OPUS_BAD_ARG);
    if (len > 0) data = bytes; /* an empty packet conceals, as no packet does */
  }

  void *pcm;
  size_t pcm_len;
  if (!addon_typed_array(env, argv[3], napi_int16_array, &pcm, &pcm_len)) return addon_int(env, OPUS_BAD_ARG);
  if ((size_t)frame_size > pcm_len) return addon_int(env, OPUS_BUFFER_TOO_SMALL);

  int n = lib.decode(d->st, data, (int32_t)len, pcm, (int)frame_size, (int)fec);
  return addon_int(env, n);
}

static napi_value fec_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return addon_int(env, OPUS_BAD_ARG);
  fec_decoder *d = handle_arg(env, argv[0]);
  if (!d) return addon_int(env, OPUS_BAD_ARG);
  free(d->st);
  d->st = NULL;
  return addon_int(env, 0);
}

void register_opus_fec(napi_env env, napi_value exports) {
  addon_export(env, exports, "opusFecAvailable", fec_available);
  addon_export(env, exports, "opusFecCreate", fec_create);
  addon_export(env, exports, "opusFecDecode", fec_decode);
  addon_export(env, exports, "opusFecDestroy", fec_destroy);
}
