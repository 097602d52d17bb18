/* plot_fidelity.c — `orchsim plot fidelity FIDELITY.csv`: predicted against published
 * tokens/s/GPU of the fidelity suite (analysis/fidelity.h), log-log, with y = x and the +-10%
 * and +-20% bands, one point type and colour per model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/csv.h"
#include "analysis/plot_internal.h"
#include "analysis/stats.h"
#include "base/util.h"

#define FID_MAX_MODELS 32

/* One colour per model, in the order the models first appear. */
static const char *const MODEL_COLORS[] = {"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
                                           "#e6ab02", "#a6761d", "#666666", "#1f78b4", "#b2df8a"};

OsStatus plot_fidelity(const PlotOptions *o, const char *const *inputs, int n_inputs) {
    OsStatus st = OS_OK;
    CsvTable *t = NULL;
    PlotDat d = {0};
    PlotVars *v = NULL;
    (void)n_inputs;
    OS_CHECK(csv_read(&t, inputs[0]));
    int c_model, c_pub, c_pred;
    OS_CHECK(csv_require(&c_model, t, "model"));
    OS_CHECK(csv_require(&c_pub, t, "published_tokens_per_s_per_gpu"));
    OS_CHECK(csv_require(&c_pred, t, "predicted_tokens_per_s_per_gpu"));
    size_t n = csv_n_rows(t), used = 0;
    const char *models[FID_MAX_MODELS];
    int nm = 0;
    double lo = INFINITY, hi = 0, sum_abs = 0, worst = 0;
    for (size_t r = 0; r < n; r++) {
        double a, b;
        OS_CHECK(csv_num(&a, t, r, (size_t)c_pub));
        OS_CHECK(csv_num(&b, t, r, (size_t)c_pred));
        if (!(a > 0) || !(b > 0)) continue; /* a row that could not be predicted */
        const char *mn = csv_str(t, r, (size_t)c_model);
        int k = 0;
        while (k < nm && strcmp(models[k], mn)) k++;
        if (k == nm) {
            if (nm == FID_MAX_MODELS) OS_FAIL(OS_ERR_RANGE, inputs[0], "model", NULL, "more than %d models", FID_MAX_MODELS);
            models[nm++] = mn;
        }
        lo = fmin(lo, fmin(a, b)), hi = fmax(hi, fmax(a, b));
        sum_abs += fabs(b / a - 1), worst = fmax(worst, fabs(b / a - 1));
        used++;
    }
    if (!used) OS_FAIL(OS_ERR_FORMAT, inputs[0], "predicted_tokens_per_s_per_gpu", "run orchsim fidelity first", "no predicted rows");
    OS_CHECK(plot_dat_open(&d, o, "fidelity.dat"));
    fprintf(d.fp, "# published predicted (tokens/s/GPU), one block per model\n");
    for (int k = 0; k < nm; k++) {
        fprintf(d.fp, "# model %s\n", models[k]);
        for (size_t r = 0; r < n; r++) {
            double a, b;
            OS_CHECK(csv_num(&a, t, r, (size_t)c_pub));
            OS_CHECK(csv_num(&b, t, r, (size_t)c_pred));
            if (a > 0 && b > 0 && !strcmp(csv_str(t, r, (size_t)c_model), models[k])) fprintf(d.fp, "%.9g %.9g\n", a, b);
        }
        fprintf(d.fp, "\n\n");
    }
    OS_CHECK(plot_dat_close(&d));
    char mw[2048] = "", cw[2048] = "", sub[256];
    for (int k = 0; k < nm; k++) {
        strncat(mw, k ? " " : "", sizeof mw - strlen(mw) - 1);
        strncat(mw, models[k], sizeof mw - strlen(mw) - 1);
        strncat(cw, k ? " " : "", sizeof cw - strlen(cw) - 1);
        strncat(cw, MODEL_COLORS[k % OS_ARRAY_LEN(MODEL_COLORS)], sizeof cw - strlen(cw) - 1);
    }
    snprintf(sub, sizeof sub, "%zu runs: MAPE %.1f%%, worst %.1f%%", used, 100.0 * sum_abs / (double)used, 100.0 * worst);
    v = malloc(sizeof *v);
    ALLOC_CHECK(v);
    pv_init(v);
    pv_str(v, "datafile", d.path);
    pv_int(v, "nmod", nm);
    pv_str(v, "models", mw);
    pv_str(v, "colors", cw);
    pv_num(v, "lo", lo / 1.25);
    pv_num(v, "hi", hi * 1.25);
    pv_str(v, "title", "Predicted vs published throughput (tokens/s/GPU)");
    pv_str(v, "subtitle", sub);
    st = plot_run_gnuplot(o, "fidelity", "fidelity", v);
fail:
    free(v);
    if (d.fp) plot_dat_abort(&d);
    csv_destroy(t);
    return st;
}
