#ifndef TUNNELMESH_COPENSSL_SHIM_PKI_H
#define TUNNELMESH_COPENSSL_SHIM_PKI_H
// Wrappers for OpenSSL macros used by the certificate authority code (meshctl pki).
#include "shim.h"

#endif
