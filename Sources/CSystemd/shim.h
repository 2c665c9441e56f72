#ifndef TUNNELMESH_CSYSTEMD_SHIM_H
#define TUNNELMESH_CSYSTEMD_SHIM_H
// libsystemd's daemon API: named listen fds (socket activation), sd_notify and the watchdog period.
// SD_LISTEN_FDS_START is a macro Swift cannot import; the wrapper gives it a callable name.
#include <systemd/sd-daemon.h>

static inline int tm_sd_listen_fds_start(void) { return SD_LISTEN_FDS_START; }

#include <signal.h>
#include <string.h>

// systemd's watchdog ends a hung agent with SIGABRT (WatchdogSignal=). The Swift runtime's crash
// handler catches it, prints every thread's backtrace and returns; a signal sent with kill() is not
// raised again, so the hung process would live on until systemd's SIGKILL after TimeoutAbortSec.
// This handler runs the previous one (the backtrace) and then ends the process with SIGABRT.
// A function-local static: Swift's importer emits the functions it uses, not file-scope statics.
static inline struct sigaction *tm_previous_sigabrt(void) {
    static struct sigaction previous;
    return &previous;
}

static void tm_sigabrt_then_die(int signo, siginfo_t *info, void *context) {
    struct sigaction *previous = tm_previous_sigabrt();
    if ((previous->sa_flags & SA_SIGINFO) && previous->sa_sigaction != NULL) {
        previous->sa_sigaction(signo, info, context);
    } else if (previous->sa_handler != SIG_DFL && previous->sa_handler != SIG_IGN) {
        previous->sa_handler(signo);
    }
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(SIGABRT, &fallback, NULL);
    // Pending while this handler runs (SIGABRT is blocked here); delivered, and fatal, on return.
    raise(SIGABRT);
}

/// Installs `tm_sigabrt_then_die` in front of whatever handles SIGABRT now; 0 on success.
static inline int tm_sigabrt_backtrace_then_die(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = tm_sigabrt_then_die;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGABRT, &action, tm_previous_sigabrt());
}

#endif
