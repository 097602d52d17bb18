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

/* ---- outputs: temp + rename, in place for devices, all or nothing per command ----------
 * os_outfile_open decides how `path` is written:
 *   - a path that does not exist yet, or a regular file (also through a symlink, whose target
 *     is replaced and the link kept): written to "<path>.tmp.<pid>" and renamed into place by
 *     os_outfile_commit, so no partial file is ever left under `path`;
 *   - "-" (open_stdio only): standard output;
 *   - an existing device, FIFO or other non-regular file (open_stdio only): opened and written
 *     in place, never replaced (`--csv /dev/null` stays /dev/null);
 *   - refused: a directory; a non-regular file for open_stdio == 0 (HDF5 needs a regular file);
 *     a path that is an input of this command (os_input_note); a path another output of this
 *     process is still writing; a missing parent directory.
 * Every temp file is tracked (os_tmp_track): SIGINT, SIGTERM and SIGHUP remove them all and
 * exit with 128 + the signal, leaving the old files intact (handlers are installed on the first
 * tracked path, and never over a disposition someone else set, e.g. nohup's SIG_IGN).
 * Inside os_outputs_hold/release, commits are deferred: the command's outputs are renamed
 * together when the outermost release sees OS_OK, and all removed when any release sees an
 * error, so a failed command commits none of its outputs. */
typedef struct OsTmp OsTmp; /* a tracked temporary path (opaque) */
typedef struct {
    char path[4096];  /* the final path (a symlink's target when the path is a link) */
    char tmp[4096 + 32]; /* what the caller writes: the temp file, or path itself when in_place */
    FILE *fp;         /* open for writing, or NULL for callers that write tmp themselves (HDF5) */
    int in_place;     /* 1: device/FIFO/stdout written directly; commit only closes */
    OsTmp *track;     /* the registry entry of tmp (internal) */
    uint64_t track_seq;
} OsOutFile;
OsStatus os_outfile_open(OsOutFile *f, const char *path, int open_stdio);
/* Close (checking every write), then rename into place, or mark ready when a hold is open.
 * On error the temp file is removed. */
OsStatus os_outfile_commit(OsOutFile *f);
/* Close and remove the temp file; NULL-safe on a zeroed or committed OsOutFile. */
void os_outfile_abort(OsOutFile *f);

/* Check an output path up front (the same refusals as os_outfile_open, nothing created), so a
 * command can fail before its work rather than at the end. */
OsStatus os_output_check(const char *path, int open_stdio);

/* Defer commits until the matching release. Returns a mark for os_outputs_release. Nestable. */
uint64_t os_outputs_hold(void);
/* st == OS_OK: at the outermost level, rename every ready output (in open order); an error
 * removes the rest and is returned. st != OS_OK: remove every output made ready since `mark`.
 * Returns the status to carry on with (st, or the commit error). */
OsStatus os_outputs_release(uint64_t mark, OsStatus st);

/* Record `path` as an input while it is being read (its device and inode, counted): outputs
 * may not replace it until the matching os_input_drop. Cheap; missing paths are ignored.
 * trace_open/trace_close and import do it; so should every reader of a user-named file. */
void os_input_note(const char *path);
void os_input_drop(const char *path);
void os_inputs_forget(void); /* tests */

/* Track any temporary path (file, or an empty-at-exit directory) for removal on a signal.
 * Returns NULL when out of memory (the path is then simply not tracked). */
OsTmp *os_tmp_track(const char *path, int is_dir);
/* Stop tracking (does not remove the path). NULL-safe. */
void os_tmp_untrack(OsTmp *t);
/* In a fork()ed child: forget every tracked path without removing any (the parent owns them). */
void os_tmp_forget_all(void);
/* Tracked paths right now (tests). */
size_t os_tmp_count(void);

/* Copy s into out (cap bytes, always terminated) with control bytes, DEL and bytes >= 0x80
 * written as \xNN, so a hostile name cannot move the cursor or hide a character. */
void os_escape(char *out, size_t cap, const char *s, size_t len);

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
void os_progress_force(int on); /* 1: always; -1: never; 0 (default): when stderr is a terminal */

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
