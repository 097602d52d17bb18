/* plot_internal.h — shared by analysis/plot*.c only: the gnuplot runner and .dat helpers.
 * Implements: a variable list passed to gnuplot with -e (strings quoted for gnuplot), one
 *   gnuplot run per requested format writing to a temporary name then renamed, the colour
 *   registries (policies, phases) that keep one policy one colour in every figure.
 * Does not: get included outside analysis/ (the contract is plot.h). */
#ifndef OS_ANALYSIS_PLOT_INTERNAL_H
#define OS_ANALYSIS_PLOT_INTERNAL_H

#include <stdio.h>

#include "analysis/plot.h"

/* gnuplot variables: "name=value; ..." built up; strings are single-quoted with '' escapes. */
typedef struct {
    char buf[16384];
    size_t n;
    int overflow;
} PlotVars;
void pv_init(PlotVars *v);
void pv_str(PlotVars *v, const char *name, const char *val);
void pv_num(PlotVars *v, const char *name, double val);
void pv_int(PlotVars *v, const char *name, long long val);

/* Run plots/<script>.gp for every format in o->formats with vars + outfile/term/w/h set,
 * output OUTDIR/<kind>.<ext>. Errors carry gnuplot's last stderr line. */
OsStatus plot_run_gnuplot(const PlotOptions *o, const char *kind, const char *script, const PlotVars *v);

/* Open OUTDIR/<name> for writing a data file (atomic: commit with plot_dat_close). */
typedef struct {
    char path[4096];
    char tmp[4200];
    FILE *fp;
} PlotDat;
OsStatus plot_dat_open(PlotDat *d, const PlotOptions *o, const char *name);
OsStatus plot_dat_close(PlotDat *d); /* commit; on error removes the temporary */
void plot_dat_abort(PlotDat *d);

/* gnuplot tic list "(100, 200, 500, 1000)" at 1, 2, 5 x 10^k inside [lo, hi] for log axes that
 * span too little for gnuplot's decade tics; "autofreq" when none fall inside. */
void plot_log_tics(char *buf, size_t cap, double lo, double hi);

/* Colour of a policy / phase as "#rrggbb" (registries in plot.c; unknown names get a fixed
 * fallback cycle by hash, so they are still stable). */
const char *plot_policy_color(const char *policy);
const char *plot_phase_color(const char *phase);
/* Space-separated colours, dash types and point types of pols[n] (each buffer cap bytes). */
void plot_policy_words(char *colors, char *dts, char *pts, size_t cap, const char *const *pols, int n);
/* list[0 .. n) joined by single spaces into buf (gnuplot's word() lists), cut at cap. */
void plot_join_words(char *buf, size_t cap, const char *const *list, int n);
/* The per-policy variables a figure's script reads, for pols[n] in the figure's order: npol,
 * policies (the names), colors, dts and pts (plot_policy_words). */
void pv_policies(PlotVars *v, const char *const *pols, int n);

/* The figures (one function each, registered in plot.c). */
PlotFn plot_throughput, plot_policies, plot_mfu, plot_timeline, plot_imbalance_cdf, plot_validate, plot_composition,
    plot_fidelity;
PlotFn plot_pipeline; /* text-to-image pipelines (plot_pipeline.c) */

#endif
