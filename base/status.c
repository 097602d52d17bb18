/* status.c — see status.h. */
#include "base/status.h"

#include <stdio.h>
#include <string.h>

#define OS_ERR_CAP 1024

static _Thread_local char g_err[OS_ERR_CAP];
static _Thread_local int g_has_err;
static int g_verbose;

const char *os_status_name(OsStatus st) {
    static const char *const names[] = {
        [OS_OK] = "ok",           [OS_ERR_ARG] = "argument", [OS_ERR_IO] = "io",
        [OS_ERR_FORMAT] = "format", [OS_ERR_NOMEM] = "memory", [OS_ERR_CUDA] = "cuda",
        [OS_ERR_CUBLAS] = "cublas", [OS_ERR_NCCL] = "nccl",  [OS_ERR_MPI] = "mpi",
        [OS_ERR_HDF5] = "hdf5",   [OS_ERR_TIMEOUT] = "timeout", [OS_ERR_NODEV] = "no-device",
        [OS_ERR_RANGE] = "range", [OS_ERR_INTERNAL] = "internal", [OS_DONE] = "done",
    };
    if ((unsigned)st < sizeof names / sizeof names[0] && names[st]) return names[st];
    return "unknown";
}

/* Control bytes (a hostile name's newline or ANSI escape) become \xNN, so the error stays one
 * line and cannot drive the terminal. Bytes >= 0x80 (UTF-8 paths) are kept. */
static void escape_controls(char *dst, size_t cap, const char *src) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (; *src && n + 1 < cap; src++) {
        unsigned char c = (unsigned char)*src;
        if (c >= 0x20 && c != 0x7f) {
            dst[n++] = (char)c;
        } else {
            if (n + 4 >= cap) break;
            dst[n++] = '\\';
            dst[n++] = 'x';
            dst[n++] = hex[c >> 4];
            dst[n++] = hex[c & 15];
        }
    }
    dst[n] = '\0';
}

OsStatus os_vfail(OsStatus st, const char *where, const char *field, const char *hint,
                  const char *fmt, va_list ap) {
    if (g_has_err) return st; /* keep the deepest (first) error */
    char raw[OS_ERR_CAP];
    size_t n = 0;
    raw[0] = '\0';
    if (where && *where) {
        size_t wl = strlen(where);
        if (wl > 300) /* a hostile or runaway path: its ends say which, the message must fit */
            n += (size_t)snprintf(raw + n, OS_ERR_CAP - n, "%.120s...%s: ", where, where + wl - 120);
        else
            n += (size_t)snprintf(raw + n, OS_ERR_CAP - n, "%s: ", where);
    }
    if (n < OS_ERR_CAP && field && *field)
        n += (size_t)snprintf(raw + n, OS_ERR_CAP - n, "%s: ", field);
    if (n < OS_ERR_CAP) n += (size_t)vsnprintf(raw + n, OS_ERR_CAP - n, fmt, ap);
    if (n < OS_ERR_CAP && hint && *hint)
        snprintf(raw + n, OS_ERR_CAP - n, " (hint: %s)", hint);
    escape_controls(g_err, OS_ERR_CAP, raw);
    g_has_err = 1;
    return st;
}

OsStatus os_fail(OsStatus st, const char *where, const char *field, const char *hint,
                 const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    os_vfail(st, where, field, hint, fmt, ap);
    va_end(ap);
    return st;
}

const char *os_last_error(void) { return g_has_err ? g_err : ""; }
int os_has_error(void) { return g_has_err; }
void os_clear_error(void) {
    g_has_err = 0;
    g_err[0] = '\0';
}

void os_set_verbose(int on) { g_verbose = on; }
int os_verbose(void) { return g_verbose; }

void os_trace_here(const char *file, int line, const char *call, OsStatus st) {
    if (g_verbose) fprintf(stderr, "orchsim:   at %s:%d: %s -> %s\n", file, line, call, os_status_name(st));
}
