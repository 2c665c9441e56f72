#ifndef TUNNELMESH_COPENSSL_SHIM_H
#define TUNNELMESH_COPENSSL_SHIM_H
// The OpenSSL 3 headers tunnelmesh uses. Many OpenSSL "functions" are macros Swift cannot import;
// the static inline wrappers below give them a callable name.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/evp.h>

static inline long tm_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int v) { return SSL_CTX_set_min_proto_version(ctx, v); }
static inline long tm_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int v) { return SSL_CTX_set_max_proto_version(ctx, v); }
static inline long tm_SSL_CTX_set_mode(SSL_CTX *ctx, long m) { return SSL_CTX_set_mode(ctx, m); }
static inline long tm_SSL_CTX_set_options(SSL_CTX *ctx, long o) { return SSL_CTX_set_options(ctx, o); }
static inline long tm_BIO_get_mem_data(BIO *b, char **pp) { return BIO_get_mem_data(b, pp); }
static inline long tm_BIO_set_mem_eof_return(BIO *b, int v) { return BIO_set_mem_eof_return(b, v); }
static inline int tm_sk_GENERAL_NAME_num(const GENERAL_NAMES *s) { return sk_GENERAL_NAME_num(s); }
static inline GENERAL_NAME *tm_sk_GENERAL_NAME_value(const GENERAL_NAMES *s, int i) { return sk_GENERAL_NAME_value(s, i); }
static inline void tm_GENERAL_NAMES_free(GENERAL_NAMES *s) { GENERAL_NAMES_free(s); }
static inline int tm_SSL_set_tlsext_host_name(SSL *s, const char *name) { return SSL_set_tlsext_host_name(s, name); }
static inline long tm_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *l) { return SSL_CTX_set1_groups_list(ctx, l); }

// Used by the TLS handler (MeshTLS): macros and composite constants Swift cannot import.
static inline int tm_SSL_get_ex_new_index(void) { return SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL); }
static inline long tm_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long m) { return SSL_CTX_set_session_cache_mode(ctx, m); }
static inline long tm_SSL_CTX_set_read_ahead(SSL_CTX *ctx, long yes) { return SSL_CTX_set_read_ahead(ctx, yes); }
static inline uint64_t tm_SSL_OP_NO_TICKET(void) { return SSL_OP_NO_TICKET; }
static inline uint64_t tm_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t tm_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline int tm_ERR_GET_LIB(unsigned long e) { return ERR_GET_LIB(e); }
static inline int tm_ERR_GET_REASON(unsigned long e) { return ERR_GET_REASON(e); }
static inline int tm_ERR_SYSTEM_ERROR(unsigned long e) { return ERR_SYSTEM_ERROR(e); }
static inline long tm_BIO_set_close(BIO *b, long flag) { return BIO_set_close(b, flag); }

#endif
