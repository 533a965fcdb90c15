/* The parts of the media addon; udp_batch.c's module init registers each on the same exports object. */
#pragma once
#include <node_api.h>
#include <stdint.h>

void register_media_timer(napi_env env, napi_value exports);   /* media_timer.c */
void register_srtp_crypto(napi_env env, napi_value exports);   /* srtp_crypto.c */
void register_opus_fec(napi_env env, napi_value exports);      /* opus_fec.c */

/* A JS number for a result or a negative error code. */
static inline napi_value addon_int(napi_env env, int64_t n) {
  napi_value out;
  napi_create_int64(env, n, &out);
  return out;
}

/* exports[name] = a function calling cb. */
static inline void addon_export(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

/* The data and element count of a typed array of exactly type `want`; 0 for anything else (wrong type, not an array). */
static inline int addon_typed_array(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *length) {
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  return napi_get_typedarray_info(env, v, &type, length, data, &ab, &offset) == napi_ok && type == want;
}
