#ifndef TUNNELMESH_CLIBPQ_SHIM_H
#define TUNNELMESH_CLIBPQ_SHIM_H
// libpq, PostgreSQL's own client library (Debian: libpq-dev), for the role probe. It speaks TLS,
// when asked to, through the system's OpenSSL, like the rest of meshd.
#include <libpq-fe.h>

// The PG_DIAG_* field codes are character-literal macros, which Swift does not import.
static inline int tm_pg_diag_severity(void) { return PG_DIAG_SEVERITY; }
static inline int tm_pg_diag_sqlstate(void) { return PG_DIAG_SQLSTATE; }
static inline int tm_pg_diag_message_primary(void) { return PG_DIAG_MESSAGE_PRIMARY; }

#endif
