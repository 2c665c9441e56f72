#ifndef TUNNELMESH_CSYSTEMD_SHIM_H
#define TUNNELMESH_CSYSTEMD_SHIM_H
// libsystemd's daemon API: named listen fds (socket activation), sd_notify and the watchdog period.
// SD_LISTEN_FDS_START is a macro Swift cannot import; the wrapper gives it a callable name.
#include <systemd/sd-daemon.h>

static inline int tm_sd_listen_fds_start(void) { return SD_LISTEN_FDS_START; }

#endif
