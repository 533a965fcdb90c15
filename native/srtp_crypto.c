/*
 * SRTP packet crypto on OpenSSL (RFC 3711 AES_CM_128_HMAC_SHA1_80/32, RFC 7714 AEAD_AES_128_GCM), for srtp-native.ts.
 *
 * The TypeScript SrtpContext keeps everything but the crypto (rollover counters, replay state, padding); here one
 * call encrypts or decrypts a packet in place with AES-NI / PCLMULQDQ through OpenSSL, where the JS path runs GHASH
 * or SHA-1 from per-key tables (8 KiB per GCM key) that 100 calls' contexts evict from the cache between packets.
 *
 * OpenSSL is the one Node itself uses; its functions are looked up at run time (dlsym), so a Node whose OpenSSL
 * symbols are not visible makes srtpCreate return -ENOSYS and the JS path takes over, instead of the addon failing
 * to load or a call failing on first use.
 *
 * srtpCreate(profile, sessionKey[16], sessionSalt[14], authKey[20] | null) -> handle | -errno
 * srtpProtect(h, buf, hdrLen, len, roc) -> SRTP length (len + tag) | -1: encrypts buf[hdrLen, len) and appends the tag.
 * srtpUnprotect(h, buf, hdrLen, len, roc) -> RTP length (len - tag) | -1: authenticates buf[0, len) and decrypts it;
 *   a packet that fails authentication leaves buf untouched.
 */
#define _GNU_SOURCE
#define OPENSSL_SUPPRESS_DEPRECATED
#include <dlfcn.h>
#include <errno.h>
#include <node_api.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "media_addon.h"

#define PROFILE_CM_80 1
#define PROFILE_CM_32 2
#define PROFILE_GCM 7
#define GCM_TAG 16
#define MAX_PACKET 4096

static struct {
  EVP_CIPHER_CTX *(*ctx_new)(void);
  void (*ctx_free)(EVP_CIPHER_CTX *);
  int (*init)(EVP_CIPHER_CTX *, const EVP_CIPHER *, ENGINE *, const unsigned char *, const unsigned char *, int);
  int (*update)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int);
  int (*final)(EVP_CIPHER_CTX *, unsigned char *, int *);
  int (*ctrl)(EVP_CIPHER_CTX *, int, int, void *);
  const EVP_CIPHER *(*aes_128_gcm)(void);
  const EVP_CIPHER *(*aes_128_ctr)(void);
  int (*sha1_init)(SHA_CTX *);
  int (*sha1_update)(SHA_CTX *, const void *, size_t);
  int (*sha1_final)(unsigned char *, SHA_CTX *);
  int (*memcmp)(const void *, const void *, size_t);
} ossl;
static int ossl_found;
static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;

#define LOOKUP(field, name) \
  if (!(*(void **)(&ossl.field) = dlsym(RTLD_DEFAULT, name))) return

/* Once per process: media planes are worker threads that share it. */
static void ossl_lookup(void) {
  LOOKUP(ctx_new, "EVP_CIPHER_CTX_new");
  LOOKUP(ctx_free, "EVP_CIPHER_CTX_free");
  LOOKUP(init, "EVP_CipherInit_ex");
  LOOKUP(update, "EVP_CipherUpdate");
  LOOKUP(final, "EVP_CipherFinal_ex");
  LOOKUP(ctrl, "EVP_CIPHER_CTX_ctrl");
  LOOKUP(aes_128_gcm, "EVP_aes_128_gcm");
  LOOKUP(aes_128_ctr, "EVP_aes_128_ctr");
  LOOKUP(sha1_init, "SHA1_Init");
  LOOKUP(sha1_update, "SHA1_Update");
  LOOKUP(sha1_final, "SHA1_Final");
  LOOKUP(memcmp, "CRYPTO_memcmp");
  ossl_found = 1;
}

static int ossl_ready(void) {
  pthread_once(&ossl_once, ossl_lookup);
  return ossl_found;
}

typedef struct {
  int gcm;
  int tag_len;
  EVP_CIPHER_CTX *enc; /* GCM seal, or AES-CTR both ways */
  EVP_CIPHER_CTX *dec; /* GCM open */
  uint8_t salt[14];
  SHA_CTX inner, outer; /* HMAC-SHA1 with the key's pads already absorbed */
} srtp_ctx;

static void ctx_free(srtp_ctx *c) {
  if (c->enc) ossl.ctx_free(c->enc);
  if (c->dec) ossl.ctx_free(c->dec);
  memset(c, 0, sizeof *c); /* no key material left in freed memory */
  free(c);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ctx_free(data);
}

static napi_value srtp_create(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return addon_int(env, -EINVAL);
  if (!ossl_ready()) return addon_int(env, -ENOSYS);
  int32_t profile = 0;
  napi_get_value_int32(env, argv[0], &profile);
  uint8_t *key, *salt, *auth = NULL;
  size_t key_len, salt_len, auth_len = 0;
  if (!addon_typed_array(env, argv[1], napi_uint8_array, (void **)&key, &key_len) || key_len != 16 || !addon_typed_array(env, argv[2], napi_uint8_array, (void **)&salt, &salt_len) || salt_len < 12) return addon_int(env, -EINVAL);
  int gcm = profile == PROFILE_GCM;
  if (!gcm && profile != PROFILE_CM_80 && profile != PROFILE_CM_32) return addon_int(env, -EINVAL);
  if (!gcm && (argc < 4 || !addon_typed_array(env, argv[3], napi_uint8_array, (void **)&auth, &auth_len) || auth_len != 20 || salt_len < 14)) return addon_int(env, -EINVAL);
  srtp_ctx *c = calloc(1, sizeof *c);
  if (!c) return addon_int(env, -ENOMEM);
  c->gcm = gcm;
  c->tag_len = gcm ? GCM_TAG : profile == PROFILE_CM_32 ? 4 : 10;
  memcpy(c->salt, salt, gcm ? 12 : 14);
  c->enc = ossl.ctx_new();
  c->dec = gcm ? ossl.ctx_new() : NULL;
  const EVP_CIPHER *cipher = gcm ? ossl.aes_128_gcm() : ossl.aes_128_ctr();
  int ok = c->enc && (!gcm || c->dec) && ossl.init(c->enc, cipher, NULL, key, NULL, 1) == 1 && (!gcm || ossl.init(c->dec, cipher, NULL, key, NULL, 0) == 1);
  if (ok && !gcm) {
    uint8_t pad[64];
    memset(pad, 0x36, sizeof pad);
    for (int i = 0; i < 20; i++) pad[i] ^= auth[i];
    ok = ossl.sha1_init(&c->inner) == 1 && ossl.sha1_update(&c->inner, pad, 64) == 1;
    memset(pad, 0x5c, sizeof pad);
    for (int i = 0; i < 20; i++) pad[i] ^= auth[i];
    ok = ok && ossl.sha1_init(&c->outer) == 1 && ossl.sha1_update(&c->outer, pad, 64) == 1;
    memset(pad, 0, sizeof pad);
  }
  if (!ok) {
    ctx_free(c);
    return addon_int(env, -EIO);
  }
  napi_value handle;
  if (napi_create_external(env, c, on_finalize, NULL, &handle) != napi_ok) {
    ctx_free(c);
    return addon_int(env, -ENOMEM);
  }
  return handle;
}

/* Arguments shared by protect and unprotect: (h, buf, hdrLen, len, roc), bounds checked against the view. */
typedef struct {
  srtp_ctx *c;
  uint8_t *buf;
  size_t cap;
  int64_t hdr, len;
  uint32_t roc;
} call_args;

static int read_args(napi_env env, napi_callback_info info, call_args *a) {
  size_t argc = 5;
  napi_value argv[5];
  void *data = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5 || napi_get_value_external(env, argv[0], &data) != napi_ok || !data) return 0;
  a->c = data;
  if (!addon_typed_array(env, argv[1], napi_uint8_array, (void **)&a->buf, &a->cap)) return 0;
  napi_get_value_int64(env, argv[2], &a->hdr);
  napi_get_value_int64(env, argv[3], &a->len);
  napi_get_value_uint32(env, argv[4], &a->roc);
  return a->hdr >= 12 && a->hdr <= a->len && (size_t)a->len <= a->cap && a->len <= MAX_PACKET;
}

static uint32_t be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* RFC 7714 §8.1: (0x0000 || SSRC || ROC || SEQ) XOR the 12-byte salt. */
static void gcm_iv(const srtp_ctx *c, const uint8_t *pkt, uint32_t roc, uint8_t iv[12]) {
  uint8_t x[12] = { 0, 0, pkt[8], pkt[9], pkt[10], pkt[11], roc >> 24, roc >> 16, roc >> 8, roc, pkt[2], pkt[3] };
  for (int i = 0; i < 12; i++) iv[i] = x[i] ^ c->salt[i];
}

/* RFC 3711 §4.1.1: salt·2^16 XOR SSRC·2^64 XOR index·2^16, the block counter in the last two bytes. */
static void cm_iv(const srtp_ctx *c, const uint8_t *pkt, uint32_t roc, uint8_t iv[16]) {
  memcpy(iv, c->salt, 14);
  iv[14] = iv[15] = 0;
  for (int i = 0; i < 4; i++) iv[4 + i] ^= pkt[8 + i];
  uint8_t idx[6] = { roc >> 24, roc >> 16, roc >> 8, roc, pkt[2], pkt[3] };
  for (int i = 0; i < 6; i++) iv[8 + i] ^= idx[i];
}

static int cm_crypt(srtp_ctx *c, uint8_t *pkt, int64_t hdr, int64_t end, uint32_t roc) {
  int n = (int)(end - hdr), out = 0;
  if (n == 0) return 1;
  uint8_t iv[16];
  cm_iv(c, pkt, roc, iv);
  return ossl.init(c->enc, NULL, NULL, NULL, iv, 1) == 1 && ossl.update(c->enc, pkt + hdr, &out, pkt + hdr, n) == 1;
}

/* HMAC-SHA1 over the packet and the ROC (RFC 3711 §4.2). */
static void cm_mac(const srtp_ctx *c, const uint8_t *pkt, int64_t len, uint32_t roc, uint8_t mac[20]) {
  SHA_CTX s = c->inner;
  uint8_t r[4] = { roc >> 24, roc >> 16, roc >> 8, roc };
  ossl.sha1_update(&s, pkt, (size_t)len);
  ossl.sha1_update(&s, r, 4);
  ossl.sha1_final(mac, &s);
  s = c->outer;
  ossl.sha1_update(&s, mac, 20);
  ossl.sha1_final(mac, &s);
}

static napi_value srtp_protect(napi_env env, napi_callback_info info) {
  call_args a;
  if (!read_args(env, info, &a) || (size_t)(a.len + a.c->tag_len) > a.cap) return addon_int(env, -1);
  srtp_ctx *c = a.c;
  uint8_t *p = a.buf;
  if (c->gcm) {
    uint8_t iv[12];
    int out = 0;
    gcm_iv(c, p, a.roc, iv);
    int ok = ossl.init(c->enc, NULL, NULL, NULL, iv, 1) == 1 && ossl.update(c->enc, NULL, &out, p, (int)a.hdr) == 1 &&
             (a.len == a.hdr || ossl.update(c->enc, p + a.hdr, &out, p + a.hdr, (int)(a.len - a.hdr)) == 1) &&
             ossl.final(c->enc, p + a.len, &out) == 1 && ossl.ctrl(c->enc, EVP_CTRL_GCM_GET_TAG, GCM_TAG, p + a.len) == 1;
    return addon_int(env, ok ? a.len + GCM_TAG : -1);
  }
  if (!cm_crypt(c, p, a.hdr, a.len, a.roc)) return addon_int(env, -1);
  uint8_t mac[20];
  cm_mac(c, p, a.len, a.roc, mac);
  memcpy(p + a.len, mac, (size_t)c->tag_len);
  return addon_int(env, a.len + c->tag_len);
}

static napi_value srtp_unprotect(napi_env env, napi_callback_info info) {
  call_args a;
  if (!read_args(env, info, &a)) return addon_int(env, -1);
  srtp_ctx *c = a.c;
  uint8_t *p = a.buf;
  int64_t rtp_len = a.len - c->tag_len;
  if (rtp_len < a.hdr) return addon_int(env, -1);
  if (c->gcm) {
    /* Decrypt into scratch and copy back only once the tag holds, so a forgery leaves the packet as it came. */
    uint8_t plain[MAX_PACKET], iv[12], tag[GCM_TAG];
    int out = 0, n = (int)(rtp_len - a.hdr);
    memcpy(tag, p + rtp_len, GCM_TAG);
    gcm_iv(c, p, a.roc, iv);
    int ok = ossl.init(c->dec, NULL, NULL, NULL, iv, 0) == 1 && ossl.update(c->dec, NULL, &out, p, (int)a.hdr) == 1 &&
             (n == 0 || ossl.update(c->dec, plain, &out, p + a.hdr, n) == 1) &&
             ossl.ctrl(c->dec, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) == 1 && ossl.final(c->dec, plain + n, &out) == 1;
    if (!ok) return addon_int(env, -1);
    memcpy(p + a.hdr, plain, (size_t)n);
    return addon_int(env, rtp_len);
  }
  uint8_t mac[20];
  cm_mac(c, p, rtp_len, a.roc, mac);
  if (ossl.memcmp(mac, p + rtp_len, (size_t)c->tag_len) != 0) return addon_int(env, -1);
  return addon_int(env, cm_crypt(c, p, a.hdr, rtp_len, a.roc) ? rtp_len : -1);
}

void register_srtp_crypto(napi_env env, napi_value exports) {
  addon_export(env, exports, "srtpCreate", srtp_create);
  addon_export(env, exports, "srtpProtect", srtp_protect);
  addon_export(env, exports, "srtpUnprotect", srtp_unprotect);
}
