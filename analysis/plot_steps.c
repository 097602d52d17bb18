/* plot_steps.c — figures drawn from per-step and per-span tables: timeline, imbalance-cdf,
 * validate (formats in analysis/FORMATS.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/csv.h"
#include "analysis/plot_internal.h"
#include "analysis/schema.h"
#include "analysis/stats.h"
#include "base/util.h"
#include "sim/replay.h"

#define MAX_POL 64

static int find_or_add(const char **list, int *n, int max, const char *s) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(list[i], s)) return i;
    if (*n >= max) return -1;
    list[*n] = s;
    return (*n)++;
}


/* "runs/steps_post.csv" -> "steps_post" */
static void stem(char *buf, size_t cap, const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, cap, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = '\0';
}

static unsigned rgb_int(const char *hex) { return (unsigned)strtoul(hex + 1, NULL, 16); }

/* ---------------------------------------------------------------- timeline */

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

typedef struct {
    char dat[4096], marks[4096], title[768], sub[256], yt[8192];
    int nrows, nmarks;
    double xmax;
    unsigned keys; /* bit per TL_KEYS entry present */
    int pipelined; /* rows are (stage, DP rank) workers */
} Panel;

/* Legend entries in drawing order: compute phases, then communication, then idle. */
static const char *const TL_KEYS[] = {"image", "audio", "video", "llm", "sync", "balance", "optimizer", "comm",
                                      "idle", "bubble"};
static const char *const TL_LABELS[] = {"image", "audio", "video", "llm", "sync", "balance", "optimizer",
                                        "communication", "\"idle (waiting)\"", "\"pipeline bubble\""};

void plot_timeline_meta(char *buf, size_t cap, const char *policy, uint64_t step, const char *model,
                        uint32_t gpus) {
    replay_timeline_meta(buf, cap, policy, step, model, gpus); /* the one format replay writes too */
}

/* The "# key: value" lines before a timeline's header (plot_timeline_annotate). */
typedef struct {
    char policy[64], model[256], step[32], gpus[32];
    int ranks;            /* "# ranks: D per stage, K here": the replay's D (0: not said) */
    double mean_compute;  /* "# compute: mean X s per rank over all W" (NaN: not said) */
} TlMeta;

static void read_meta(TlMeta *m, const char *path) {
    memset(m, 0, sizeof *m);
    m->mean_compute = NAN;
    FILE *fp = fopen(path, "r");
    if (!fp) return;
    char line[512];
    while (fgets(line, sizeof line, fp) && line[0] == '#') {
        char key[32], val[300];
        if (sscanf(line, "# %31[a-z]: %299[^\n]", key, val) != 2) continue;
        if (!strcmp(key, "policy")) snprintf(m->policy, sizeof m->policy, "%.63s", val);
        else if (!strcmp(key, "model")) snprintf(m->model, sizeof m->model, "%.255s", val);
        else if (!strcmp(key, "step")) snprintf(m->step, sizeof m->step, "%.31s", val);
        else if (!strcmp(key, "gpus")) snprintf(m->gpus, sizeof m->gpus, "%.31s", val);
        else if (!strcmp(key, "ranks")) m->ranks = atoi(val);
        else if (!strcmp(key, "compute") && sscanf(val, "mean %lf", &m->mean_compute) != 1) m->mean_compute = NAN;
    }
    fclose(fp);
}

/* "post-node, step 0, orch-84b, 2560 GPUs": what the file (or the options) say; the policy
 * falls back to the file name ("timeline_post.csv" -> "post"). */
static void panel_label(char *buf, size_t cap, const TlMeta *m, const PlotOptions *o, const char *path) {
    char st_name[256], gp[48] = "";
    stem(st_name, sizeof st_name, path);
    const char *pol = m->policy[0] ? m->policy : !strncmp(st_name, "timeline_", 9) ? st_name + 9 : st_name;
    const char *model = m->model[0] ? m->model : o->model;
    if (m->gpus[0]) snprintf(gp, sizeof gp, "%s GPUs", m->gpus);
    else if (o->gpus) snprintf(gp, sizeof gp, "%u GPUs", o->gpus);
    size_t k = (size_t)snprintf(buf, cap, "%s", pol);
    if (m->step[0] && k < cap) k += (size_t)snprintf(buf + k, cap - k, ", step %s", m->step);
    if (model && *model && k < cap) k += (size_t)snprintf(buf + k, cap - k, ", %s", model);
    if (gp[0] && k < cap) snprintf(buf + k, cap - k, ", %s", gp);
}

static OsStatus timeline_panel(Panel *pn, const PlotOptions *o, const char *path, int which) {
    OsStatus st = OS_OK;
    CsvTable *t = NULL;
    int *ranks = NULL, *nodes = NULL, *row_of = NULL, *stage = NULL, *replica = NULL;
    double *busy = NULL;
    PlotDat d = {0}, dm = {0};
    OS_CHECK(csv_read(&t, path));
    OS_CHECK(schema_check(t, schema_find("timeline")));
    int c_rank, c_node, c_phase, c_kind, c_s, c_e;
    OS_CHECK(csv_require(&c_rank, t, "rank"));
    OS_CHECK(csv_require(&c_node, t, "node"));
    OS_CHECK(csv_require(&c_phase, t, "phase"));
    OS_CHECK(csv_require(&c_kind, t, "kind"));
    OS_CHECK(csv_require(&c_s, t, "start_s"));
    OS_CHECK(csv_require(&c_e, t, "end_s"));
    int c_op = csv_col(t, "op"), c_stage = csv_col(t, "stage"), c_rep = csv_col(t, "replica");
    size_t n = csv_n_rows(t);
    if (!n) OS_FAIL(OS_ERR_FORMAT, path, NULL, "replay with --timeline", "no spans");
    /* distinct ranks, sorted */
    int max_rank = 0;
    for (size_t i = 0; i < n; i++) {
        double r, s, e;
        OS_CHECK(csv_num(&r, t, i, (size_t)c_rank));
        if (!(r >= 0 && r < 1e7 && r == floor(r)))
            OS_FAIL(OS_ERR_FORMAT, path, "rank", "a DP rank index", "line %zu: bad rank", csv_line(t, i));
        OS_CHECK(csv_num(&s, t, i, (size_t)c_s));
        OS_CHECK(csv_num(&e, t, i, (size_t)c_e));
        if (!isfinite(s) || !isfinite(e) || e < s)
            OS_FAIL(OS_ERR_FORMAT, path, "start_s/end_s", "end_s >= start_s, both given", "line %zu: bad span",
                    csv_line(t, i));
        const char *kind = csv_str(t, i, (size_t)c_kind);
        if (strcmp(kind, "idle") && strcmp(kind, "comm") && strcmp(kind, "compute"))
            OS_FAIL(OS_ERR_FORMAT, path, "kind", "compute, comm or idle", "line %zu: unknown kind '%s'",
                    csv_line(t, i), kind);
        if ((int)r > max_rank) max_rank = (int)r;
    }
    size_t nr1 = (size_t)max_rank + 1;
    row_of = malloc(nr1 * sizeof *row_of);
    nodes = malloc(nr1 * sizeof *nodes);
    ranks = malloc(nr1 * sizeof *ranks);
    busy = calloc(nr1, sizeof *busy);
    stage = calloc(nr1, sizeof *stage);
    replica = calloc(nr1, sizeof *replica);
    ALLOC_CHECK(stage);
    ALLOC_CHECK(replica);
    ALLOC_CHECK(row_of);
    ALLOC_CHECK(nodes);
    ALLOC_CHECK(ranks);
    ALLOC_CHECK(busy);
    for (int r = 0; r <= max_rank; r++) row_of[r] = -2, nodes[r] = 0;
    int R = 0;
    for (size_t i = 0; i < n; i++) {
        double r, nd, s, e;
        OS_CHECK(csv_num(&r, t, i, (size_t)c_rank));
        OS_CHECK(csv_num(&nd, t, i, (size_t)c_node));
        OS_CHECK(csv_num(&s, t, i, (size_t)c_s));
        OS_CHECK(csv_num(&e, t, i, (size_t)c_e));
        if (row_of[(int)r] == -2) ranks[R++] = (int)r, row_of[(int)r] = -1;
        nodes[(int)r] = isfinite(nd) ? (int)nd : 0;
        if (c_stage >= 0 && c_rep >= 0) { /* pipelines: a row is a worker (stage, DP rank) */
            double sg, rp;
            OS_CHECK(csv_num(&sg, t, i, (size_t)c_stage));
            OS_CHECK(csv_num(&rp, t, i, (size_t)c_rep));
            stage[(int)r] = isfinite(sg) && sg >= 0 && sg < 1e6 ? (int)sg : 0;
            replica[(int)r] = isfinite(rp) && rp >= 0 && rp < 1e7 ? (int)rp : (int)r;
            if (stage[(int)r] > 0) pn->pipelined = 1;
        }
        if (!strcmp(csv_str(t, i, (size_t)c_kind), "compute")) busy[(int)r] += e - s;
    }
    qsort(ranks, (size_t)R, sizeof *ranks, cmp_int);
    /* The slowest rank (most compute in the step: the one every other rank waits for) and the
     * fastest are always drawn, marked, beside evenly spaced others (first and last included);
     * ties go to the lower rank. */
    int slow = ranks[0], fast = ranks[0];
    for (int k = 1; k < R; k++) {
        if (busy[ranks[k]] > busy[slow]) slow = ranks[k];
        if (busy[ranks[k]] < busy[fast]) fast = ranks[k];
    }
    int K = R <= (int)o->max_ranks ? R : (int)o->max_ranks, picked = 0;
    if (K < 2 && R > 1) K = 2;
    int *pos = malloc((size_t)K * sizeof *pos); /* indices into ranks[] of the rows */
    ALLOC_CHECK(pos);
    for (int k = 0; k < K; k++) pos[k] = K == 1 ? 0 : (int)((long long)k * (R - 1) / (K - 1));
    /* an extreme not among the evenly spaced ranks takes the place of the nearest one (never
     * the other extreme's), so the panel keeps K rows */
    for (int e = 0; e < 2 && K < R; e++) {
        int want = e ? fast : slow, other = e ? slow : fast, wi = 0, have = 0;
        for (int k = 0; k < R; k++)
            if (ranks[k] == want) wi = k;
        for (int k = 0; k < K; k++) have |= pos[k] == wi;
        if (have) continue;
        int best = -1;
        for (int k = 0; k < K; k++) {
            if (ranks[pos[k]] == other) continue;
            if (best < 0 || abs(pos[k] - wi) < abs(pos[best] - wi)) best = k;
        }
        if (best >= 0) pos[best] = wi;
    }
    for (int k = 0; k < K; k++) row_of[ranks[pos[k]]] = 0;
    free(pos);
    for (int k = 0; k < R; k++) /* rows in rank order */
        if (row_of[ranks[k]] >= 0) row_of[ranks[k]] = picked++;
    char name[64];
    snprintf(name, sizeof name, "timeline_%d.dat", which);
    OS_CHECK(plot_dat_open(&d, o, name));
    fprintf(d.fp, "# spans of %s: row start_s end_s rgb (rows = the ranks in the ytics)\n", path);
    pn->xmax = 0.0;
    pn->keys = 0;
    for (size_t i = 0; i < n; i++) {
        double r, s, e;
        OS_CHECK(csv_num(&r, t, i, (size_t)c_rank));
        OS_CHECK(csv_num(&s, t, i, (size_t)c_s));
        OS_CHECK(csv_num(&e, t, i, (size_t)c_e));
        pn->xmax = OS_MAX(pn->xmax, e);
        int row = row_of[(int)r];
        if (row < 0) continue;
        const char *kind = csv_str(t, i, (size_t)c_kind), *phase = csv_str(t, i, (size_t)c_phase);
        /* a pipeline's bubble is idle time of its own colour (program.c names those spans) */
        const char *op = c_op >= 0 ? csv_str(t, i, (size_t)c_op) : "";
        const char *key = !strcmp(kind, "idle") ? (!strcmp(op, "bubble") ? "bubble" : "idle")
                          : !strcmp(kind, "comm") ? "comm" : phase;
        for (size_t k = 0; k < OS_ARRAY_LEN(TL_KEYS); k++)
            if (!strcmp(TL_KEYS[k], key)) pn->keys |= 1u << k;
        fprintf(d.fp, "%d %.9g %.9g %u\n", row, s, e, rgb_int(plot_phase_color(key)));
    }
    OS_CHECK(plot_dat_close(&d));
    snprintf(pn->dat, sizeof pn->dat, "%s", d.path);
    /* the marks: "row label" at the right end of the slowest and fastest rows */
    snprintf(name, sizeof name, "timeline_%d_marks.dat", which);
    OS_CHECK(plot_dat_open(&dm, o, name));
    fprintf(dm.fp, "# row label: the slowest and the fastest rank (compute time in the step)\n");
    fprintf(dm.fp, "%d \"slowest: %.3f s compute\"\n", row_of[slow], busy[slow]);
    if (fast != slow) fprintf(dm.fp, "%d \"fastest: %.3f s compute\"\n", row_of[fast], busy[fast]);
    pn->nmarks = fast != slow ? 2 : 1;
    OS_CHECK(plot_dat_close(&dm));
    snprintf(pn->marks, sizeof pn->marks, "%s", dm.path);
    TlMeta meta;
    read_meta(&meta, path);
    char label[512];
    panel_label(label, sizeof label, &meta, o, path);
    double mean = 0.0;
    for (int k = 0; k < R; k++) mean += busy[ranks[k]] / R;
    if (isfinite(meta.mean_compute)) mean = meta.mean_compute; /* over every rank, not the file's sample */
    snprintf(pn->title, sizeof pn->title, "%s", label);
    if (meta.ranks > 0 && R < meta.ranks && !pn->pipelined)
        snprintf(pn->sub, sizeof pn->sub,
                 "%d of %d ranks: slowest %d, fastest %d, evenly spaced; mean compute %.2f s", picked, meta.ranks, slow,
                 fast, mean);
    else if (picked < R)
        snprintf(pn->sub, sizeof pn->sub,
                 "%d of %d ranks: evenly spaced, plus the slowest (%d) and the fastest (%d); mean compute %.3f s", picked, R,
                 slow, fast, mean);
    else
        snprintf(pn->sub, sizeof pn->sub, "all %d ranks: the slowest is %d, the fastest %d; mean compute %.3f s", R, slow,
                 fast, mean);
    size_t k = (size_t)snprintf(pn->yt, sizeof pn->yt, "(");
    for (int r = 0; r < R && k < sizeof pn->yt; r++) {
        int rk = ranks[r];
        if (row_of[rk] < 0) continue;
        const char *mark = rk == slow ? " slowest" : rk == fast ? " fastest" : "";
        if (pn->pipelined)
            k += (size_t)snprintf(pn->yt + k, sizeof pn->yt - k, "%s's%d r%d (n%d)%s' %d", k > 1 ? ", " : "", stage[rk],
                                  replica[rk], nodes[rk], mark, row_of[rk]);
        else
            k += (size_t)snprintf(pn->yt + k, sizeof pn->yt - k, "%s'%d (n%d)%s' %d", k > 1 ? ", " : "", rk, nodes[rk],
                                  mark, row_of[rk]);
    }
    if (k < sizeof pn->yt) snprintf(pn->yt + k, sizeof pn->yt - k, ")");
    pn->nrows = picked;
fail:
    plot_dat_abort(&d);
    plot_dat_abort(&dm);
    free(ranks);
    free(nodes);
    free(stage);
    free(replica);
    free(row_of);
    free(busy);
    csv_destroy(t);
    return st;
}

OsStatus plot_timeline(const PlotOptions *o, const char *const *inputs, int n_inputs) {
    OsStatus st = OS_OK;
    Panel *pn = calloc(2, sizeof *pn);
    ALLOC_CHECK(pn);
    for (int i = 0; i < n_inputs; i++) OS_CHECK(timeline_panel(&pn[i], o, inputs[i], i + 1));
    unsigned keys = pn[0].keys | (n_inputs > 1 ? pn[1].keys : 0);
    const char *kn[OS_ARRAY_LEN(TL_KEYS)], *kc[OS_ARRAY_LEN(TL_KEYS)];
    int nk = 0;
    for (size_t k = 0; k < OS_ARRAY_LEN(TL_KEYS); k++)
        if (keys & (1u << k)) kn[nk] = TL_LABELS[k], kc[nk++] = plot_phase_color(TL_KEYS[k]);
    char kw[512], cw[512];
    plot_join_words(kw, sizeof kw, kn, nk);
    plot_join_words(cw, sizeof cw, kc, nk);
    PlotVars *v = malloc(sizeof *v);
    ALLOC_CHECK(v);
    pv_init(v);
    pv_int(v, "npanel", n_inputs);
    pv_str(v, "data1", pn[0].dat);
    pv_str(v, "data2", n_inputs > 1 ? pn[1].dat : pn[0].dat);
    pv_str(v, "marks1", pn[0].marks);
    pv_str(v, "marks2", n_inputs > 1 ? pn[1].marks : pn[0].marks);
    pv_str(v, "title1", pn[0].title);
    pv_str(v, "title2", n_inputs > 1 ? pn[1].title : "");
    pv_str(v, "sub1", pn[0].sub);
    pv_str(v, "sub2", n_inputs > 1 ? pn[1].sub : "");
    pv_str(v, "yt1", pn[0].yt);
    pv_str(v, "yt2", n_inputs > 1 ? pn[1].yt : pn[0].yt);
    pv_int(v, "nrows1", pn[0].nrows);
    pv_int(v, "nrows2", n_inputs > 1 ? pn[1].nrows : pn[0].nrows);
    pv_num(v, "xmax", OS_MAX(pn[0].xmax, n_inputs > 1 ? pn[1].xmax : 0.0) * 1.01);
    pv_str(v, "title", "Per-rank timeline of one step (same time axis in every panel)");
    pv_str(v, "ylab", pn[0].pipelined || (n_inputs > 1 && pn[1].pipelined) ? "stage s, DP rank r (node)" : "DP rank (node)");
    pv_int(v, "nkey", nk);
    pv_str(v, "keynames", kw);
    pv_str(v, "keycolors", cw);
    st = plot_run_gnuplot(o, "timeline", "timeline", v);
    free(v);
fail:
    free(pn);
    return st;
}

/* ---------------------------------------------------------------- imbalance CDF */

typedef struct {
    double *x;
    size_t n, cap;
} Series;

OsStatus plot_imbalance_cdf(const PlotOptions *o, const char *const *inputs, int n_inputs) {
    OsStatus st = OS_OK;
    CsvTable *tabs[64] = {0};
    Series ser[MAX_POL][SCHEMA_N_PHASES];
    memset(ser, 0, sizeof ser);
    const char *pols[MAX_POL];
    int np = 0;
    PlotDat d = {0};
    double *ps = NULL;
    size_t ps_cap = 0;
    for (int f = 0; f < n_inputs; f++) {
        OS_CHECK(csv_read(&tabs[f], inputs[f]));
        CsvTable *t = tabs[f];
        int c_pol, c_ph[SCHEMA_N_PHASES];
        OS_CHECK(csv_require(&c_pol, t, "policy"));
        for (int k = 0; k < SCHEMA_N_PHASES; k++) {
            char col[64];
            snprintf(col, sizeof col, "%s_imbalance", SCHEMA_PHASES[k]);
            OS_CHECK(csv_require(&c_ph[k], t, col));
        }
        for (size_t r = 0; r < csv_n_rows(t); r++) {
            int p = find_or_add(pols, &np, MAX_POL, csv_str(t, r, (size_t)c_pol));
            if (p < 0) OS_FAIL(OS_ERR_RANGE, inputs[f], "policy", NULL, "more than %d policies", MAX_POL);
            for (int k = 0; k < SCHEMA_N_PHASES; k++) {
                double x;
                OS_CHECK(csv_num(&x, t, r, (size_t)c_ph[k]));
                if (isnan(x)) continue; /* the model has no such phase */
                Series *s = &ser[p][k];
                OS_CHECK(os_grow((void **)&s->x, &s->cap, s->n + 1, sizeof *s->x));
                s->x[s->n++] = x;
            }
        }
    }
    /* one policy order in every figure: ord[i] = the series of the i-th policy drawn */
    const char *sorted[MAX_POL];
    int ord[MAX_POL];
    memcpy(sorted, pols, (size_t)np * sizeof *sorted);
    plot_sort_policies(sorted, np);
    for (int i = 0; i < np; i++)
        for (int p = 0; p < np; p++)
            if (sorted[i] == pols[p]) ord[i] = p;
    const char *phases[SCHEMA_N_PHASES];
    int nph = 0;
    for (int k = 0; k < SCHEMA_N_PHASES; k++) {
        int any = 0;
        for (int p = 0; p < np; p++) any |= ser[p][k].n > 0;
        if (!any) continue;
        phases[nph++] = SCHEMA_PHASES[k];
        char name[64];
        snprintf(name, sizeof name, "imbalance_cdf_%s.dat", SCHEMA_PHASES[k]);
        OS_CHECK(plot_dat_open(&d, o, name));
        fprintf(d.fp, "# empirical CDF of the %s phase's imbalance (max/mean), one block per policy\n"
                      "# columns: imbalance fraction_of_steps_at_or_below\n", SCHEMA_PHASES[k]);
        for (int i = 0; i < np; i++) {
            int p = ord[i];
            Series *s = &ser[p][k];
            fprintf(d.fp, "# policy %s: %zu steps\n", pols[p], s->n);
            if (s->n) {
                OS_CHECK(os_grow((void **)&ps, &ps_cap, s->n, sizeof *ps));
                OS_CHECK(stats_ecdf(s->x, ps, s->x, s->n));
                fprintf(d.fp, "%.9g 0\n", s->x[0]); /* start the staircase on the axis */
                for (size_t i = 0; i < s->n; i++) fprintf(d.fp, "%.9g %.9g\n", s->x[i], ps[i]);
            } else {
                fprintf(d.fp, "? ?\n"); /* keeps the block index of the next policy */
            }
            fprintf(d.fp, "\n\n");
        }
        OS_CHECK(plot_dat_close(&d));
    }
    if (!nph) OS_FAIL(OS_ERR_FORMAT, inputs[0], "<phase>_imbalance", "replay with --csv", "no imbalance values");
    char phw[256];
    plot_join_words(phw, sizeof phw, phases, nph);
    PlotVars *v = malloc(sizeof *v);
    ALLOC_CHECK(v);
    pv_init(v);
    pv_str(v, "datadir", o->outdir);
    pv_int(v, "nphase", nph);
    pv_str(v, "phases", phw);
    pv_policies(v, sorted, np);
    pv_int(v, "rows", nph > 2 ? 2 : 1);
    pv_int(v, "cols", nph > 2 ? 2 : nph);
    pv_str(v, "title", "Per-phase load imbalance across steps (CDF; further left = better balanced)");
    st = plot_run_gnuplot(o, "imbalance-cdf", "imbalance-cdf", v);
    free(v);
fail:
    plot_dat_abort(&d);
    for (int p = 0; p < MAX_POL; p++)
        for (int k = 0; k < SCHEMA_N_PHASES; k++) free(ser[p][k].x);
    for (int f = 0; f < 64; f++) csv_destroy(tabs[f]);
    free(ps);
    return st;
}

/* ---------------------------------------------------------------- validate */

OsStatus plot_validate(const PlotOptions *o, const char *const *inputs, int n_inputs) {
    OsStatus st = OS_OK;
    CsvTable *t = NULL;
    double *pred = NULL, *meas = NULL;
    PlotDat d = {0};
    (void)n_inputs;
    OS_CHECK(csv_read(&t, inputs[0]));
    OS_CHECK(schema_check(t, schema_find("validate")));
    int c_pol, c_p, c_m;
    OS_CHECK(csv_require(&c_pol, t, "policy"));
    OS_CHECK(csv_require(&c_p, t, "predicted_s"));
    OS_CHECK(csv_require(&c_m, t, "measured_s"));
    size_t n = csv_n_rows(t), m = 0;
    pred = malloc((n ? n : 1) * sizeof *pred);
    meas = malloc((n ? n : 1) * sizeof *meas);
    ALLOC_CHECK(pred);
    ALLOC_CHECK(meas);
    const char *pols[MAX_POL];
    int np = 0;
    double lim = 0.0;
    for (size_t r = 0; r < n; r++) {
        double p, me;
        OS_CHECK(csv_num(&p, t, r, (size_t)c_p));
        OS_CHECK(csv_num(&me, t, r, (size_t)c_m));
        if (!isfinite(p) || !isfinite(me)) continue; /* a step without a measurement */
        if (find_or_add(pols, &np, MAX_POL, csv_str(t, r, (size_t)c_pol)) < 0)
            OS_FAIL(OS_ERR_RANGE, inputs[0], "policy", NULL, "more than %d policies", MAX_POL);
        pred[m] = p;
        meas[m++] = me;
        lim = OS_MAX(lim, OS_MAX(p, me));
    }
    if (!m) OS_FAIL(OS_ERR_FORMAT, inputs[0], "measured_s", "run orchsim validate on a GPU", "no measured steps");
    plot_sort_policies(pols, np);
    PredError pe;
    OS_CHECK(stats_pred_error(&pe, pred, meas, m));
    OS_CHECK(plot_dat_open(&d, o, "validate.dat"));
    fprintf(d.fp, "# predicted_s measured_s, one block per policy\n");
    for (int p = 0; p < np; p++) {
        fprintf(d.fp, "# policy %s\n", pols[p]);
        for (size_t r = 0; r < n; r++) {
            double a, b;
            OS_CHECK(csv_num(&a, t, r, (size_t)c_p));
            OS_CHECK(csv_num(&b, t, r, (size_t)c_m));
            if (isfinite(a) && isfinite(b) && !strcmp(csv_str(t, r, (size_t)c_pol), pols[p]))
                fprintf(d.fp, "%.9g %.9g\n", a, b);
        }
        fprintf(d.fp, "\n\n");
    }
    OS_CHECK(plot_dat_close(&d));
    char sub[256], sub2[256];
    snprintf(sub, sizeof sub, "%zu steps: mean |error| %.1f%%, max |error| %.1f%%, bias %+.1f%%", pe.n,
             100.0 * pe.mape, 100.0 * pe.max_abs_err, 100.0 * pe.mean_err);
    snprintf(sub2, sizeof sub2, "least-squares fit: measured = %.3g + %.3g x predicted, R2 = %.3f", pe.fit_a,
             pe.fit_b, pe.r2);
    PlotVars *v = malloc(sizeof *v);
    ALLOC_CHECK(v);
    pv_init(v);
    pv_str(v, "datafile", d.path);
    pv_policies(v, pols, np);
    pv_num(v, "lim", lim * 1.08);
    pv_str(v, "title", "Simulator prediction vs GPU measurement, per step");
    pv_str(v, "subtitle", sub);
    pv_str(v, "subtitle2", sub2);
    st = plot_run_gnuplot(o, "validate", "validate", v);
    free(v);
fail:
    plot_dat_abort(&d);
    free(pred);
    free(meas);
    csv_destroy(t);
    return st;
}
