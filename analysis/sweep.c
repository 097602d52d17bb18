/* sweep.c — see sweep.h. The grid, one point's replay, and the fork()-based pool.
 * Why processes and not threads: the HDF5 library as packaged (serial) is not thread-safe and
 * each replay reads the trace, so every worker is a child process with its own HDF5 state.
 * A child runs one point, writes its row and series to "<csv>.parts.XXXXXX/point-<i>" and
 * _exit()s; the parent waits for it, then reads the file back in grid order. */
#include "analysis/sweep.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analysis/sweep_h5.h"
#include "base/util.h"
#include "sim/cost.h"
#include "sim/model.h"
#include "sim/net.h"
#include "sim/policy.h"
#include "sim/replay.h"
#include "traces/trace.h"

#define POINT_MAGIC 0x31505753u /* "SWP1" */

/* ---------------------------------------------------------------- the grid */

void sweep_grid_init(SweepGrid *g) { memset(g, 0, sizeof *g); }

void sweep_options_init(SweepOptions *o) {
    memset(o, 0, sizeof *o);
    o->jobs = 1;
    o->balancer_cost_s = -1.0;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

OsStatus sweep_axis_strs(const char **out, uint32_t *n, char *s, const char *what) {
    OsStatus st = OS_OK;
    char *save = NULL;
    *n = 0;
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = trim(tok);
        if (!*tok) continue;
        if (*n >= SWEEP_MAX_AXIS)
            OS_FAIL(OS_ERR_ARG, what, NULL, "split the sweep", "more than %d values", SWEEP_MAX_AXIS);
        out[(*n)++] = tok;
    }
    if (*n == 0) OS_FAIL(OS_ERR_ARG, what, NULL, "give a comma-separated list", "empty list");
fail:
    return st;
}

OsStatus sweep_axis_u32(uint32_t *out, uint32_t *n, char *s, uint32_t lo, uint32_t hi, const char *what) {
    OsStatus st = OS_OK;
    const char *parts[SWEEP_MAX_AXIS];
    OS_CHECK(sweep_axis_strs(parts, n, s, what));
    for (uint32_t i = 0; i < *n; i++) {
        uint64_t v;
        OS_CHECK(os_parse_u64(&v, parts[i], lo, hi, what));
        out[i] = (uint32_t)v;
    }
fail:
    return st;
}

/* Grid-file keys: a registry, so the parser, its errors and FORMATS.md list the same keys. */
typedef enum { KEY_STRS, KEY_U32, KEY_STEPS } KeyKind;
typedef struct {
    const char *key;
    KeyKind kind;
    size_t arr, cnt; /* offsets in SweepGrid */
} GridKey;

static const GridKey GRID_KEYS[] = {
    {"policies", KEY_STRS, offsetof(SweepGrid, policies), offsetof(SweepGrid, n_policies)},
    {"models", KEY_STRS, offsetof(SweepGrid, models), offsetof(SweepGrid, n_models)},
    {"setups", KEY_STRS, offsetof(SweepGrid, setups), offsetof(SweepGrid, n_setups)},
    {"gpus", KEY_U32, offsetof(SweepGrid, gpus), offsetof(SweepGrid, n_gpus)},
    {"gpus_per_node", KEY_U32, offsetof(SweepGrid, gpus_per_node), offsetof(SweepGrid, n_gpus_per_node)},
    {"tp", KEY_U32, offsetof(SweepGrid, tp), offsetof(SweepGrid, n_tp)},
    {"steps", KEY_STEPS, offsetof(SweepGrid, steps), 0},
};

OsStatus sweep_grid_load(SweepGrid *g, char **text, const char *path) {
    OsStatus st = OS_OK;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    *text = NULL;
    FILE *fp = fopen(path, "r");
    if (!fp) OS_FAIL(OS_ERR_IO, path, NULL, "check the path", "cannot open: %s", strerror(errno));
    for (;;) {
        OS_CHECK(os_grow((void **)&buf, &cap, n + 4096 + 1, 1));
        size_t r = fread(buf + n, 1, cap - n - 1, fp);
        n += r;
        if (!r) break;
    }
    buf[n] = '\0';
    size_t lineno = 0;
    /* strtok_r on "\n" skips empty lines, so count lines by hand for messages */
    char *line = buf;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *l = trim(line);
        if (*l) {
            char where[64];
            snprintf(where, sizeof where, "line %zu", lineno);
            char *eq = strchr(l, '=');
            if (!eq) OS_FAIL(OS_ERR_FORMAT, path, where, "write key = value, value, ...", "no '='");
            *eq = '\0';
            char *key = trim(l), *val = trim(eq + 1);
            const GridKey *k = NULL;
            for (size_t i = 0; i < OS_ARRAY_LEN(GRID_KEYS); i++)
                if (!strcmp(GRID_KEYS[i].key, key)) k = &GRID_KEYS[i];
            if (!k)
                OS_FAIL(OS_ERR_FORMAT, path, where,
                        "keys: policies, models, setups, gpus, gpus_per_node, tp, steps",
                        "unknown key '%s'", key);
            char *base = (char *)g;
            char what[160];
            snprintf(what, sizeof what, "%s: %s: %s", path, where, k->key);
            if (k->kind == KEY_STEPS) {
                uint64_t v;
                if (g->steps)
                    OS_FAIL(OS_ERR_ARG, path, where, "give it in one place", "steps also given on the command line");
                OS_CHECK(os_parse_u64(&v, val, 0, UINT64_MAX, what));
                g->steps = v;
            } else {
                uint32_t *cnt = (uint32_t *)(base + k->cnt);
                if (*cnt)
                    OS_FAIL(OS_ERR_ARG, path, where, "give each axis in one place",
                            "'%s' also given on the command line (or twice)", k->key);
                if (k->kind == KEY_STRS) OS_CHECK(sweep_axis_strs((const char **)(base + k->arr), cnt, val, what));
                else OS_CHECK(sweep_axis_u32((uint32_t *)(base + k->arr), cnt, val, 1, 1u << 24, what));
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    *text = buf;
    buf = NULL;
fail:
    if (fp) fclose(fp);
    free(buf);
    return st;
}

OsStatus sweep_grid_finish(SweepGrid *g) {
    OsStatus st = OS_OK;
    if (!g->n_setups) g->setups[g->n_setups++] = "ddp";
    if (!g->n_gpus_per_node) g->gpus_per_node[g->n_gpus_per_node++] = 8;
    if (!g->n_tp) g->tp[g->n_tp++] = 1;
    if (!g->n_policies) OS_FAIL(OS_ERR_ARG, "sweep", "--policies", "e.g. --policies none,lpt,post", "no policies given");
    if (!g->n_models) OS_FAIL(OS_ERR_ARG, "sweep", "--models", "e.g. --models vl-7b", "no models given");
    if (!g->n_gpus) OS_FAIL(OS_ERR_ARG, "sweep", "--gpus", "e.g. --gpus 64,512", "no GPU counts given");
fail:
    return st;
}

size_t sweep_grid_size(const SweepGrid *g) {
    return (size_t)g->n_models * g->n_setups * g->n_gpus_per_node * g->n_tp * g->n_gpus * g->n_policies;
}

void sweep_grid_point(SweepPoint *p, const SweepGrid *g, size_t i) {
    p->policy = g->policies[i % g->n_policies];
    i /= g->n_policies;
    p->gpus = g->gpus[i % g->n_gpus];
    i /= g->n_gpus;
    p->tp = g->tp[i % g->n_tp];
    i /= g->n_tp;
    p->gpus_per_node = g->gpus_per_node[i % g->n_gpus_per_node];
    i /= g->n_gpus_per_node;
    p->setup = g->setups[i % g->n_setups];
    i /= g->n_setups;
    p->model = g->models[i % g->n_models];
}

void sweep_point_describe(char *buf, size_t cap, const SweepPoint *p) {
    snprintf(buf, cap, "policy=%s model=%s setup=%s gpus=%u gpus_per_node=%u tp=%u", p->policy,
             p->model, p->setup, p->gpus, p->gpus_per_node, p->tp);
}

/* ---------------------------------------------------------------- one point */

typedef struct {
    const char *name;
    TrainSetup setup;
} SetupName;
static const SetupName SETUPS[] = {{"ddp", SETUP_DDP}, {"fsdp", SETUP_FSDP}};

typedef struct {
    RunSeries *series;
    int phase_col[REPLAY_MAX_PHASES];
    uint32_t P;
} Collector;

static OsStatus collect_step(const StepResult *r, void *user) {
    Collector *c = user;
    return run_series_push(c->series, r, c->phase_col, c->P);
}

OsStatus sweep_run_point(RunRow *row, RunSeries *series, const SweepPoint *p, const SweepGrid *g,
                         const SweepOptions *o) {
    OsStatus st = OS_OK;
    Trace *t = NULL;
    ModelSpec *m = NULL;
    Calib *cal = NULL;
    ReplayConfig cfg;
    ReplaySummary sum;
    Collector col = {.series = series};
    runrow_init(row);
    memset(series, 0, sizeof *series);
    m = calloc(1, sizeof *m);
    ALLOC_CHECK(m);
    cal = calloc(1, sizeof *cal);
    ALLOC_CHECK(cal);
    OS_CHECK(model_resolve(m, p->model));
    if (o->calibration) OS_CHECK(calib_load(cal, o->calibration));
    else calib_default_h100(cal);
    const Policy *pol = policy_find(p->policy);
    if (!pol) {
        const char *s = policy_suggest(p->policy);
        char hint[128];
        snprintf(hint, sizeof hint, "did you mean '%s'?", s ? s : "none");
        OS_FAIL(OS_ERR_ARG, "--policies", p->policy, hint, "unknown policy");
    }
    const SetupName *su = NULL;
    for (size_t i = 0; i < OS_ARRAY_LEN(SETUPS); i++)
        if (!strcmp(SETUPS[i].name, p->setup)) su = &SETUPS[i];
    if (!su) OS_FAIL(OS_ERR_ARG, "--setups", p->setup, "use ddp or fsdp", "unknown training setup");
    replay_config_init(&cfg);
    OS_CHECK(cluster_init(&cfg.cluster, p->gpus, p->gpus_per_node, p->tp));
    replay_apply_calib(&cfg.cluster, cal); /* the same machine figures compare and replay use */
    cfg.model = m;
    cfg.calib = cal;
    cfg.policy = pol;
    cfg.setup = su->setup;
    /* A sweep over GPU counts re-deals every global batch to the grid point's DP: always regroup
     * (FORMATS.md, run-level notes). */
    cfg.regroup = 1;
    cfg.n_steps = g->steps;
    cfg.progress = 0;
    if (o->balancer_cost_s >= 0.0) cfg.balancer_cost_s = o->balancer_cost_s;
    cfg.recompute = o->recompute;
    cfg.layout = o->padded ? ATTN_PADDED : ATTN_VARLEN;
    /* the balancers aim at what the time model charges */
    cfg.popt.objective = o->padded ? OBJ_PADDED : OBJ_COST;
    OS_CHECK(runtable_phase_cols(col.phase_col, &col.P, m));
    OS_CHECK(trace_open(&t, o->trace_path));
    OS_CHECK(replay_run(&sum, &cfg, t, collect_step, &col));
    OS_CHECK(runrow_fill(row, &sum, &cfg, p->policy, p->model, p->setup, series->step_s, series->n));
    OS_CHECK(runrow_add_cis(row, series));
fail:
    trace_close(t);
    free(m);
    free(cal);
    return st;
}

/* ---------------------------------------------------------------- the pool */

void sweep_report_free(SweepReport *r) {
    if (!r) return;
    free(r->failures);
    memset(r, 0, sizeof *r);
}

static int write_all(FILE *fp, const void *p, size_t n) { return fwrite(p, 1, n, fp) == n; }

/* Child side: run the point and write "<status i32><payload>" into file; returns the exit code. */
static int child_run(const char *file, const SweepPoint *p, const SweepGrid *g, const SweepOptions *o) {
    RunRow row;
    RunSeries ser;
    os_clear_error();
    OsStatus st = sweep_run_point(&row, &ser, p, g, o);
    FILE *fp = fopen(file, "wb");
    if (!fp) return 3;
    int32_t s32 = (int32_t)st;
    int ok = write_all(fp, &(uint32_t){POINT_MAGIC}, 4) && write_all(fp, &s32, 4);
    if (st == OS_OK) {
        uint32_t mask = 0;
        for (int k = 0; k < SCHEMA_N_PHASES; k++) mask |= ser.imbalance[k] ? 1u << k : 0u;
        ok = ok && write_all(fp, &row, sizeof row) && write_all(fp, &ser.n, 8) && write_all(fp, &mask, 4) &&
             write_all(fp, ser.step_s, ser.n * 8) && write_all(fp, ser.mfu, ser.n * 8);
        for (int k = 0; k < SCHEMA_N_PHASES; k++)
            if (ser.imbalance[k]) ok = ok && write_all(fp, ser.imbalance[k], ser.n * 8);
    } else {
        const char *msg = os_has_error() ? os_last_error() : os_status_name(st);
        uint32_t len = (uint32_t)strlen(msg);
        ok = ok && write_all(fp, &len, 4) && write_all(fp, msg, len);
    }
    ok = fclose(fp) == 0 && ok;
    run_series_free(&ser);
    return ok ? (st == OS_OK ? 0 : 1) : 3;
}

static int read_all(FILE *fp, void *p, size_t n) { return fread(p, 1, n, fp) == n; }

/* Parent side: read a point's file. *failed = 1 with msg filled when the point failed. */
static OsStatus read_point(RunRow *row, RunSeries *ser, int *failed, OsStatus *pst, char *msg,
                           size_t cap, const char *file) {
    OsStatus st = OS_OK;
    uint32_t magic = 0;
    int32_t s32 = 0;
    memset(ser, 0, sizeof *ser);
    *failed = 0;
    FILE *fp = fopen(file, "rb");
    if (!fp || !read_all(fp, &magic, 4) || magic != POINT_MAGIC || !read_all(fp, &s32, 4))
        OS_FAIL(OS_ERR_INTERNAL, file, NULL, NULL, "worker result missing or truncated");
    if (s32 != OS_OK) {
        uint32_t len = 0;
        *failed = 1;
        *pst = (OsStatus)s32;
        if (!read_all(fp, &len, 4)) OS_FAIL(OS_ERR_INTERNAL, file, NULL, NULL, "worker error truncated");
        size_t k = OS_MIN((size_t)len, cap - 1);
        if (!read_all(fp, msg, k)) OS_FAIL(OS_ERR_INTERNAL, file, NULL, NULL, "worker error truncated");
        msg[k] = '\0';
        goto fail;
    }
    uint32_t mask = 0;
    if (!read_all(fp, row, sizeof *row) || !read_all(fp, &ser->n, 8) || !read_all(fp, &mask, 4) ||
        ser->n > (1ull << 32))
        OS_FAIL(OS_ERR_INTERNAL, file, NULL, NULL, "worker result truncated");
    size_t bytes = (size_t)(ser->n ? ser->n : 1) * sizeof(double);
    ser->cap = ser->n;
    ser->step_s = malloc(bytes);
    ALLOC_CHECK(ser->step_s);
    ser->mfu = malloc(bytes);
    ALLOC_CHECK(ser->mfu);
    int ok = read_all(fp, ser->step_s, ser->n * 8) && read_all(fp, ser->mfu, ser->n * 8);
    for (int k = 0; k < SCHEMA_N_PHASES && ok; k++) {
        if (!(mask & (1u << k))) continue;
        ser->imbalance[k] = malloc(bytes);
        ALLOC_CHECK(ser->imbalance[k]);
        ok = read_all(fp, ser->imbalance[k], ser->n * 8);
    }
    if (!ok) OS_FAIL(OS_ERR_INTERNAL, file, NULL, NULL, "worker series truncated");
fail:
    if (fp) fclose(fp);
    if (st != OS_OK) run_series_free(ser);
    return st;
}

typedef struct {
    pid_t pid;
    size_t point;
} Worker;

static void point_file(char *buf, size_t cap, const char *dir, size_t i) {
    snprintf(buf, cap, "%s/point-%06zu", dir, i);
}

static OsStatus add_failure(SweepReport *rep, size_t *cap, const SweepPoint *p, const char *msg) {
    OsStatus st = OS_OK;
    OS_CHECK(os_grow((void **)&rep->failures, cap, rep->n_failed + 1, sizeof *rep->failures));
    SweepFailure *f = &rep->failures[rep->n_failed++];
    sweep_point_describe(f->params, sizeof f->params, p);
    snprintf(f->error, sizeof f->error, "%s", msg);
fail:
    return st;
}

OsStatus sweep_run(SweepReport *rep, const SweepGrid *g, const SweepOptions *o) {
    OsStatus st = OS_OK, first_bad = OS_OK;
    char dir[4200] = "";
    Worker *work = NULL;
    RunRow *rows = NULL;
    RunSeries *series = NULL;
    size_t fail_cap = 0, n_rows = 0;
    OsOutFile out = {0};
    OsProgress prog;
    char file[4300];
    OsTmp *dir_track = NULL, **pt_track = NULL;
    int infra = 0; /* a worker result lost (killed, or its file unwritable) */
    /* the CSV and the HDF5 copy are committed together, or neither (util.h) */
    uint64_t out_mark = os_outputs_hold();
    memset(rep, 0, sizeof *rep);
    double t0 = os_now();
    size_t N = sweep_grid_size(g);
    uint32_t jobs = o->jobs ? o->jobs : 1;
    rep->n_points = N;
    if (N == 0) OS_FAIL(OS_ERR_ARG, "sweep", NULL, "give every axis at least one value", "empty grid");
    /* Open the trace once here so a bad path is one clear error, not N identical failures. The
     * handle is closed before any fork: children start with no open HDF5 objects. */
    {
        /* bad output paths (the trace itself among them) fail here, before any worker runs */
        Trace *t = NULL;
        OS_CHECK(trace_open(&t, o->trace_path));
        OsStatus cs = os_output_check(o->csv_path, 1);
        if (cs == OS_OK && o->h5_path) cs = os_output_check(o->h5_path, 0);
        trace_close(t);
        OS_CHECK(cs);
    }
    snprintf(dir, sizeof dir, "%s.parts.XXXXXX", o->csv_path);
    if (!mkdtemp(dir)) {
        int e = errno;
        dir[0] = '\0';
        OS_FAIL(OS_ERR_IO, o->csv_path, NULL, "check the output directory exists and is writable",
                "cannot create a scratch directory beside it: %s", strerror(e));
    }
    dir_track = os_tmp_track(dir, 1); /* a signal removes the point files, then the directory */
    pt_track = calloc(N, sizeof *pt_track);
    ALLOC_CHECK(pt_track);
    work = calloc(jobs, sizeof *work);
    ALLOC_CHECK(work);
    rows = calloc(N, sizeof *rows);
    ALLOC_CHECK(rows);
    series = calloc(N, sizeof *series);
    ALLOC_CHECK(series);

    os_progress_init(&prog, "sweep", N);
    if (!o->progress) prog.enabled = 0;
    size_t next = 0, done = 0, active = 0;
    while (done < N) {
        while (active < jobs && next < N) {
            SweepPoint p;
            sweep_grid_point(&p, g, next);
            point_file(file, sizeof file, dir, next);
            fflush(stdout);
            fflush(stderr);
            pt_track[next] = os_tmp_track(file, 0);
            pid_t pid = fork();
            if (pid < 0) OS_FAIL(OS_ERR_IO, "sweep", "fork", "lower --jobs", "cannot start a worker: %s", strerror(errno));
            if (pid == 0) {
                os_tmp_forget_all(); /* the parent's temp files are the parent's to remove */
                _exit(child_run(file, &p, g, o)); /* a worker ends here, never returns */
            }
            for (uint32_t w = 0; w < jobs; w++)
                if (!work[w].pid) {
                    work[w] = (Worker){pid, next};
                    break;
                }
            active++;
            next++;
        }
        /* Poll our own children only (never waitpid(-1): a caller may have others). */
        int reaped = 0;
        for (uint32_t w = 0; w < jobs; w++) {
            if (!work[w].pid) continue;
            int ws = 0;
            pid_t r = waitpid(work[w].pid, &ws, WNOHANG);
            if (r == 0) continue;
            size_t i = work[w].point;
            SweepPoint p;
            sweep_grid_point(&p, g, i);
            work[w].pid = 0;
            active--;
            done++;
            reaped = 1;
            point_file(file, sizeof file, dir, i);
            char msg[1024] = "";
            int failed = 0;
            OsStatus pst = OS_ERR_INTERNAL;
            if (r < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) == 3) {
                failed = 1;
                infra = 1; /* not the point's fault: the sweep cannot vouch for its rows */
                if (r > 0 && WIFSIGNALED(ws)) snprintf(msg, sizeof msg, "worker killed by signal %d", WTERMSIG(ws));
                else snprintf(msg, sizeof msg, "worker could not write its result");
            } else {
                os_clear_error();
                OsStatus rs = read_point(&rows[i], &series[i], &failed, &pst, msg, sizeof msg, file);
                if (rs != OS_OK) {
                    failed = 1;
                    infra = 1;
                    snprintf(msg, sizeof msg, "%s", os_last_error());
                    os_clear_error();
                }
            }
            remove(file);
            os_tmp_untrack(pt_track[i]);
            pt_track[i] = NULL;
            if (failed) {
                OS_CHECK(add_failure(rep, &fail_cap, &p, msg));
                if (first_bad == OS_OK) first_bad = pst;
                rows[i].steps = UINT64_MAX; /* marks "no row" below */
            } else {
                rep->n_ok++;
            }
            os_progress_update(&prog, done);
        }
        if (!reaped) nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    os_progress_done(&prog);
    if (infra) /* a worker died or could not hand back its result (a full disk): commit nothing */
        OS_FAIL(OS_ERR_IO, o->csv_path, NULL, "check free disk space beside the output",
                "%zu of %zu grid points lost their results (first: %s)", rep->n_failed, N,
                rep->n_failed ? rep->failures[0].error : "?");

    /* compact the successful rows, in grid order */
    for (size_t i = 0; i < N; i++) {
        if (rows[i].steps == UINT64_MAX) continue;
        if (n_rows != i) {
            rows[n_rows] = rows[i];
            series[n_rows] = series[i];
            memset(&series[i], 0, sizeof series[i]);
        }
        n_rows++;
    }
    runtable_speedups(rows, n_rows);
    OS_CHECK(os_outfile_open(&out, o->csv_path, 1));
    runtable_write_header(out.fp);
    for (size_t i = 0; i < n_rows; i++) runtable_write_row(out.fp, &rows[i]);
    OS_CHECK(os_outfile_commit(&out)); /* deferred: renamed with the HDF5 copy at release */
    if (o->h5_path) OS_CHECK(sweep_h5_write(o->h5_path, o->trace_path, rows, series, n_rows));
    rep->written = 1;
    rep->wall_s = os_now() - t0;
    if (rep->n_failed)
        OS_FAIL(first_bad == OS_OK ? OS_ERR_INTERNAL : first_bad, o->csv_path, NULL,
                "the failed points are listed above; fix or drop them and run again",
                "%zu of %zu grid points failed (the other %zu rows were written)", rep->n_failed, N,
                n_rows);
fail:
    if (work) {
        /* an error in the parent: do not leave workers running */
        for (uint32_t w = 0; w < jobs; w++)
            if (work[w].pid) waitpid(work[w].pid, NULL, 0);
    }
    if (out.fp) os_outfile_abort(&out);
    if (series)
        for (size_t i = 0; i < N; i++) run_series_free(&series[i]);
    if (dir[0]) {
        for (size_t i = 0; i < N; i++) {
            point_file(file, sizeof file, dir, i);
            remove(file);
            if (pt_track) os_tmp_untrack(pt_track[i]);
        }
        rmdir(dir);
        os_tmp_untrack(dir_track);
    }
    free(pt_track);
    free(series);
    free(rows);
    free(work);
    {
        /* failed grid points keep the rows that ran (documented: the sweep's one partial
         * result, CSV and HDF5 copy together); any other error commits nothing */
        OsStatus rs = os_outputs_release(out_mark, rep->written ? OS_OK : st);
        if (st == OS_OK || (rep->written && rs != OS_OK)) st = rs;
        if (rs != OS_OK) rep->written = 0;
    }
    return st;
}
