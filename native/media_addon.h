/* The parts of the media addon; udp_batch.c's module init registers each on the same exports object. */
#pragma once
#include <node_api.h>

void register_media_timer(napi_env env, napi_value exports);   /* media_timer.c */
void register_srtp_crypto(napi_env env, napi_value exports);   /* srtp_crypto.c */
void register_opus_fec(napi_env env, napi_value exports);      /* opus_fec.c */
