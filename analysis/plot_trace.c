/* plot_trace.c — the figure drawn from a trace: modality composition per example.
 * Streams the trace step by step (bounded memory) and keeps a reservoir sample of at most
 * max_points examples (Algorithm R, GSL mt19937 with a fixed seed: same trace, same picture). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "analysis/plot_internal.h"
#include "base/util.h"
#include "traces/trace.h"

typedef struct {
    uint32_t text;
    uint64_t pos[TRACE_MAX_MODALITIES]; /* per-modality positions (sum of item lengths) */
} ExRow;

OsStatus plot_composition(const PlotOptions *o, const char *const *inputs, int n_inputs) {
    OsStatus st = OS_OK;
    Trace *t = NULL;
    ExRow *keep = NULL;
    gsl_rng *rng = NULL;
    PlotDat d = {0};
    PlotVars *v = NULL;
    (void)n_inputs;
    OS_CHECK(trace_open(&t, inputs[0]));
    uint32_t nm = trace_n_modalities(t);
    size_t cap = o->max_points ? o->max_points : 20000;
    keep = malloc(cap * sizeof *keep);
    ALLOC_CHECK(keep);
    rng = gsl_rng_alloc(gsl_rng_mt19937);
    ALLOC_CHECK(rng);
    gsl_rng_set(rng, (unsigned long)o->seed);
    uint64_t seen = 0, text_only = 0, with_mod[TRACE_MAX_MODALITIES] = {0};
    const TraceStep *s;
    trace_rewind(t);
    for (;;) {
        OsStatus r = trace_next_step(t, &s);
        if (r == OS_DONE) break;
        OS_CHECK(r);
        for (uint32_t e = 0; e < s->n_examples; e++) {
            ExRow row;
            memset(&row, 0, sizeof row);
            const TraceExample *ex = &s->examples[e];
            row.text = ex->text;
            for (uint32_t j = 0; j < ex->n_items; j++) {
                const TraceItem *it = &s->items[ex->first_item + j];
                if (it->modality < nm) row.pos[it->modality] += it->length;
            }
            int any = 0;
            for (uint32_t m = 1; m < nm; m++)
                if (row.pos[m]) any = 1, with_mod[m]++;
            text_only += !any;
            /* Algorithm R: the k-th example replaces a random slot with probability cap / k */
            if (seen < cap) keep[seen] = row;
            else {
                unsigned long k = gsl_rng_uniform_int(rng, (unsigned long)(seen + 1));
                if (k < cap) keep[k] = row;
            }
            seen++;
        }
    }
    if (!seen) OS_FAIL(OS_ERR_FORMAT, inputs[0], "/examples", NULL, "the trace has no examples");
    size_t kept = seen < cap ? (size_t)seen : cap;
    const char *mods[TRACE_MAX_MODALITIES];
    uint32_t mcol[TRACE_MAX_MODALITIES];
    int nmods = 0;
    for (uint32_t m = 1; m < nm; m++)
        if (with_mod[m]) mcol[nmods] = m, mods[nmods++] = trace_modality(t, m)->name;
    if (!nmods)
        OS_FAIL(OS_ERR_FORMAT, inputs[0], "/items", "this figure needs a multimodal trace",
                "no example has a non-text item");
    OS_CHECK(plot_dat_open(&d, o, "composition.dat"));
    fprintf(d.fp, "# %zu of %llu examples (reservoir sample, seed %llu)\n# text", kept,
            (unsigned long long)seen, (unsigned long long)o->seed);
    for (int k = 0; k < nmods; k++) fprintf(d.fp, " %s_%s", mods[k], trace_modality(t, mcol[k])->unit);
    fprintf(d.fp, "\n");
    for (size_t i = 0; i < kept; i++) {
        fprintf(d.fp, "%u", keep[i].text);
        for (int k = 0; k < nmods; k++) fprintf(d.fp, " %llu", (unsigned long long)keep[i].pos[mcol[k]]);
        fprintf(d.fp, "\n");
    }
    OS_CHECK(plot_dat_close(&d));
    /* axis ranges from the drawn points, padded by a factor (log autoscale would round out to
     * whole decades and squeeze the cloud into a corner) */
    double xlo = HUGE_VAL, xhi = 0, ylo = HUGE_VAL, yhi = 0;
    for (size_t i = 0; i < kept; i++) {
        int drawn = 0;
        for (int k = 0; k < nmods; k++) {
            double x = (double)keep[i].pos[mcol[k]];
            if (x > 0 && keep[i].text > 0) xlo = fmin(xlo, x), xhi = fmax(xhi, x), drawn = 1;
        }
        if (drawn) ylo = fmin(ylo, keep[i].text), yhi = fmax(yhi, keep[i].text);
    }
    if (!(xhi > 0)) xlo = 1, xhi = 10, ylo = 1, yhi = 10;
    char mw[512], cw[512], kw[512], sub[768], title[512];
    size_t a = 0, b = 0, c = 0;
    mw[0] = cw[0] = kw[0] = '\0';
    for (int k = 0; k < nmods; k++) {
        /* legend: name, unit and how many examples carry it */
        a += (size_t)snprintf(mw + a, sizeof mw - a, "%s\"%s (%s; %.0f%% of examples)\"", k ? " " : "", mods[k],
                              trace_modality(t, mcol[k])->unit, 100.0 * (double)with_mod[mcol[k]] / (double)seen);
        /* translucent points (#AARRGGBB, AA = transparency): dense clouds stay readable */
        b += (size_t)snprintf(cw + b, sizeof cw - b, "%s#80%s", k ? " " : "", plot_phase_color(mods[k]) + 1);
        c += (size_t)snprintf(kw + c, sizeof kw - c, "%s%s", k ? " " : "", plot_phase_color(mods[k]));
        if (a >= sizeof mw || b >= sizeof cw || c >= sizeof kw) break;
    }
    const char *base = strrchr(inputs[0], '/');
    snprintf(title, sizeof title, "Modality composition per example: %s", base ? base + 1 : inputs[0]);
    snprintf(sub, sizeof sub,
             "%zu of %llu examples (seed %llu); %llu text-only (%.0f%%) not shown",
             kept, (unsigned long long)seen, (unsigned long long)o->seed, (unsigned long long)text_only,
             100.0 * (double)text_only / (double)seen);
    v = malloc(sizeof *v);
    ALLOC_CHECK(v);
    pv_init(v);
    pv_str(v, "datafile", d.path);
    pv_int(v, "nmod", nmods);
    pv_str(v, "mods", mw);
    pv_str(v, "colors", cw);
    pv_str(v, "keycolors", kw);
    char xt[1024], yt[1024];
    plot_log_tics(xt, sizeof xt, xlo / 1.25, xhi * 1.25);
    plot_log_tics(yt, sizeof yt, ylo / 1.25, yhi * 2.0);
    pv_str(v, "xt", xt);
    pv_str(v, "yt", yt);
    pv_num(v, "xlo", xlo / 1.25);
    pv_num(v, "xhi", xhi * 1.25);
    pv_num(v, "ylo", ylo / 1.25);
    pv_num(v, "yhi", yhi * 2.0); /* room for the legend */
    pv_str(v, "title", title);
    pv_str(v, "subtitle", sub);
    OS_CHECK(plot_run_gnuplot(o, "composition", "composition", v));
fail:
    plot_dat_abort(&d);
    free(v);
    gsl_rng_free(rng);
    free(keep);
    trace_close(t);
    return st;
}
