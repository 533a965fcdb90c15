/* SRTP crypto on OpenSSL (srtp-native.ts): to be written. */
#include <node_api.h>
#include "media_addon.h"

void register_srtp_crypto(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
}
