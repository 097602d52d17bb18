/* plot_pipeline.c — `orchsim plot pipeline PIPELINE.csv...`: per-stage time by policy from
 * `orchsim pipeline --csv` (one row per policy and stage), grouped bars, one group per stage
 * (several files: one group per file and stage, labelled pipeline/stage), each bar the stage's
 * time under a policy as a percentage of `none`'s, plus the oracle floor in grey; the x label
 * carries none's seconds, so equal bars (the cpdm generation tie) and the margins (interrogation,
 * t2i-mixed) read directly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/csv.h"
#include "analysis/plot_internal.h"
#include "base/util.h"

#define PP_MAX_POL 16
#define PP_MAX_GROUPS 32

typedef struct {
    char label[96];
    double t[PP_MAX_POL]; /* seconds per policy, NaN = not run */
    double oracle;
} PpGroup;

static int find_or_add(char (*names)[64], int *n, int cap, const char *s) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(names[i], s)) return i;
    if (*n >= cap) return -1;
    snprintf(names[*n], 64, "%s", s);
    return (*n)++;
}

OsStatus plot_pipeline(const PlotOptions *o, const char *const *inputs, int n_inputs) {
    OsStatus st = OS_OK;
    CsvTable *t = NULL;
    PlotDat d = {0};
    PlotVars *v = NULL;
    PpGroup *g = calloc(PP_MAX_GROUPS, sizeof *g);
    char pols[PP_MAX_POL][64];
    int np = 0, ng = 0;
    ALLOC_CHECK(g);
    for (int f = 0; f < n_inputs; f++) {
        OS_CHECK(csv_read(&t, inputs[f]));
        int cp, cs, cpl, ct, co, cr;
        OS_CHECK(csv_require(&cpl, t, "pipeline"));
        OS_CHECK(csv_require(&cp, t, "policy"));
        OS_CHECK(csv_require(&cs, t, "stage"));
        OS_CHECK(csv_require(&cr, t, "role"));
        OS_CHECK(csv_require(&ct, t, "time_s"));
        OS_CHECK(csv_require(&co, t, "oracle_s"));
        int g0 = ng;
        for (size_t r = 0; r < csv_n_rows(t); r++) {
            if (!strcmp(csv_str(t, r, (size_t)cr), "skipped")) continue;
            char label[96];
            if (n_inputs > 1) snprintf(label, sizeof label, "%s\\n(%s)", csv_str(t, r, (size_t)cs), csv_str(t, r, (size_t)cpl));
            else snprintf(label, sizeof label, "%s", csv_str(t, r, (size_t)cs));
            int k = g0;
            while (k < ng && strcmp(g[k].label, label)) k++;
            if (k == ng) {
                if (ng == PP_MAX_GROUPS) OS_FAIL(OS_ERR_RANGE, inputs[f], "stage", NULL, "more than %d stages", PP_MAX_GROUPS);
                snprintf(g[ng].label, sizeof g[ng].label, "%s", label);
                for (int q = 0; q < PP_MAX_POL; q++) g[ng].t[q] = NAN;
                g[ng].oracle = NAN;
                ng++;
            }
            int p = find_or_add(pols, &np, PP_MAX_POL, csv_str(t, r, (size_t)cp));
            if (p < 0) OS_FAIL(OS_ERR_RANGE, inputs[f], "policy", NULL, "more than %d policies", PP_MAX_POL);
            double x, orc;
            OS_CHECK(csv_num(&x, t, r, (size_t)ct));
            OS_CHECK(csv_num(&orc, t, r, (size_t)co));
            g[k].t[p] = x;
            g[k].oracle = orc;
        }
        csv_destroy(t);
        t = NULL;
    }
    int none = -1;
    for (int p = 0; p < np; p++)
        if (!strcmp(pols[p], "none")) none = p;
    if (none < 0) OS_FAIL(OS_ERR_FORMAT, inputs[0], "policy", "run orchsim pipeline with --policy none,...", "no 'none' rows to compare with");
    if (!ng) OS_FAIL(OS_ERR_FORMAT, inputs[0], "stage", "run orchsim pipeline --csv first", "no stage rows");
    OS_CHECK(plot_dat_open(&d, o, "pipeline.dat"));
    fprintf(d.fp, "# stage time under each policy as %% of none's, then the oracle; '?' = not run\n# label");
    for (int p = 0; p < np; p++) fprintf(d.fp, " %s", pols[p]);
    fprintf(d.fp, " oracle\n");
    double ymax = 100, ymin = 100;
    for (int k = 0; k < ng; k++) {
        double base = g[k].t[none];
        fprintf(d.fp, "\"%s\\n%.4g s\"", g[k].label, base);
        for (int p = 0; p < np; p++) {
            double pct = base > 0 && isfinite(g[k].t[p]) ? 100.0 * g[k].t[p] / base : NAN;
            if (isfinite(pct)) {
                fprintf(d.fp, " %.6f", pct);
                ymax = fmax(ymax, pct);
                ymin = fmin(ymin, pct);
            } else {
                fprintf(d.fp, " ?");
            }
        }
        double po = base > 0 && isfinite(g[k].oracle) ? 100.0 * g[k].oracle / base : NAN;
        if (isfinite(po)) {
            fprintf(d.fp, " %.6f\n", po);
            ymin = fmin(ymin, po);
        } else {
            fprintf(d.fp, " ?\n");
        }
    }
    OS_CHECK(plot_dat_close(&d));
    char pw[1200] = "", cw[1200] = "";
    for (int p = 0; p <= np; p++) {
        const char *nm = p < np ? pols[p] : "oracle";
        strncat(pw, p ? " " : "", sizeof pw - strlen(pw) - 1);
        strncat(pw, nm, sizeof pw - strlen(pw) - 1);
        strncat(cw, p ? " " : "", sizeof cw - strlen(cw) - 1);
        strncat(cw, plot_policy_color(nm), sizeof cw - strlen(cw) - 1);
    }
    v = malloc(sizeof *v);
    ALLOC_CHECK(v);
    pv_init(v);
    pv_str(v, "datafile", d.path);
    pv_int(v, "npol", np + 1);
    pv_int(v, "ngroups", ng);
    pv_str(v, "policies", pw);
    pv_str(v, "colors", cw);
    pv_num(v, "ymax", ymax * 1.04);
    /* the axis starts below the lowest bar (labelled: the margins are a few percent) */
    pv_num(v, "ymin", fmax(0.0, 10.0 * floor((ymin - 5.0) / 10.0)));
    pv_str(v, "title", "Per-stage time by policy (text-to-image pipeline)");
    pv_str(v, "subtitle", "bars: the stage's time as % of none's; grey: the oracle floor max(total/D, largest request)");
    st = plot_run_gnuplot(o, "pipeline", "pipeline", v);
fail:
    free(v);
    if (d.fp) plot_dat_abort(&d);
    csv_destroy(t);
    free(g);
    return st;
}
