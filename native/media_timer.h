/* The media clock's timer (media_timer.c), registered on the same addon as the batched UDP I/O. */
#pragma once
#include <node_api.h>

void register_media_timer(napi_env env, napi_value exports);
