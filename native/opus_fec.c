/* libopus's decoder with in-band FEC (opus-fec-native.ts): to be written. */
#include <node_api.h>
#include "media_addon.h"

void register_opus_fec(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
}
