/* plot.h — paper-style figures: C writes the numbers, gnuplot (plots/<kind>.gp) draws them.
 * Implements: the figure registry (throughput, mfu, timeline, imbalance-cdf, validate,
 *   composition), the .dat files each figure shows (written into OUTDIR beside it), and
 *   running gnuplot once per output format with the script's variables passed by -e.
 * Does not: decide styles (the scripts do, and users may edit them), or compute replays.
 * Source: DESIGN.md §7; analysis/FORMATS.md (inputs); plots/common.gp (terminal and style). */
#ifndef OS_ANALYSIS_PLOT_H
#define OS_ANALYSIS_PLOT_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

enum { PLOT_PNG = 1, PLOT_SVG = 2, PLOT_PDF = 4 };

typedef struct {
    const char *outdir;     /* created when missing */
    unsigned formats;       /* PLOT_PNG | PLOT_SVG | PLOT_PDF */
    uint32_t width, height; /* pixels for png/svg; pdf is width/100 x height/100 inches */
    /* run-table filters (NULL / 0 = the first value in the table; for mfu, gpus 0 = largest) */
    const char *model, *setup;
    uint32_t gpus;
    uint32_t max_ranks;     /* timeline: ranks shown at most (evenly sampled beyond) */
    uint32_t max_points;    /* composition: examples drawn at most (reservoir sample) */
    uint64_t seed;          /* composition sample seed */
    const char *gnuplot;    /* gnuplot executable (default: the one CMake found) */
    const char *scripts;    /* folder with the .gp scripts (default: the source tree's plots/) */
} PlotOptions;

/* 1200x800 png, 16 ranks, 20000 points, seed 1, compiled-in gnuplot and plots/ folder. */
void plot_options_init(PlotOptions *o);
/* "png,svg,pdf" -> mask; errors name the bad entry. s is not modified. */
OsStatus plot_parse_formats(unsigned *mask, const char *s);

typedef OsStatus PlotFn(const PlotOptions *o, const char *const *inputs, int n_inputs);

typedef struct {
    const char *name;       /* "throughput" */
    const char *inputs;     /* "SWEEP.csv" — for --help */
    const char *desc;       /* one line */
    int min_inputs, max_inputs;
    PlotFn *fn;
} PlotKind;

uint32_t plot_kind_count(void);
const PlotKind *plot_kind_at(uint32_t i);
const PlotKind *plot_kind_find(const char *name); /* NULL when unknown */

/* Check the input count, make OUTDIR, draw. Writes OUTDIR/<kind>.<ext> per format plus its
 * .dat files; returns OS_ERR_NODEV when gnuplot is missing. */
OsStatus plot_make(const PlotKind *k, const PlotOptions *o, const char *const *inputs, int n_inputs);

/* The lines "# policy: P", "# step: S", "# model: M", "# gpus: G" that may open a timeline CSV
 * (csv.h readers skip '#' lines): the timeline figure titles its panel with them, and falls
 * back to the file name (timeline_<policy>.csv) and --model/--gpus when they are absent. */
void plot_timeline_meta(char *buf, size_t cap, const char *policy, uint64_t step, const char *model,
                        uint32_t gpus);

/* A policy's colour, gnuplot dash type and point type (fixed per name; distinct for the
 * registry's policies, megatron and the oracle). */
void plot_policy_style(const char *policy, const char **color, int *dt, int *pt);
/* Put policy names in the one order every figure uses: the registry's, then megatron, the
 * oracle, then other names alphabetically. */
void plot_sort_policies(const char **pols, int n);

/* Path of figure output for kind/format (for messages and tests). */
void plot_output_path(char *buf, size_t cap, const PlotOptions *o, const char *kind, unsigned format);

#endif
