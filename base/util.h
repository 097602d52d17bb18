/* util.h — small shared helpers: checked number parsing, clocks, atomic output files,
 * a progress line, and a bump arena for per-step scratch.
 * Implements: what more than one module needs and no library gives cleanly.
 * Does not: allocate behind the caller's back (the arena is explicit), or print except
 *   os_progress (stderr, only when stderr is a terminal or forced). */
#ifndef OS_UTIL_H
#define OS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/status.h"

/* Parse an unsigned integer with optional k/M/G/T (x1000) or Ki/Mi/Gi (x1024) suffix,
 * checking the whole string is consumed and lo <= v <= hi. `what` names the option/field
 * in the error. */
OsStatus os_parse_u64(uint64_t *out, const char *s, uint64_t lo, uint64_t hi, const char *what);
/* Parse a finite double (no suffixes) within [lo, hi]. */
OsStatus os_parse_f64(double *out, const char *s, double lo, double hi, const char *what);

/* Levenshtein distance for "did you mean" hints; strings over 31 bytes count as 99. */
int os_edit_distance(const char *a, const char *b);

/* Monotonic wall clock, seconds. */
double os_now(void);
/* CPU time of the calling thread, seconds: what a computation costs, unaffected by other
 * processes competing for the cores (used to measure the balancers). */
double os_thread_cpu_now(void);
/* Peak resident set size of this process, bytes (from getrusage). */
uint64_t os_peak_rss(void);

/* Atomic output: write to "<path>.tmp.<pid>", then os_outfile_commit renames it into place;
 * os_outfile_abort removes it. No partial output file is ever left under `path`. */
typedef struct {
    char path[4096];
    char tmp[4096 + 32];
    FILE *fp; /* open for writing on tmp, or NULL for callers that write tmp themselves (HDF5) */
} OsOutFile;
OsStatus os_outfile_open(OsOutFile *f, const char *path, int open_stdio);
OsStatus os_outfile_commit(OsOutFile *f);
void os_outfile_abort(OsOutFile *f);

/* Progress line on stderr: "\r<label> [#####.....] 42% (n/total)". Prints only when stderr
 * is a tty (or os_progress_force(1)), at most ~10 times a second. */
typedef struct {
    const char *label;
    uint64_t total;
    double last;
    int enabled;
} OsProgress;
void os_progress_init(OsProgress *p, const char *label, uint64_t total);
void os_progress_update(OsProgress *p, uint64_t done);
void os_progress_done(OsProgress *p);
void os_progress_force(int on);

/* Bump arena: one block carved into named arrays, reset per step (STYLE habit 4). */
typedef struct {
    unsigned char *base;
    size_t cap, used;
} OsArena;
void os_arena_init(OsArena *a);
void os_arena_free(OsArena *a);
/* Make sure at least `bytes` are free from `used`; may move the block, so only call between
 * uses (never while pointers from os_arena_alloc are live). */
OsStatus os_arena_reserve(OsArena *a, size_t bytes);
/* 64-byte aligned, zeroed; NULL when the reserve was too small. */
void *os_arena_alloc(OsArena *a, size_t bytes);
void os_arena_reset(OsArena *a);

/* Growable array helper: make *p hold at least n elements of size sz. */
OsStatus os_grow(void **p, size_t *cap, size_t n, size_t sz);

#define OS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define OS_MAX(a, b) ((a) > (b) ? (a) : (b))
#define OS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
