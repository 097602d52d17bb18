/* util.c — see util.h. */
#include "base/util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

OsStatus os_outfile_open(OsOutFile *f, const char *path, int open_stdio) {
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path)
        return os_fail(OS_ERR_ARG, path, NULL, NULL, "path too long");
    strcpy(f->path, path);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld", path, (long)getpid());
    if (open_stdio) {
        f->fp = fopen(f->tmp, "w");
        if (!f->fp)
            return os_fail(OS_ERR_IO, path, NULL, "check the directory exists and is writable",
                           "cannot create: %s", strerror(errno));
    }
    return OS_OK;
}

OsStatus os_outfile_commit(OsOutFile *f) {
    if (f->fp) {
        int bad = ferror(f->fp);
        bad |= fclose(f->fp) != 0;
        f->fp = NULL;
        if (bad) {
            remove(f->tmp);
            return os_fail(OS_ERR_IO, f->path, NULL, "check free disk space", "write failed");
        }
    }
    if (rename(f->tmp, f->path) != 0) {
        int e = errno;
        remove(f->tmp);
        return os_fail(OS_ERR_IO, f->path, NULL, NULL, "cannot move into place: %s", strerror(e));
    }
    f->tmp[0] = '\0';
    return OS_OK;
}

void os_outfile_abort(OsOutFile *f) {
    if (f->fp) fclose(f->fp);
    f->fp = NULL;
    if (f->tmp[0]) remove(f->tmp);
    f->tmp[0] = '\0';
}

static int g_progress_force;
void os_progress_force(int on) { g_progress_force = on; }

void os_progress_init(OsProgress *p, const char *label, uint64_t total) {
    p->label = label;
    p->total = total ? total : 1;
    p->last = 0.0;
    p->enabled = g_progress_force || isatty(STDERR_FILENO);
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
