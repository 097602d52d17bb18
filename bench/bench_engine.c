/* bench_engine.c — events/s of the event engine: binary heap vs its naive O(n) twin.
 * Workload ("rank"): D ranks, each with exactly one pending event; a handler schedules that
 * rank's next event at now + a pseudo-random 1..1000 ns, so the queue holds D events all run
 * long and every event is one pop + one push. The naive twin runs fewer events (its cost per
 * event grows with D); ratios are heap / naive measured in the same run. After timing, the
 * heap replays the naive run's event count and must produce the same (time, rank) order hash.
 * Usage: bench_engine [--csv] [--events N] [--naive-budget N] [--reps N] [--min-rate M]. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "sim/engine.h"

typedef struct {
    uint64_t rng;    /* xorshift64* state */
    uint64_t done;   /* events run */
    uint64_t target; /* stop after this many */
    uint64_t hash;   /* FNV-style fold of (now, rank) in run order */
} Ctx;

typedef struct {
    Ctx *ctx;
    uint32_t rank;
} RankEv;

static inline uint64_t rng_next(uint64_t *x) {
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ull;
}

static void on_rank(Engine *e, EventId id, void *data) {
    (void)id;
    RankEv *r = data;
    Ctx *c = r->ctx;
    c->hash = (c->hash ^ ((uint64_t)engine_now(e) * 31 + r->rank)) * 1099511628211ull;
    if (++c->done >= c->target) {
        engine_stop(e);
        return;
    }
    /* r is reused as the next event's data: the handler owns it once it runs. */
    if (!engine_at(e, engine_now(e) + 1 + (SimTime)(rng_next(&c->rng) % 1000), on_rank, r, NULL))
        engine_fail(e, OS_ERR_NOMEM);
}

/* One run of `events` events over D ranks; seconds of engine_run in *secs. */
static OsStatus run_once(double *secs, uint64_t *hash, EngineKind kind, uint32_t D,
                         uint64_t events) {
    OsStatus st = OS_OK;
    Engine *e = NULL;
    Ctx ctx = {.rng = 0x9e3779b97f4a7c15ull, .target = events, .hash = 1469598103934665603ull};
    RankEv *ranks = calloc(D, sizeof *ranks);
    ALLOC_CHECK(ranks);
    OS_CHECK(engine_create(&e, kind, D));
    for (uint32_t d = 0; d < D; d++) {
        ranks[d] = (RankEv){&ctx, d};
        if (!engine_at(e, (SimTime)(rng_next(&ctx.rng) % 1000), on_rank, &ranks[d], NULL))
            OS_FAIL(OS_ERR_NOMEM, "bench_engine", "engine_at", NULL, "cannot schedule");
    }
    double t0 = os_now();
    OS_CHECK(engine_run(e));
    *secs = os_now() - t0;
    *hash = ctx.hash;
    if (ctx.done != events)
        OS_FAIL(OS_ERR_INTERNAL, "bench_engine", "events", NULL, "ran %llu of %llu events",
                (unsigned long long)ctx.done, (unsigned long long)events);
fail:
    engine_destroy(e);
    free(ranks);
    return st;
}

/* Best of `reps` timed runs after one untimed warm-up at a tenth of the size. */
static OsStatus measure(double *rate, uint64_t *hash, EngineKind kind, uint32_t D, uint64_t events,
                        uint32_t reps) {
    OsStatus st = OS_OK;
    double secs, best = 0.0;
    uint64_t h;
    OS_CHECK(run_once(&secs, &h, kind, D, events / 10 + 1));
    for (uint32_t i = 0; i < reps; i++) {
        OS_CHECK(run_once(&secs, hash, kind, D, events));
        double r = (double)events / secs;
        if (r > best) best = r;
    }
    *rate = best;
fail:
    return st;
}

typedef struct {
    const char *name;
    int has_arg;
    const char *metavar, *help;
} BenchOpt;

static const BenchOpt OPTS[] = {
    {"csv", 0, NULL, "comma-separated output"},
    {"events", 1, "N", "heap events per timed run (default 10M)"},
    {"naive-budget", 1, "N", "naive twin: events x D per run (default 1G key compares)"},
    {"reps", 1, "N", "timed repetitions, best is reported (default 3)"},
    {"min-rate", 1, "M", "fail when the heap runs below M million events/s (default 0)"},
    {"help", 0, NULL, "this text"},
};

static void usage(FILE *fp) {
    fprintf(fp, "usage: bench_engine [options]\n"
                "Events/s of the heap engine vs the naive O(n) twin (rank workload).\n");
    for (size_t i = 0; i < OS_ARRAY_LEN(OPTS); i++) {
        char lhs[64];
        snprintf(lhs, sizeof lhs, "--%s%s%s", OPTS[i].name, OPTS[i].metavar ? " " : "",
                 OPTS[i].metavar ? OPTS[i].metavar : "");
        fprintf(fp, "  %-18s %s\n", lhs, OPTS[i].help);
    }
}

int main(int argc, char **argv) {
    OsStatus st = OS_OK;
    int csv = 0;
    uint64_t events = 10000000, budget = 1000000000, reps = 3;
    double min_rate = 0.0;
    static const uint32_t sizes[] = {64, 2560, 20480};
    struct option lopts[OS_ARRAY_LEN(OPTS) + 1];
    memset(lopts, 0, sizeof lopts);
    for (size_t i = 0; i < OS_ARRAY_LEN(OPTS); i++)
        lopts[i] = (struct option){OPTS[i].name, OPTS[i].has_arg, NULL, (int)i};
    setlinebuf(stdout);
    int o;
    while ((o = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        if (o == '?') { usage(stderr); return 2; }
        const char *name = OPTS[o].name;
        if (!strcmp(name, "csv")) {
            csv = 1;
        } else if (!strcmp(name, "help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(name, "events")) {
            OS_CHECK(os_parse_u64(&events, optarg, 1000, 1ull << 40, "--events"));
        } else if (!strcmp(name, "naive-budget")) {
            OS_CHECK(os_parse_u64(&budget, optarg, 1000, 1ull << 50, "--naive-budget"));
        } else if (!strcmp(name, "reps")) {
            OS_CHECK(os_parse_u64(&reps, optarg, 1, 100, "--reps"));
        } else if (!strcmp(name, "min-rate")) {
            OS_CHECK(os_parse_f64(&min_rate, optarg, 0, 1e6, "--min-rate"));
        }
    }
    if (optind < argc)
        OS_FAIL(OS_ERR_ARG, "bench_engine", argv[optind], "see --help", "unexpected argument");

    if (csv) {
        printf("pending,kind,events,mevents_per_s,ratio_vs_naive\n");
    } else {
        printf("# bench_engine: rank workload, one pending event per rank, best of %llu runs\n",
               (unsigned long long)reps);
        printf("# %8s %6s %12s %14s %10s\n", "pending", "kind", "events", "rate", "vs naive");
        printf("# %8s %6s %12s %14s %10s\n", "events", "", "count", "Mevents/s", "x");
    }
    int bad = 0;
    for (size_t i = 0; i < OS_ARRAY_LEN(sizes); i++) {
        uint32_t D = sizes[i];
        uint64_t nev = OS_MAX(budget / D, 10000), hh, hn, hcheck;
        nev = OS_MIN(nev, events);
        double rh, rn, dummy;
        OS_CHECK(measure(&rn, &hn, ENGINE_NAIVE, D, nev, (uint32_t)reps));
        OS_CHECK(measure(&rh, &hh, ENGINE_HEAP, D, events, (uint32_t)reps));
        /* check after timing: the heap replays the naive run's events in the same order */
        OS_CHECK(run_once(&dummy, &hcheck, ENGINE_HEAP, D, nev));
        if (hcheck != hn) {
            fprintf(stderr, "bench_engine: error: D=%u: heap and naive event orders differ\n", D);
            bad = 1;
        }
        if (rh < min_rate * 1e6) {
            fprintf(stderr, "bench_engine: error: D=%u: heap %.2f Mevents/s < --min-rate %.2f\n",
                    D, rh / 1e6, min_rate);
            bad = 1;
        }
        const char *fmt = csv ? "%u,%s,%llu,%.3f,%.2f\n" : "  %8u %6s %12llu %14.3f %10.2f\n";
        printf(fmt, D, "naive", (unsigned long long)nev, rn / 1e6, 1.0);
        printf(fmt, D, "heap", (unsigned long long)events, rh / 1e6, rh / rn);
    }
    return bad;
fail:
    fprintf(stderr, "bench_engine: error: %s: %s\n", os_status_name(st), os_last_error());
    return 1;
}
