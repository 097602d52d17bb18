/* sweep.h — replay one trace over a grid of policies x models x setups x cluster shapes.
 * Implements: the grid (lists per axis, their cartesian product, a `key = list` grid file,
 *   policies checked against the registry with 'all' expanded, before any work); the points
 *   spread over a fork()-based process pool (HDF5 serial is not thread-safe, so every child
 *   opens the trace itself and hands its results back through a temporary file) or over MPI
 *   ranks (SweepComm: round-robin, each rank runs its points in its own process, rank 0 gathers
 *   the results); the run-level CSV written in grid order, atomically, with speedup_vs_none
 *   filled in after all runs; an optional HDF5 copy with per-run per-step series (sweep_h5.c).
 * Does not: print (the caller prints failures; progress is OsProgress on stderr), retry, or know
 *   MPI (the caller passes a SweepComm; cli/cmd_sweep.c builds one on the MPI module).
 *   Failing grid points are reported with their parameters and the other rows are kept.
 * Source: DESIGN.md §7-§8; analysis/FORMATS.md (run-level, grid file, sweep HDF5). */
#ifndef OS_ANALYSIS_SWEEP_H
#define OS_ANALYSIS_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "analysis/runtable.h"
#include "base/status.h"

#define SWEEP_MAX_AXIS 64 /* values per axis */

/* Axes of the grid. Strings are borrowed (argv, the policy registry or a grid file's text). */
typedef struct {
    const char *policies[SWEEP_MAX_AXIS];
    uint32_t n_policies;
    const char *models[SWEEP_MAX_AXIS];
    uint32_t n_models;
    const char *setups[SWEEP_MAX_AXIS]; /* "ddp", "fsdp", "fsdp-grad-op" */
    uint32_t n_setups;
    uint32_t gpus[SWEEP_MAX_AXIS]; /* 0: the trace's DP x TP (the CLI's runner; replay's --gpus 0) */
    uint32_t n_gpus;
    uint32_t gpus_per_node[SWEEP_MAX_AXIS];
    uint32_t n_gpus_per_node;
    uint32_t tp[SWEEP_MAX_AXIS];
    uint32_t n_tp;
    uint64_t steps; /* 0 = the whole trace */
} SweepGrid;

/* One grid point's coordinates. */
typedef struct {
    const char *policy, *model, *setup; /* borrowed from the grid */
    uint32_t gpus, gpus_per_node, tp;
} SweepPoint;

/* Run one point in this process: its run row and its series (owned by the caller,
 * run_series_free). user = SweepOptions.run_user. */
typedef OsStatus SweepRunFn(RunRow *row, RunSeries *series, const SweepPoint *p, void *user);

/* The ranks of a sweep spread over processes started by mpirun (NULL / size 1: this process
 * alone). Every rank calls sweep_run with the same grid; each collective below is called by
 * every rank the same number of times. */
typedef struct {
    int rank, size;
    void *user;
    /* rank 0 receives every rank's send[n] bytes, concatenated in rank order, in *recv
     * (malloc'd, the caller frees) with counts[size] (rank 0 only; NULL elsewhere) */
    OsStatus (*gatherv)(void *user, const void *send, size_t n, char **recv, size_t *counts);
    OsStatus (*bcast)(void *user, void *buf, size_t n); /* from rank 0 */
} SweepComm;

typedef struct {
    const char *trace_path;
    uint32_t jobs;           /* worker processes (>= 1); ignored under a SweepComm of size > 1 */
    const char *csv_path;    /* run-level CSV (required); "-" = standard output */
    const char *h5_path;     /* HDF5 copy (a regular file), or NULL */
    int progress;            /* progress bar on stderr (rank 0 only) */
    int keep_going;          /* failed points: write the others and succeed (they are listed in the
                                report); 0 = the sweep fails and commits nothing, like any command */
    SweepRunFn *run;         /* the point runner, or NULL: sweep_run_point with the options below */
    void *run_user;
    const SweepComm *comm;   /* MPI ranks, or NULL */
    /* sweep_run_point's options (the library's own runner; `orchsim sweep` passes its own,
     * which resolves every replay option as `orchsim compare` does) */
    const char *calibration; /* calibration file, or NULL for calib_default_h100 */
    double balancer_cost_s;  /* < 0: charge the balancer's measured runtime (replay default);
                                >= 0: this fixed time, for byte-identical reruns */
    int recompute;           /* activation recomputation in every run (ReplayConfig.recompute) */
    int padded;              /* padded attention layout in every run (ATTN_PADDED) */
} SweepOptions;
/* jobs 1, balancer_cost_s -1, everything else NULL/0. */
void sweep_options_init(SweepOptions *o);

typedef struct {
    char params[512]; /* "policy=post model=vl-32b setup=fsdp gpus=64 gpus_per_node=8 tp=3" */
    char error[1024]; /* the point's recorded error line */
} SweepFailure;

typedef struct {
    size_t n_points, n_ok, n_failed;
    SweepFailure *failures; /* [n_failed], owned; sweep_report_free */
    double wall_s;
    int written;            /* 1 once the CSV (and HDF5 copy) are in place */
    int follower;           /* 1 on an MPI rank other than 0: it ran its points, rank 0 reports */
    int ranks;              /* processes the points were spread over (1 without MPI) */
} SweepReport;
void sweep_report_free(SweepReport *r);

/* Grid helpers. An empty axis takes its default: policies {every registry policy, as 'all'},
 * setups {fsdp}, gpus_per_node {8}, tp {1}; models and gpus must be given. */
void sweep_grid_init(SweepGrid *g);
/* Parse a comma list into an axis ("64,512,2560"); s is modified in place (strings point
 * into it). `what` names the option for errors. */
OsStatus sweep_axis_strs(const char **out, uint32_t *n, char *s, const char *what);
OsStatus sweep_axis_u32(uint32_t *out, uint32_t *n, char *s, uint32_t lo, uint32_t hi, const char *what);
/* The policies axis: 'all' (alone) = every registry policy in registry order; every name
 * checked against the registry (unknown: "did you mean"; 'oracle' and duplicates refused). */
OsStatus sweep_axis_policies(const char **out, uint32_t *n, char *s, const char *what);
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

/* The library's own runner: one point replayed in this process with o's fixed options
 * (calibration, balancer_cost_s, recompute, padded; always regrouped). */
OsStatus sweep_run_point(RunRow *row, RunSeries *series, const SweepPoint *p, const SweepGrid *g,
                         const SweepOptions *o);

/* Combine each rank's status of a step every rank takes (checks before any work): rank 0 gets
 * the first failure (its own first, else "rank R: <error>"); the other ranks get OS_DONE when
 * any rank failed (rank 0 reports). Without comm (or size 1) returns st. */
OsStatus sweep_agree(const SweepComm *comm, OsStatus st);

/* The whole sweep. Returns OS_OK when every point ran; when some failed, the successful rows
 * are still written and the status is the first failure's, with rep->failures listing each
 * (the caller prints them); when every point failed nothing is written. Under a SweepComm
 * rank 0 writes everything and reports; the others return OS_OK (or OS_DONE when a check
 * failed somewhere) with rep->follower set. */
OsStatus sweep_run(SweepReport *rep, const SweepGrid *g, const SweepOptions *o);

#endif
