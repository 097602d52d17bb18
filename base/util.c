/* util.c — see util.h. */
#include "base/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

OsStatus os_parse_u64(uint64_t *out, const char *s, uint64_t lo, uint64_t hi, const char *what) {
    if (!s || !*s) return os_fail(OS_ERR_ARG, what, NULL, NULL, "empty value");
    if (*s == '-') return os_fail(OS_ERR_ARG, what, NULL, NULL, "'%s' is negative", s);
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return os_fail(OS_ERR_ARG, what, NULL, NULL, "'%s' is not a number", s);
    unsigned long long mul = 1;
    if (*end) {
        int bin = end[1] == 'i';
        unsigned long long base = bin ? 1024ull : 1000ull;
        switch (*end) {
        case 'k': case 'K': mul = base; break;
        case 'M': mul = base * base; break;
        case 'G': mul = base * base * base; break;
        case 'T': mul = base * base * base * base; break;
        default: return os_fail(OS_ERR_ARG, what, NULL, "use digits with an optional k/M/G suffix",
                                "'%s' has trailing characters", s);
        }
        end += 1 + bin;
        if (*end) return os_fail(OS_ERR_ARG, what, NULL, NULL, "'%s' has trailing characters", s);
    }
    if (v > UINT64_MAX / mul) return os_fail(OS_ERR_ARG, what, NULL, NULL, "'%s' is too large", s);
    v *= mul;
    if (v < lo || v > hi)
        return os_fail(OS_ERR_ARG, what, NULL, NULL, "%llu is outside [%llu, %llu]", v,
                       (unsigned long long)lo, (unsigned long long)hi);
    *out = v;
    return OS_OK;
}

OsStatus os_parse_f64(double *out, const char *s, double lo, double hi, const char *what) {
    if (!s || !*s) return os_fail(OS_ERR_ARG, what, NULL, NULL, "empty value");
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    while (end && isspace((unsigned char)*end)) end++;
    if (errno || end == s || *end || !isfinite(v))
        return os_fail(OS_ERR_ARG, what, NULL, NULL, "'%s' is not a finite number", s);
    if (v < lo || v > hi)
        return os_fail(OS_ERR_ARG, what, NULL, NULL, "%g is outside [%g, %g]", v, lo, hi);
    *out = v;
    return OS_OK;
}

int os_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 31 || lb > 31) return 99;
    int d[32][32];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

double os_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double os_thread_cpu_now(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return os_now();
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t os_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024u; /* Linux reports KiB */
}

/* ---- tracked temporary paths ----------------------------------------------------------
 * A singly linked list whose nodes are never freed, only reused, so the signal handler can
 * walk it at any moment: a node is filled in while its state is 0 (free) and published by
 * setting state last; the handler only reads nodes whose state is non-zero. orchsim is
 * single-threaded (sweep workers are processes), so no lock is needed. */
struct OsTmp {
    struct OsTmp *next;
    volatile sig_atomic_t state; /* 0 free, 1 being written, 2 complete (rename deferred) */
    int is_dir;
    uint64_t seq;                /* open order; also tells a reused node from its old owner */
    char *tmp;                   /* owned: the path to remove */
    char *final;                 /* owned: where a ready file goes (NULL for plain tracking) */
};
static struct OsTmp *volatile g_tmp_head;
static uint64_t g_tmp_seq;
static int g_hold_depth;
static volatile sig_atomic_t g_handlers;

static void put_str(int fd, const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

/* Async-signal-safe: unlink/rmdir/write/_exit only. */
static void on_fatal_signal(int sig) {
    unsigned removed = 0;
    for (struct OsTmp *t = g_tmp_head; t; t = t->next) {
        if (!t->state || !t->tmp) continue;
        if (t->is_dir ? rmdir(t->tmp) == 0 : unlink(t->tmp) == 0) removed++;
    }
    char num[16], *p = num + sizeof num;
    *--p = '\0';
    unsigned v = removed;
    do *--p = (char)('0' + v % 10); while ((v /= 10) && p > num);
    const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal";
    put_str(2, "\norchsim: interrupted by ");
    put_str(2, name);
    put_str(2, ": removed ");
    put_str(2, p);
    put_str(2, " temporary file(s); existing outputs were left as they were\n");
    _exit(128 + sig);
}

static void install_handlers(void) {
    if (g_handlers) return;
    g_handlers = 1;
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < OS_ARRAY_LEN(sigs); i++) {
        struct sigaction old, sa;
        if (sigaction(sigs[i], NULL, &old) != 0) continue;
        if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler != SIG_DFL) continue; /* someone else's */
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigfillset(&sa.sa_mask); /* no second signal while cleaning up */
        sigaction(sigs[i], &sa, NULL);
    }
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static OsTmp *track(const char *path, const char *final, int is_dir, int state) {
    char *tp = dup_str(path), *fp = final ? dup_str(final) : NULL;
    if (!tp || (final && !fp)) {
        free(tp);
        free(fp);
        return NULL;
    }
    struct OsTmp *t = NULL;
    int fresh = 0;
    for (struct OsTmp *n = g_tmp_head; n; n = n->next)
        if (!n->state) {
            t = n;
            break;
        }
    if (t) {
        free(t->tmp);
        free(t->final);
    } else {
        t = calloc(1, sizeof *t);
        if (!t) {
            free(tp);
            free(fp);
            return NULL;
        }
        fresh = 1;
    }
    t->tmp = tp;
    t->final = fp;
    t->is_dir = is_dir;
    t->seq = ++g_tmp_seq;
    atomic_signal_fence(memory_order_seq_cst);
    if (fresh) { /* a new node: link it in, fully built */
        t->next = g_tmp_head;
        atomic_signal_fence(memory_order_seq_cst);
        g_tmp_head = t;
    }
    atomic_signal_fence(memory_order_seq_cst);
    t->state = state;
    install_handlers();
    return t;
}

OsTmp *os_tmp_track(const char *path, int is_dir) { return track(path, NULL, is_dir, 1); }

void os_tmp_untrack(OsTmp *t) {
    if (t) t->state = 0;
}

void os_tmp_forget_all(void) {
    for (struct OsTmp *t = g_tmp_head; t; t = t->next) t->state = 0;
    g_hold_depth = 0;
}

size_t os_tmp_count(void) {
    size_t n = 0;
    for (struct OsTmp *t = g_tmp_head; t; t = t->next) n += t->state != 0;
    return n;
}

/* The registry entry of f, if it still belongs to f. */
static struct OsTmp *entry_of(const OsOutFile *f) {
    struct OsTmp *t = f->track;
    return t && t->state && t->seq == f->track_seq ? t : NULL;
}

/* ---- inputs --------------------------------------------------------------------------- */

#define OS_MAX_INPUTS 64
static struct {
    dev_t dev;
    ino_t ino;
    unsigned refs;
} g_inputs[OS_MAX_INPUTS];
static size_t g_n_inputs;

void os_input_note(const char *path) {
    struct stat sb;
    if (!path || stat(path, &sb) != 0) return;
    for (size_t i = 0; i < g_n_inputs; i++)
        if (g_inputs[i].dev == sb.st_dev && g_inputs[i].ino == sb.st_ino) {
            g_inputs[i].refs++;
            return;
        }
    if (g_n_inputs < OS_MAX_INPUTS) {
        g_inputs[g_n_inputs].dev = sb.st_dev;
        g_inputs[g_n_inputs].ino = sb.st_ino;
        g_inputs[g_n_inputs].refs = 1;
        g_n_inputs++;
    }
}

void os_input_drop(const char *path) {
    struct stat sb;
    if (!path || stat(path, &sb) != 0) return;
    for (size_t i = 0; i < g_n_inputs; i++)
        if (g_inputs[i].dev == sb.st_dev && g_inputs[i].ino == sb.st_ino) {
            if (--g_inputs[i].refs == 0) g_inputs[i] = g_inputs[--g_n_inputs];
            return;
        }
}

void os_inputs_forget(void) { g_n_inputs = 0; }

static int is_input(const struct stat *sb) {
    for (size_t i = 0; i < g_n_inputs; i++)
        if (g_inputs[i].dev == sb->st_dev && g_inputs[i].ino == sb->st_ino) return 1;
    return 0;
}

/* ---- outputs --------------------------------------------------------------------------- */

typedef enum { OUT_TEMP, OUT_IN_PLACE, OUT_STDOUT } OutMode;

/* Decide how path is written and where a renamed file goes (final, cap bytes). */
static OsStatus plan_output(OutMode *mode, char *final, size_t cap, const char *path, int open_stdio) {
    struct stat sb, lsb;
    if (!path || !*path) return os_fail(OS_ERR_ARG, "output", NULL, NULL, "empty output path");
    if (strlen(path) >= cap - 40) return os_fail(OS_ERR_ARG, path, NULL, NULL, "path too long");
    if (!strcmp(path, "-")) {
        if (!open_stdio)
            return os_fail(OS_ERR_ARG, path, NULL, "give a file name", "this output cannot go to standard output");
        *mode = OUT_STDOUT;
        snprintf(final, cap, "-");
        return OS_OK;
    }
    int exists = stat(path, &sb) == 0;
    if (!exists && errno != ENOENT) {
        int e = errno;
        return os_fail(OS_ERR_IO, path, NULL, "check the path", "cannot use as an output: %s", strerror(e));
    }
    if (!exists && lstat(path, &lsb) == 0)
        return os_fail(OS_ERR_IO, path, NULL, "remove the link or point it somewhere that exists",
                       "is a symbolic link to a missing file");
    if (exists && is_input(&sb))
        return os_fail(OS_ERR_ARG, path, NULL, "write the output to another file",
                       "is also an input of this command: refusing to replace it");
    if (exists && S_ISDIR(sb.st_mode))
        return os_fail(OS_ERR_ARG, path, NULL, "give a file name inside it", "is a directory");
    if (exists && !S_ISREG(sb.st_mode)) {
        if (!open_stdio)
            return os_fail(OS_ERR_ARG, path, NULL, "write to a regular file",
                           "is a device or FIFO: this output (HDF5) needs a regular file");
        *mode = OUT_IN_PLACE;
        snprintf(final, cap, "%s", path);
        return OS_OK;
    }
    *mode = OUT_TEMP;
    /* a symlink to a regular file: replace its target, keep the link */
    if (exists && lstat(path, &lsb) == 0 && S_ISLNK(lsb.st_mode)) {
        char *rp = realpath(path, NULL);
        if (!rp || strlen(rp) >= cap - 40) {
            free(rp);
            return os_fail(OS_ERR_IO, path, NULL, NULL, "cannot resolve the symbolic link");
        }
        snprintf(final, cap, "%s", rp);
        free(rp);
    } else {
        snprintf(final, cap, "%s", path);
    }
    /* the directory must exist (checked here, so a command can fail before its work) */
    char dir[4096];
    const char *slash = strrchr(final, '/');
    if (slash) {
        size_t n = (size_t)(slash - final);
        snprintf(dir, sizeof dir, "%.*s", (int)(n ? n : 1), final);
    } else {
        snprintf(dir, sizeof dir, ".");
    }
    struct stat db;
    if (stat(dir, &db) != 0 || !S_ISDIR(db.st_mode)) {
        int e = errno;
        return os_fail(OS_ERR_IO, path, NULL, "create the directory first",
                       "the directory '%s' does not exist%s%s", dir, e == ENOENT ? "" : ": ",
                       e == ENOENT ? "" : strerror(e));
    }
    /* another output of this process writing the same file */
    for (struct OsTmp *t = g_tmp_head; t; t = t->next)
        if (t->state && t->final && !strcmp(t->final, final))
            return os_fail(OS_ERR_ARG, path, NULL, "give each output its own file",
                           "is already an output of this command");
    return OS_OK;
}

OsStatus os_output_check(const char *path, int open_stdio) {
    OutMode mode;
    char final[4096];
    return plan_output(&mode, final, sizeof final, path, open_stdio);
}

OsStatus os_outfile_open(OsOutFile *f, const char *path, int open_stdio) {
    OsStatus st = OS_OK;
    OutMode mode;
    memset(f, 0, sizeof *f);
    OS_CHECK(plan_output(&mode, f->path, sizeof f->path, path, open_stdio));
    if (mode == OUT_STDOUT) {
        f->in_place = 1;
        f->fp = stdout;
        snprintf(f->tmp, sizeof f->tmp, "-");
        return OS_OK;
    }
    if (mode == OUT_IN_PLACE) {
        f->in_place = 1;
        snprintf(f->tmp, sizeof f->tmp, "%s", f->path);
        f->fp = fopen(f->path, "w");
        if (!f->fp)
            OS_FAIL(OS_ERR_IO, path, NULL, NULL, "cannot open for writing: %s", strerror(errno));
        return OS_OK;
    }
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld", f->path, (long)getpid());
    /* tracked before it exists, so a signal in between cannot leave it behind */
    f->track = track(f->tmp, f->path, 0, 1);
    if (f->track) f->track_seq = f->track->seq;
    int fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EEXIST) { /* left by an earlier process with our pid */
        unlink(f->tmp);
        fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    }
    if (fd < 0) {
        int e = errno;
        os_tmp_untrack(entry_of(f));
        f->track = NULL;
        f->tmp[0] = '\0';
        OS_FAIL(OS_ERR_IO, path, NULL, "check the directory is writable and has free space",
                "cannot create '%s.tmp.%ld': %s", f->path, (long)getpid(), strerror(e));
    }
    if (open_stdio) {
        f->fp = fdopen(fd, "w");
        if (!f->fp) {
            int e = errno;
            close(fd);
            os_outfile_abort(f);
            OS_FAIL(OS_ERR_IO, path, NULL, NULL, "cannot open for writing: %s", strerror(e));
        }
    } else {
        close(fd); /* the caller's library (HDF5) truncates and writes it */
    }
fail:
    return st;
}

/* Rename one ready entry into place. */
static OsStatus rename_entry(struct OsTmp *t) {
    OsStatus st = OS_OK;
    if (rename(t->tmp, t->final) != 0) {
        int e = errno;
        unlink(t->tmp);
        st = os_fail(OS_ERR_IO, t->final, NULL, NULL, "cannot move into place: %s", strerror(e));
    }
    t->state = 0;
    return st;
}

OsStatus os_outfile_commit(OsOutFile *f) {
    OsStatus st = OS_OK;
    if (f->fp) {
        int bad = fflush(f->fp) != 0;
        int e = errno;
        bad |= ferror(f->fp) != 0;
        if (f->fp != stdout) {
            if (fclose(f->fp) != 0 && !bad) {
                bad = 1;
                e = errno;
            }
        }
        f->fp = NULL;
        if (bad) {
            if (!f->in_place) os_outfile_abort(f);
            f->tmp[0] = '\0';
            return os_fail(OS_ERR_IO, f->path, NULL, e == ENOSPC || e == EFBIG || e == EDQUOT ? "free some disk space" : NULL,
                           "write failed: %s", e ? strerror(e) : "I/O error");
        }
    }
    if (f->in_place) {
        f->tmp[0] = '\0';
        return OS_OK;
    }
    struct OsTmp *t = entry_of(f);
    if (!f->tmp[0]) return OS_OK; /* already committed or aborted */
    if (g_hold_depth > 0 && t) {
        t->state = 2; /* renamed by the outermost os_outputs_release */
    } else if (t) {
        st = rename_entry(t);
    } else if (rename(f->tmp, f->path) != 0) { /* untracked (out of memory): rename now */
        int e = errno;
        unlink(f->tmp);
        st = os_fail(OS_ERR_IO, f->path, NULL, NULL, "cannot move into place: %s", strerror(e));
    }
    f->tmp[0] = '\0';
    f->track = NULL;
    return st;
}

void os_outfile_abort(OsOutFile *f) {
    if (!f) return;
    if (f->fp && f->fp != stdout) fclose(f->fp);
    f->fp = NULL;
    if (!f->in_place && f->tmp[0]) {
        unlink(f->tmp);
        os_tmp_untrack(entry_of(f));
    }
    f->track = NULL;
    f->tmp[0] = '\0';
}

uint64_t os_outputs_hold(void) {
    g_hold_depth++;
    return g_tmp_seq;
}

OsStatus os_outputs_release(uint64_t mark, OsStatus st) {
    if (g_hold_depth > 0) g_hold_depth--;
    if (st != OS_OK && st != OS_DONE) {
        for (struct OsTmp *t = g_tmp_head; t; t = t->next)
            if (t->state == 2 && t->seq > mark) {
                unlink(t->tmp);
                t->state = 0;
            }
        return st;
    }
    if (g_hold_depth > 0) return st;
    /* commit in open order: find the smallest ready seq each time (few outputs) */
    OsStatus cst = OS_OK;
    for (;;) {
        struct OsTmp *next = NULL;
        for (struct OsTmp *t = g_tmp_head; t; t = t->next)
            if (t->state == 2 && (!next || t->seq < next->seq)) next = t;
        if (!next) break;
        if (cst != OS_OK) {
            unlink(next->tmp);
            next->state = 0;
            continue;
        }
        cst = rename_entry(next);
    }
    return cst != OS_OK ? cst : st;
}

void os_escape(char *out, size_t cap, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    if (!cap) return;
    for (size_t i = 0; i < len && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            if (n + 1 >= cap) break;
            out[n++] = (char)c;
        } else {
            if (n + 4 >= cap) break;
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
}

static int g_progress_force;
void os_progress_force(int on) { g_progress_force = on; }

void os_progress_init(OsProgress *p, const char *label, uint64_t total) {
    p->label = label;
    p->total = total ? total : 1;
    p->last = 0.0;
    /* os_progress_force: 1 always, -1 never (--no-progress), 0 when stderr is a terminal */
    p->enabled = g_progress_force > 0 || (g_progress_force == 0 && isatty(STDERR_FILENO));
}

void os_progress_update(OsProgress *p, uint64_t done) {
    if (!p->enabled) return;
    double now = os_now();
    if (done < p->total && now - p->last < 0.1) return;
    p->last = now;
    int pct = (int)(100.0 * (double)done / (double)p->total);
    if (pct > 100) pct = 100;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%s [%s] %3d%% (%llu/%llu)", p->label, bar, pct, (unsigned long long)done,
            (unsigned long long)p->total);
    fflush(stderr);
}

void os_progress_done(OsProgress *p) {
    if (!p->enabled) return;
    p->last = 0.0;
    os_progress_update(p, p->total);
    fputc('\n', stderr);
}

void os_arena_init(OsArena *a) { memset(a, 0, sizeof *a); }
void os_arena_free(OsArena *a) {
    free(a->base);
    memset(a, 0, sizeof *a);
}
OsStatus os_arena_reserve(OsArena *a, size_t bytes) {
    size_t need = a->used + bytes + 64;
    if (need <= a->cap) return OS_OK;
    size_t cap = a->cap ? a->cap : 4096;
    while (cap < need) cap *= 2;
    unsigned char *nb = realloc(a->base, cap);
    if (!nb) return os_fail(OS_ERR_NOMEM, "memory", "arena", NULL, "cannot grow arena to %zu bytes", cap);
    a->base = nb;
    a->cap = cap;
    return OS_OK;
}
void *os_arena_alloc(OsArena *a, size_t bytes) {
    size_t off = (a->used + 63u) & ~(size_t)63u;
    if (!a->base || off + bytes > a->cap) return NULL;
    a->used = off + bytes;
    memset(a->base + off, 0, bytes);
    return a->base + off;
}
void os_arena_reset(OsArena *a) { a->used = 0; }

OsStatus os_grow(void **p, size_t *cap, size_t n, size_t sz) {
    if (n <= *cap) return OS_OK;
    size_t c = *cap ? *cap : 16;
    while (c < n) c *= 2;
    void *np = realloc(*p, c * sz);
    if (!np) return os_fail(OS_ERR_NOMEM, "memory", NULL, NULL, "cannot grow array to %zu items", c);
    *p = np;
    *cap = c;
    return OS_OK;
}
