/* plot_runs.c — the figures drawn from a run-level table (sweep.csv): throughput and mfu.
 * Both pick one slice of the sweep (model, setup, cluster shape) and say which in the title. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/plot_internal.h"
#include "analysis/runtable.h"
#include "base/util.h"
#include "sim/model.h"

#define MAX_LIST 64

/* Distinct strings in first-appearance order. */
static int add_unique(const char **list, int *n, const char *s) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(list[i], s)) return i;
    if (*n >= MAX_LIST) return -1;
    list[*n] = s;
    return (*n)++;
}



static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Does row r belong to the slice (model, setup, gpus_per_node, tp of the reference row)? */
static int in_slice(const RunRow *r, const RunRow *ref) {
    return !strcmp(r->model, ref->model) && !strcmp(r->setup, ref->setup) &&
           r->gpus_per_node == ref->gpus_per_node && r->tp == ref->tp;
}

static OsStatus pick_ref(const RunRow **ref, const RunRow *rows, size_t n, const PlotOptions *o,
                         const char *path) {
    OsStatus st = OS_OK;
    *ref = NULL;
    for (size_t i = 0; i < n && !*ref; i++)
        if ((!o->model || !strcmp(rows[i].model, o->model)) && (!o->setup || !strcmp(rows[i].setup, o->setup)))
            *ref = &rows[i];
    if (!*ref)
        OS_FAIL(OS_ERR_ARG, path, "--model/--setup", "check the names against the table's model and setup columns",
                "no row for model '%s' setup '%s'", o->model ? o->model : "(any)", o->setup ? o->setup : "(any)");
fail:
    return st;
}

/* The single-count throughput figure: one bar per policy (plots/throughput.gp, bars = 1). */
static OsStatus throughput_bars(const PlotOptions *o, const RunRow *rows, size_t n, const RunRow *ref,
                                const char **pols, int np, uint64_t gpus, const char *path) {
    OsStatus st = OS_OK;
    PlotDat d = {0};
    PlotVars v;
    double ymax = 0.0;
    OS_CHECK(plot_dat_open(&d, o, "throughput.dat"));
    fprintf(d.fp, "# one GPU count (%llu) in %s: tokens/s per policy, in the figures' policy order\n"
                  "# columns: policy tokens_per_s step_mean_s\n", (unsigned long long)gpus, path);
    for (int p = 0; p < np; p++)
        for (size_t i = 0; i < n; i++)
            if (in_slice(&rows[i], ref) && rows[i].gpus == gpus && !strcmp(rows[i].policy, pols[p]) &&
                rows[i].tokens_per_s > 0) {
                fprintf(d.fp, "\"%s\" %.9g %.9g\n", pols[p], rows[i].tokens_per_s, rows[i].step_mean_s);
                ymax = fmax(ymax, rows[i].tokens_per_s);
                break;
            }
    OS_CHECK(plot_dat_close(&d));
    char sub[512], sub2[256];
    snprintf(sub, sizeof sub, "model %s, %s, %llu GPUs (%llu per node), TP %llu, %llu steps per run", ref->model,
             ref->setup, (unsigned long long)gpus, (unsigned long long)ref->gpus_per_node, (unsigned long long)ref->tp,
             (unsigned long long)ref->steps);
    snprintf(sub2, sizeof sub2, "one GPU count in the table: no scaling curve (sweep --gpus A,B,... draws one)");
    pv_init(&v);
    pv_int(&v, "bars", 1);
    pv_str(&v, "datafile", d.path);
    pv_policies(&v, pols, np);
    pv_str(&v, "title", "Training throughput per policy");
    pv_str(&v, "subtitle", sub);
    pv_str(&v, "subtitle2", sub2);
    pv_num(&v, "ymax", ymax > 0 ? ymax * 1.25 : 1.0);
    OS_CHECK(plot_run_gnuplot(o, "throughput", "throughput", &v));
fail:
    plot_dat_abort(&d);
    return st;
}

OsStatus plot_throughput(const PlotOptions *o, const char *const *inputs, int n_inputs) {
    OsStatus st = OS_OK;
    RunRow *rows = NULL;
    size_t n = 0;
    PlotDat d = {0};
    PlotVars v;
    (void)n_inputs;
    OS_CHECK(runtable_read(&rows, &n, inputs[0]));
    const RunRow *ref;
    OS_CHECK(pick_ref(&ref, rows, n, o, inputs[0]));
    const char *pols[MAX_LIST];
    int np = 0;
    uint64_t gpus[MAX_LIST];
    int ng = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_slice(&rows[i], ref) || !(rows[i].tokens_per_s > 0)) continue;
        if (add_unique(pols, &np, rows[i].policy) < 0)
            OS_FAIL(OS_ERR_RANGE, inputs[0], "policy", "plot fewer policies", "more than %d policies", MAX_LIST);
        int seen = 0;
        for (int k = 0; k < ng; k++) seen |= gpus[k] == rows[i].gpus;
        if (!seen && ng < MAX_LIST) gpus[ng++] = rows[i].gpus;
    }
    if (!np) OS_FAIL(OS_ERR_FORMAT, inputs[0], "tokens_per_s", NULL, "no row with a positive throughput");
    plot_sort_policies(pols, np);
    qsort(gpus, (size_t)ng, sizeof gpus[0], cmp_u64);
    if (ng == 1) {
        /* one GPU count: no scaling to draw, so bars per policy at that count (a column of
         * dots with an "ideal" line of one point says nothing) */
        st = throughput_bars(o, rows, n, ref, pols, np, gpus[0], inputs[0]);
        goto fail;
    }
    /* The ideal line starts at the smallest GPU count, from the best policy there (the highest
     * throughput), and grows linearly: what perfect weak scaling of that run would give. */
    const RunRow *anchor = NULL;
    for (size_t i = 0; i < n; i++)
        if (in_slice(&rows[i], ref) && rows[i].gpus == gpus[0] && rows[i].tokens_per_s > 0 &&
            (!anchor || rows[i].tokens_per_s > anchor->tokens_per_s))
            anchor = &rows[i];
    OS_CHECK(plot_dat_open(&d, o, "throughput.dat"));
    fprintf(d.fp, "# throughput per policy (index = policy order below), then the ideal line\n"
                  "# columns: gpus tokens_per_s step_mean_s speedup_vs_none\n");
    for (int p = 0; p < np; p++) {
        fprintf(d.fp, "# policy %s\n", pols[p]);
        for (int k = 0; k < ng; k++)
            for (size_t i = 0; i < n; i++)
                if (in_slice(&rows[i], ref) && rows[i].gpus == gpus[k] && !strcmp(rows[i].policy, pols[p]) &&
                    rows[i].tokens_per_s > 0)
                {
                    fprintf(d.fp, "%llu %.9g %.9g ", (unsigned long long)rows[i].gpus, rows[i].tokens_per_s,
                            rows[i].step_mean_s);
                    if (isfinite(rows[i].speedup_vs_none)) fprintf(d.fp, "%.6g\n", rows[i].speedup_vs_none);
                    else fprintf(d.fp, "?\n");
                }
        fprintf(d.fp, "\n\n");
    }
    fprintf(d.fp, "# ideal linear scaling from %s at %llu GPUs\n", anchor->policy, (unsigned long long)gpus[0]);
    for (int k = 0; k < ng; k++)
        fprintf(d.fp, "%llu %.9g\n", (unsigned long long)gpus[k],
                anchor->tokens_per_s * (double)gpus[k] / (double)gpus[0]);
    OS_CHECK(plot_dat_close(&d));

    char xt[1024], sub[512], ideal[256];
    size_t k = (size_t)snprintf(xt, sizeof xt, "(");
    for (int i = 0; i < ng && k < sizeof xt; i++)
        k += (size_t)snprintf(xt + k, sizeof xt - k, "%s%llu", i ? ", " : "", (unsigned long long)gpus[i]);
    if (k < sizeof xt) snprintf(xt + k, sizeof xt - k, ")");
    snprintf(sub, sizeof sub,
             "model %s, %s, %llu GPUs/node, TP %llu, %llu steps per run",
             ref->model, ref->setup,
             (unsigned long long)ref->gpus_per_node, (unsigned long long)ref->tp, (unsigned long long)ref->steps);
    snprintf(ideal, sizeof ideal, "ideal linear scaling (from the best at %llu GPUs: %s)",
             (unsigned long long)gpus[0], anchor->policy);
    pv_init(&v);
    pv_str(&v, "datafile", d.path);
    pv_policies(&v, pols, np);
    pv_str(&v, "title", "Training throughput vs cluster size");
    pv_str(&v, "subtitle", sub);
    pv_str(&v, "subtitle2", "the same global batches at every size (strong scaling)");
    pv_str(&v, "ideal_label", ideal);
    pv_str(&v, "xt", xt);
    /* log axes: pad by a constant factor around the data (gnuplot's own autoscale snaps to
     * whole decades, which squeezes a 64..512 sweep into a corner) */
    double ylo = HUGE_VAL, yhi = 0.0;
    for (size_t i = 0; i < n; i++)
        if (in_slice(&rows[i], ref) && rows[i].tokens_per_s > 0)
            ylo = fmin(ylo, rows[i].tokens_per_s), yhi = fmax(yhi, rows[i].tokens_per_s);
    yhi = fmax(yhi, anchor->tokens_per_s * (double)gpus[ng - 1] / (double)gpus[0]);
    /* tick labels at 1, 2, 5 x 10^k: a sweep often spans less than one decade of throughput */
    char yt[1024];
    plot_log_tics(yt, sizeof yt, ylo / 1.6, yhi * 2.5);
    pv_str(&v, "yt", yt);
    pv_num(&v, "xlo", (double)gpus[0] / 1.4);
    pv_num(&v, "xhi", (double)gpus[ng - 1] * 1.4);
    pv_num(&v, "ylo", ylo / 1.6);
    pv_num(&v, "yhi", yhi * 2.5); /* room for the legend above the lines */
    OS_CHECK(plot_run_gnuplot(o, "throughput", "throughput", &v));
fail:
    plot_dat_abort(&d);
    free(rows);
    return st;
}

typedef struct {
    const char *name;
    double params; /* NaN when the name does not resolve (a preset file that moved) */
} ModelOrder;

static int cmp_model(const void *a, const void *b) {
    const ModelOrder *x = a, *y = b;
    int xn = isnan(x->params), yn = isnan(y->params);
    if (xn != yn) return xn - yn; /* unknown sizes last */
    if (!xn && x->params != y->params) return x->params < y->params ? -1 : 1;
    return strcmp(x->name, y->name);
}

OsStatus plot_mfu(const PlotOptions *o, const char *const *inputs, int n_inputs) {
    OsStatus st = OS_OK;
    RunRow *rows = NULL;
    size_t n = 0;
    PlotDat d = {0};
    PlotVars v;
    ModelSpec *spec = NULL;
    (void)n_inputs;
    OS_CHECK(runtable_read(&rows, &n, inputs[0]));
    const char *setup = o->setup;
    for (size_t i = 0; i < n && !setup; i++) setup = rows[i].setup;
    uint64_t gpus = o->gpus, gpn = 0, tp = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].setup, setup) && !o->gpus && rows[i].gpus > gpus) gpus = rows[i].gpus;
    const char *pols[MAX_LIST];
    int np = 0, nm = 0;
    ModelOrder models[MAX_LIST];
    spec = malloc(sizeof *spec);
    ALLOC_CHECK(spec);
    for (size_t i = 0; i < n; i++) {
        const RunRow *r = &rows[i];
        if (strcmp(r->setup, setup) || r->gpus != gpus) continue;
        if (!gpn) gpn = r->gpus_per_node, tp = r->tp;
        if (r->gpus_per_node != gpn || r->tp != tp) continue;
        add_unique(pols, &np, r->policy);
        int seen = 0;
        for (int k = 0; k < nm; k++) seen |= !strcmp(models[k].name, r->model);
        if (!seen && nm < MAX_LIST) {
            models[nm].name = r->model;
            os_clear_error();
            models[nm].params = model_resolve(spec, r->model) == OS_OK ? (double)model_params(spec) : NAN;
            os_clear_error();
            nm++;
        }
    }
    if (!np)
        OS_FAIL(OS_ERR_ARG, inputs[0], "--gpus/--setup", "check the table's gpus and setup columns",
                "no rows for setup '%s' at %llu GPUs", setup ? setup : "?", (unsigned long long)gpus);
    plot_sort_policies(pols, np);
    qsort(models, (size_t)nm, sizeof models[0], cmp_model);
    OS_CHECK(plot_dat_open(&d, o, "mfu.dat"));
    fprintf(d.fp, "# MFU in %% (paper convention) per model (rows, by parameter count) and policy (columns)\n"
                  "# label");
    for (int p = 0; p < np; p++) fprintf(d.fp, " %s", pols[p]);
    fprintf(d.fp, "\n");
    double ymax = 0.0;
    for (int m = 0; m < nm; m++) {
        if (isnan(models[m].params)) fprintf(d.fp, "\"%s (size unknown)\"", models[m].name);
        else if (models[m].params >= 1e9) fprintf(d.fp, "\"%s (%.1fB)\"", models[m].name, models[m].params / 1e9);
        else fprintf(d.fp, "\"%s (%.0fM)\"", models[m].name, models[m].params / 1e6);
        for (int p = 0; p < np; p++) {
            double mfu = NAN;
            for (size_t i = 0; i < n; i++)
                if (!strcmp(rows[i].model, models[m].name) && !strcmp(rows[i].policy, pols[p]) &&
                    !strcmp(rows[i].setup, setup) && rows[i].gpus == gpus && rows[i].gpus_per_node == gpn &&
                    rows[i].tp == tp)
                    mfu = rows[i].mfu;
            if (isfinite(mfu)) fprintf(d.fp, " %.6g", 100.0 * mfu), ymax = fmax(ymax, 100.0 * mfu);
            else fprintf(d.fp, " ?");
        }
        fprintf(d.fp, "\n");
    }
    OS_CHECK(plot_dat_close(&d));
    char sub[512];
    snprintf(sub, sizeof sub, "%llu GPUs (%llu per node, TP %llu), %s", (unsigned long long)gpus,
             (unsigned long long)gpn, (unsigned long long)tp, setup);
    pv_init(&v);
    pv_str(&v, "datafile", d.path);
    pv_policies(&v, pols, np);
    pv_str(&v, "title", "Model FLOPs utilisation by model size and policy");
    pv_int(&v, "nmodels", nm);
    pv_num(&v, "ymax", ymax > 0 ? ymax * 1.3 : 1.0); /* headroom for the legend */
    pv_str(&v, "subtitle", sub);
    OS_CHECK(plot_run_gnuplot(o, "mfu", "mfu", &v));
fail:
    plot_dat_abort(&d);
    free(spec);
    free(rows);
    return st;
}

/* The policies figure: mean step time per policy with its 95% interval, the oracle floor as a
 * dashed line (a compare/advise run-level CSV, one cluster slice). */
OsStatus plot_policies(const PlotOptions *o, const char *const *inputs, int n_inputs) {
    OsStatus st = OS_OK;
    RunRow *rows = NULL;
    size_t n = 0;
    PlotDat d = {0};
    PlotVars v;
    (void)n_inputs;
    OS_CHECK(runtable_read(&rows, &n, inputs[0]));
    const RunRow *ref = NULL;
    for (size_t i = 0; i < n && !ref; i++)
        if (strcmp(rows[i].policy, "oracle") && (!o->model || !strcmp(rows[i].model, o->model)) &&
            (!o->setup || !strcmp(rows[i].setup, o->setup)) && (!o->gpus || rows[i].gpus == o->gpus))
            ref = &rows[i];
    if (!ref)
        OS_FAIL(OS_ERR_ARG, inputs[0], "--model/--setup/--gpus", "check the names against the table",
                "no policy row for model '%s' setup '%s'", o->model ? o->model : "(any)", o->setup ? o->setup : "(any)");
    const char *pols[MAX_LIST];
    int np = 0;
    double oracle = NAN, ymax = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!in_slice(&rows[i], ref) || rows[i].gpus != ref->gpus || !(rows[i].step_mean_s > 0)) continue;
        if (!strcmp(rows[i].policy, "oracle")) {
            oracle = rows[i].step_mean_s;
            continue;
        }
        if (add_unique(pols, &np, rows[i].policy) < 0)
            OS_FAIL(OS_ERR_RANGE, inputs[0], "policy", "plot fewer policies", "more than %d policies", MAX_LIST);
    }
    plot_sort_policies(pols, np);
    OS_CHECK(plot_dat_open(&d, o, "policies.dat"));
    fprintf(d.fp, "# mean step time per policy (%s, %llu GPUs): index policy step_mean_s ci95_s rgb\n", ref->model,
            (unsigned long long)ref->gpus);
    for (int p = 0; p < np; p++)
        for (size_t i = 0; i < n; i++) {
            const RunRow *r = &rows[i];
            if (!in_slice(r, ref) || r->gpus != ref->gpus || strcmp(r->policy, pols[p])) continue;
            double ci = isfinite(r->step_ci95_s) ? r->step_ci95_s : 0.0;
            fprintf(d.fp, "%d \"%s\" %.9g %.9g %u\n", p, pols[p], r->step_mean_s, ci,
                    (unsigned)strtoul(plot_policy_color(pols[p]) + 1, NULL, 16));
            ymax = fmax(ymax, r->step_mean_s + ci);
            break;
        }
    OS_CHECK(plot_dat_close(&d));
    char sub[512];
    snprintf(sub, sizeof sub, "model %s, %s, %llu GPUs (%llu per node, TP %llu), %llu steps; bars: each mean's own 95%% interval (unpaired)",
             ref->model, ref->setup, (unsigned long long)ref->gpus, (unsigned long long)ref->gpus_per_node,
             (unsigned long long)ref->tp, (unsigned long long)ref->steps);
    pv_init(&v);
    pv_str(&v, "datafile", d.path);
    pv_int(&v, "npol", np);
    pv_num(&v, "oracle", isfinite(oracle) ? oracle : -1.0);
    pv_num(&v, "ymax", fmax(ymax, isfinite(oracle) ? oracle : 0.0) * 1.15);
    pv_str(&v, "title", "Simulated step time per policy (lower is better)");
    pv_str(&v, "subtitle", sub);
    OS_CHECK(plot_run_gnuplot(o, "policies", "policies", &v));
fail:
    plot_dat_abort(&d);
    free(rows);
    return st;
}
