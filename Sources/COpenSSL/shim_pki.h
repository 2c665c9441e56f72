#ifndef TUNNELMESH_COPENSSL_SHIM_PKI_H
#define TUNNELMESH_COPENSSL_SHIM_PKI_H
// Wrappers for OpenSSL macros used by the certificate authority code (meshctl pki).
#include "shim.h"
#include <openssl/ec.h>
#include <openssl/rand.h>
#include <openssl/bn.h>

// EVP_EC_gen is a macro over the variadic EVP_PKEY_Q_keygen, which Swift cannot call.
static inline EVP_PKEY *tm_EVP_EC_gen(const char *curve) { return EVP_EC_gen(curve); }

// The CRL's revoked entries (STACK_OF accessors are macros).
static inline int tm_sk_X509_REVOKED_num(const STACK_OF(X509_REVOKED) *s) { return sk_X509_REVOKED_num(s); }
static inline X509_REVOKED *tm_sk_X509_REVOKED_value(const STACK_OF(X509_REVOKED) *s, int i) { return sk_X509_REVOKED_value(s, i); }

// A composite flag expression Swift does not import as a constant.
static inline unsigned long tm_XN_FLAG_RFC2253(void) { return XN_FLAG_RFC2253; }

// Extension building without a config database (the macro only clears ctx->db).
static inline void tm_X509V3_set_ctx_nodb(X509V3_CTX *ctx) { X509V3_set_ctx_nodb(ctx); }

#endif
