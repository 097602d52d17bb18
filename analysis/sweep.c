/* sweep.c — see sweep.h. The grid, its file, the library's point runner and sweep_agree; the
 * pool (worker processes or MPI ranks) and the outputs are in sweep_pool.c. */
#include "analysis/sweep.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "sim/cost.h"
#include "sim/model.h"
#include "sim/net.h"
#include "sim/policy.h"
#include "sim/replay.h"
#include "traces/trace.h"

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

OsStatus sweep_axis_policies(const char **out, uint32_t *n, char *s, const char *what) {
    OsStatus st = OS_OK;
    OS_CHECK(sweep_axis_strs(out, n, s, what));
    if (*n == 1 && !strcmp(out[0], "all")) {
        *n = 0;
        for (uint32_t i = 0; i < policy_count() && *n < SWEEP_MAX_AXIS; i++) out[(*n)++] = policy_at(i)->name;
        return OS_OK;
    }
    for (uint32_t i = 0; i < *n; i++) {
        if (!strcmp(out[i], "all"))
            OS_FAIL(OS_ERR_ARG, what, "all", "give 'all' alone, or a list of names", "'all' inside a list");
        if (!strcmp(out[i], "oracle"))
            OS_FAIL(OS_ERR_ARG, what, "oracle", "leave it out: the oracle is a lower bound, not a policy",
                    "not a policy");
        if (!policy_find(out[i])) {
            const char *sug = policy_suggest(out[i]);
            char hint[160];
            if (sug) snprintf(hint, sizeof hint, "did you mean '%s'?", sug);
            else snprintf(hint, sizeof hint, "see `orchsim compare --help` for the policies");
            OS_FAIL(OS_ERR_ARG, what, out[i], hint, "unknown policy");
        }
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(out[j], out[i])) OS_FAIL(OS_ERR_ARG, what, out[i], "name each policy once", "given twice");
    }
fail:
    return st;
}

/* Grid-file keys: a registry, so the parser, its errors and FORMATS.md list the same keys. */
typedef enum { KEY_STRS, KEY_U32, KEY_STEPS, KEY_POLICIES } KeyKind;
typedef struct {
    const char *key;
    KeyKind kind;
    size_t arr, cnt; /* offsets in SweepGrid */
} GridKey;

static const GridKey GRID_KEYS[] = {
    {"policies", KEY_POLICIES, offsetof(SweepGrid, policies), offsetof(SweepGrid, n_policies)},
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
                else if (k->kind == KEY_POLICIES)
                    OS_CHECK(sweep_axis_policies((const char **)(base + k->arr), cnt, val, what));
                else OS_CHECK(sweep_axis_u32((uint32_t *)(base + k->arr), cnt, val, 0, 1u << 24, what));
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
    /* the defaults of replay / compare: every policy, FSDP, 8 GPUs per node, no TP */
    if (!g->n_policies)
        for (uint32_t i = 0; i < policy_count() && g->n_policies < SWEEP_MAX_AXIS; i++)
            g->policies[g->n_policies++] = policy_at(i)->name;
    if (!g->n_setups) g->setups[g->n_setups++] = "fsdp";
    if (!g->n_gpus_per_node) g->gpus_per_node[g->n_gpus_per_node++] = 8;
    if (!g->n_tp) g->tp[g->n_tp++] = 1;
    if (!g->n_models) OS_FAIL(OS_ERR_ARG, "sweep", "--model", "e.g. --model llava-7b,vl-32b", "no models given");
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
    char gpus[24];
    if (p->gpus) snprintf(gpus, sizeof gpus, "%u", p->gpus);
    else snprintf(gpus, sizeof gpus, "trace"); /* --gpus 0: the trace's DP x TP */
    snprintf(buf, cap, "policy=%s model=%s setup=%s gpus=%s gpus_per_node=%u tp=%u", p->policy, p->model,
             p->setup, gpus, p->gpus_per_node, p->tp);
}

/* ---------------------------------------------------------------- one point */

typedef struct {
    const char *name;
    TrainSetup setup;
} SetupName;
static const SetupName SETUPS[] = {{"ddp", SETUP_DDP}, {"fsdp", SETUP_FSDP}, {"fsdp-grad-op", SETUP_FSDP_GRAD_OP}};

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
    if (!su) OS_FAIL(OS_ERR_ARG, "--setup", p->setup, "one of: ddp, fsdp, fsdp-grad-op", "unknown training setup");
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

/* ---------------------------------------------------------------- ranks agree */

OsStatus sweep_agree(const SweepComm *c, OsStatus st) {
    if (!c || c->size <= 1) return st;
    char send[1100], *recv = NULL;
    size_t *counts = NULL;
    OsStatus cs = OS_OK;
    int32_t s32 = (int32_t)st, pick[2] = {-1, 0}; /* the failing rank and its status */
    const char *msg = st == OS_OK ? "" : os_has_error() ? os_last_error() : os_status_name(st);
    uint32_t len = (uint32_t)OS_MIN(strlen(msg), sizeof send - 8);
    memcpy(send, &s32, 4);
    memcpy(send + 4, &len, 4);
    memcpy(send + 8, msg, len);
    if (c->rank == 0 && !(counts = calloc((size_t)c->size, sizeof *counts))) cs = OS_ERR_NOMEM;
    /* every rank takes part even when it failed: nobody waits for a rank that left */
    OsStatus gs = c->gatherv(c->user, send, 8 + len, &recv, counts);
    if (cs == OS_OK) cs = gs;
    char first[1100] = "";
    if (c->rank == 0 && cs == OS_OK) {
        size_t off = 0;
        for (int r = 0; r < c->size; off += counts[r], r++) {
            int32_t rs;
            uint32_t l;
            if (counts[r] < 8) continue;
            memcpy(&rs, recv + off, 4);
            memcpy(&l, recv + off + 4, 4);
            if (rs == OS_OK || pick[0] >= 0) continue;
            pick[0] = r, pick[1] = rs;
            snprintf(first, sizeof first, "%.*s", (int)OS_MIN((size_t)l, counts[r] - 8), recv + off + 8);
        }
    }
    free(recv);
    free(counts);
    OsStatus bs = c->bcast(c->user, pick, sizeof pick);
    if (cs == OS_OK) cs = bs;
    if (cs != OS_OK) return cs; /* MPI itself failed: its error is recorded */
    if (c->rank == 0) {
        if (st != OS_OK || pick[0] < 0) return st;
        return os_fail((OsStatus)pick[1], "sweep", NULL, NULL, "rank %d: %s", pick[0], first);
    }
    return pick[0] >= 0 ? OS_DONE : OS_OK;
}
