/* status.h — the one status type of orchsim and its error path.
 * Implements: OsStatus, a thread-local "last error" record (file/object, field, what, hint),
 *   and the CHECK macros every module uses to return up one path (STYLE.md habit 3).
 * Does not: print on its own (main prints the one line), exit, or know any library:
 *   H5_CHECK lives in traces/, CUDA/CUBLAS/NCCL_CHECK in exec/, MPI_CHECK in exec/.
 * Convention: every function declares `OsStatus st = OS_OK;` and ends at one `fail:` label. */
#ifndef OS_STATUS_H
#define OS_STATUS_H

#include <stdarg.h>
#include <stddef.h>

typedef enum {
    OS_OK = 0,
    OS_ERR_ARG,      /* bad command-line value or API argument */
    OS_ERR_IO,       /* open/read/write/rename failed */
    OS_ERR_FORMAT,   /* input file does not follow its format */
    OS_ERR_NOMEM,
    OS_ERR_CUDA,
    OS_ERR_CUBLAS,
    OS_ERR_NCCL,
    OS_ERR_MPI,
    OS_ERR_HDF5,
    OS_ERR_TIMEOUT,
    OS_ERR_NODEV,    /* no GPU / backend not compiled in */
    OS_ERR_RANGE,    /* a value is outside what orchsim can represent or a machine can hold */
    OS_ERR_INTERNAL, /* an invariant broke: a bug */
    OS_DONE          /* not an error: an iterator has no more items */
} OsStatus;

/* Short name of a status ("format", "io", ...). Never NULL. */
const char *os_status_name(OsStatus st);

/* Record an error for this thread and return st (so `return os_fail(...)` reads well).
 * where: file or object the error is about (e.g. the trace path); field: dataset/row/field
 * or option; hint: how to fix it, may be NULL. The record keeps the FIRST error until
 * os_clear_error(): the deepest callee knows most. */
OsStatus os_fail(OsStatus st, const char *where, const char *field, const char *hint,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
OsStatus os_vfail(OsStatus st, const char *where, const char *field, const char *hint,
                  const char *fmt, va_list ap);

/* The recorded error as "<where>: <field>: <what> (hint: <hint>)", or "" when none. Borrowed,
 * valid until the next os_fail/os_clear_error on this thread. */
const char *os_last_error(void);
int os_has_error(void);
void os_clear_error(void);

/* --verbose: OS_CHECK prints "  at file:line: call" on stderr as the status climbs. */
void os_set_verbose(int on);
int os_verbose(void);
void os_trace_here(const char *file, int line, const char *call, OsStatus st);

/* Relay a callee's status (nccl-tests' TESTCHECK). */
#define OS_CHECK(call)                                                    \
    do {                                                                  \
        OsStatus os_s_ = (call);                                          \
        if (os_s_ != OS_OK) {                                             \
            os_trace_here(__FILE__, __LINE__, #call, os_s_);              \
            st = os_s_;                                                   \
            goto fail;                                                    \
        }                                                                 \
    } while (0)

/* A NULL from an allocator. */
#define ALLOC_CHECK(ptr)                                                  \
    do {                                                                  \
        if (!(ptr)) {                                                     \
            st = os_fail(OS_ERR_NOMEM, "memory", #ptr, "reduce the problem size", \
                         "allocation failed at %s:%d", __FILE__, __LINE__); \
            goto fail;                                                    \
        }                                                                 \
    } while (0)

/* Fail with a recorded message and jump to fail. */
#define OS_FAIL(code, where, field, hint, ...)                            \
    do {                                                                  \
        st = os_fail((code), (where), (field), (hint), __VA_ARGS__);      \
        goto fail;                                                        \
    } while (0)

#endif
