/* bench_trace.c — trace I/O throughput and memory: write (generate + write) and read
 * (open + validate-read every step) vl-sft traces of 1M and 10M examples. Each phase of each
 * size runs in a fresh child process (fork) so its peak RSS is its own; the figure to check
 * is that peak RSS stays flat from 1M to 10M (streaming writer and reader).
 * usage: bench_trace [DIR] [SIZES]   (default DIR /tmp, SIZES 1000000,10000000)
 * Exit status non-zero when a child fails or the example count read back is wrong. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "traces/gen.h"
#include "traces/trace.h"

#define BATCH 1000u
#define DP 8u

typedef struct {
    int ok;
    double seconds;
    uint64_t examples;
    uint64_t peak_rss;
} Result;

static int run_gen_only(uint64_t n, Result *r) {
    Gen *g = NULL;
    TraceStep s;
    trace_step_init(&s);
    if (gen_create(&g, "vl-sft", 1) != OS_OK) return 0;
    double t0 = os_now();
    for (uint64_t i = 0; i < n; i++) {
        if (s.n_examples == BATCH) trace_step_clear(&s);
        if (gen_example(g, &s, i) != OS_OK) return 0;
    }
    r->seconds = os_now() - t0;
    r->examples = n;
    gen_destroy(g);
    trace_step_free(&s);
    return 1;
}

static int run_write(const char *path, uint64_t n, Result *r) {
    GenConfig cfg = {"vl-sft", 1, n / BATCH, BATCH, DP, 0, "bench_trace"};
    double t0 = os_now();
    if (gen_write(path, &cfg) != OS_OK) return 0;
    r->seconds = os_now() - t0;
    r->examples = n;
    return 1;
}

static int run_read(const char *path, uint64_t n, Result *r) {
    Trace *t = NULL;
    const TraceStep *s = NULL;
    double t0 = os_now();
    if (trace_open(&t, path) != OS_OK) return 0;
    uint64_t seen = 0;
    OsStatus st;
    while ((st = trace_next_step(t, &s)) == OS_OK) seen += s->n_examples;
    r->seconds = os_now() - t0;
    r->examples = seen;
    trace_close(t);
    return st == OS_DONE && seen == n;
}

typedef int PhaseFn(const char *path, uint64_t n, Result *r);
static int phase_gen(const char *path, uint64_t n, Result *r) { (void)path; return run_gen_only(n, r); }
static const struct {
    const char *name;
    PhaseFn *fn;
} PHASES[] = {{"generate", phase_gen}, {"write", run_write}, {"read", run_read}};

/* Run one phase in a child; the child reports its Result through a pipe. */
static int in_child(PhaseFn *fn, const char *path, uint64_t n, Result *out) {
    int fd[2];
    if (pipe(fd) != 0) return 0;
    pid_t pid = fork();
    if (pid < 0) return 0;
    if (pid == 0) {
        close(fd[0]);
        Result r = {0};
        r.ok = fn(path, n, &r);
        if (!r.ok) fprintf(stderr, "bench_trace: %s\n", os_last_error());
        r.peak_rss = os_peak_rss();
        ssize_t w = write(fd[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r && r.ok ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], out, sizeof *out);
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return got == (ssize_t)sizeof *out && WIFEXITED(status) && WEXITSTATUS(status) == 0 && out->ok;
}

int main(int argc, char **argv) {
    setlinebuf(stdout);
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char sizes_buf[256];
    snprintf(sizes_buf, sizeof sizes_buf, "%s", argc > 2 ? argv[2] : "1000000,10000000");
    int bad = 0;
    printf("# bench_trace: profile vl-sft, global batch %u, dp %u, chunk 65536 rows, deflate 4 + shuffle\n",
           BATCH, DP);
    printf("# %-10s %-9s %12s %10s %14s %12s %12s\n", "examples", "phase", "seconds", "Mex/s", "file_MiB",
           "peak_RSS_MiB", "bytes/ex");
    printf("# %-10s %-9s %12s %10s %14s %12s %12s\n", "count", "-", "s", "1e6/s", "MiB", "MiB", "B");
    for (char *save = NULL, *tok = strtok_r(sizes_buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint64_t n = 0;
        if (os_parse_u64(&n, tok, BATCH, UINT64_MAX, "SIZES") != OS_OK || n % BATCH) {
            fprintf(stderr, "bench_trace: size %s must be a multiple of %u\n", tok, BATCH);
            return 2;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/bench_trace_%" PRIu64 ".h5", dir, n);
        double mib = 0.0;
        for (size_t p = 0; p < sizeof PHASES / sizeof PHASES[0]; p++) {
            Result r = {0};
            if (!in_child(PHASES[p].fn, path, n, &r)) {
                fprintf(stderr, "bench_trace: %s of %" PRIu64 " examples failed\n", PHASES[p].name, n);
                bad = 1;
                continue;
            }
            struct stat sb;
            if (p > 0 && stat(path, &sb) == 0) mib = (double)sb.st_size / (1024.0 * 1024.0);
            printf("  %-10" PRIu64 " %-9s %12.3f %10.3f %14.1f %12.1f %12.2f\n", n, PHASES[p].name, r.seconds,
                   (double)r.examples / r.seconds / 1e6, p > 0 ? mib : 0.0, (double)r.peak_rss / (1024.0 * 1024.0),
                   p > 0 ? mib * 1024.0 * 1024.0 / (double)n : 0.0);
        }
        remove(path);
    }
    return bad;
}
