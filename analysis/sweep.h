/* sweep.h — replay one trace over a grid of policies x models x setups x cluster shapes.
 * Implements: the grid (lists per axis, their cartesian product, a `key = list` grid file),
 *   a fork()-based process pool (HDF5 serial is not thread-safe, so every child opens the trace
 *   itself and passes its results back through a temporary file), the run-level CSV written
 *   atomically with speedup_vs_none filled in after all runs, and an optional HDF5 copy with
 *   per-run per-step series (sweep_h5.c).
 * Does not: print (the caller prints failures and progress is OsProgress on stderr), or retry.
 *   Failing grid points are reported with their parameters and the other rows are kept.
 * Source: DESIGN.md §7-§8; analysis/FORMATS.md (run-level, grid file, sweep HDF5). */
#ifndef OS_ANALYSIS_SWEEP_H
#define OS_ANALYSIS_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "analysis/runtable.h"
#include "base/status.h"

#define SWEEP_MAX_AXIS 64 /* values per axis */

/* Axes of the grid. Strings are borrowed (argv or a SweepGridFile). */
typedef struct {
    const char *policies[SWEEP_MAX_AXIS];
    uint32_t n_policies;
    const char *models[SWEEP_MAX_AXIS];
    uint32_t n_models;
    const char *setups[SWEEP_MAX_AXIS]; /* "ddp", "fsdp" */
    uint32_t n_setups;
    uint32_t gpus[SWEEP_MAX_AXIS];
    uint32_t n_gpus;
    uint32_t gpus_per_node[SWEEP_MAX_AXIS];
    uint32_t n_gpus_per_node;
    uint32_t tp[SWEEP_MAX_AXIS];
    uint32_t n_tp;
    uint64_t steps; /* 0 = the whole trace */
} SweepGrid;

typedef struct {
    const char *trace_path;
    const char *calibration; /* calibration file, or NULL for calib_default_h100 */
    uint32_t jobs;           /* worker processes (>= 1) */
    const char *csv_path;    /* run-level CSV (required) */
    const char *h5_path;     /* HDF5 copy, or NULL */
    int progress;            /* progress bar on stderr */
    double balancer_cost_s;  /* < 0: charge the balancer's measured runtime (replay default);
                                >= 0: this fixed time, for byte-identical reruns */
    int recompute;           /* activation recomputation in every run (ReplayConfig.recompute) */
    int padded;              /* padded attention layout in every run (ATTN_PADDED) */
} SweepOptions;
/* jobs 1, balancer_cost_s -1, everything else NULL/0. */
void sweep_options_init(SweepOptions *o);

/* One grid point's coordinates. */
typedef struct {
    const char *policy, *model, *setup; /* borrowed from the grid */
    uint32_t gpus, gpus_per_node, tp;
} SweepPoint;

typedef struct {
    char params[512]; /* "policy=post model=vl-7b setup=fsdp gpus=64 gpus_per_node=8 tp=3" */
    char error[1024]; /* the child's recorded error line */
} SweepFailure;

typedef struct {
    size_t n_points, n_ok, n_failed;
    SweepFailure *failures; /* [n_failed], owned; sweep_report_free */
    double wall_s;
    int written;            /* 1 once the CSV (and HDF5 copy) are in place */
} SweepReport;
void sweep_report_free(SweepReport *r);

/* Grid helpers. An empty axis takes its default: setups {ddp}, gpus_per_node {8}, tp {1};
 * policies, models and gpus must be given. */
void sweep_grid_init(SweepGrid *g);
/* Parse a comma list into an axis ("64,512,2560"); s is modified in place (strings point
 * into it). `what` names the option for errors. */
OsStatus sweep_axis_strs(const char **out, uint32_t *n, char *s, const char *what);
OsStatus sweep_axis_u32(uint32_t *out, uint32_t *n, char *s, uint32_t lo, uint32_t hi, const char *what);
/* Read a grid file (FORMATS.md "Sweep grid file") into g: axes already set in g are an error
 * naming the key. *text receives the file's text, which g's strings point into (caller frees
 * it after the sweep). */
OsStatus sweep_grid_load(SweepGrid *g, char **text, const char *path);
/* Fill defaults and check every axis is non-empty. */
OsStatus sweep_grid_finish(SweepGrid *g);
size_t sweep_grid_size(const SweepGrid *g);
/* Point i of the product (models outermost, then setups, gpus_per_node, tp, gpus, policies). */
void sweep_grid_point(SweepPoint *p, const SweepGrid *g, size_t i);
void sweep_point_describe(char *buf, size_t cap, const SweepPoint *p);

/* Run one point in this process: the replay, its run row and series. Used by the workers and
 * by tests. rows/series owned by the caller (run_series_free). */
OsStatus sweep_run_point(RunRow *row, RunSeries *series, const SweepPoint *p, const SweepGrid *g,
                         const SweepOptions *o);

/* The whole sweep. Returns OS_OK when every point ran; when some failed, the successful rows
 * are still written and the status is OS_ERR_ARG / the first failure's status with
 * rep->failures listing each (the caller prints them). */
OsStatus sweep_run(SweepReport *rep, const SweepGrid *g, const SweepOptions *o);

#endif
