/* runtable.h — one row of the run-level table (`orchsim sweep`, `orchsim compare --csv`).
 * Implements: RunRow (the run-level schema of schema.h as a struct), filling it from a
 *   ReplaySummary plus the per-step times (for the confidence interval), writing and reading
 *   rows in schema order, and speedup_vs_none across a finished table.
 * Does not: run replays (sweep.h) or print human tables.
 * Source: analysis/FORMATS.md "Run-level"; DESIGN.md §7. Units as the schema says: seconds,
 *   tokens/s, fractions; NaN = an absent value (written as an empty cell). */
#ifndef OS_ANALYSIS_RUNTABLE_H
#define OS_ANALYSIS_RUNTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "analysis/csv.h"
#include "analysis/schema.h"
#include "sim/replay.h"

#define RUNROW_STR 256
#define RUNPROV_PATH 512
#define RUNPROV_CMD 1024

typedef struct {
    char policy[64], model[RUNROW_STR], setup[16];
    uint64_t gpus, gpus_per_node, tp, dp, steps;
    double step_mean_s, step_ci95_s, step_p50_s, step_p99_s;
    double tokens_per_s, samples_per_s;
    double mfu, mfu_noattn, mfu_causal, hfu;
    double speedup_vs_none;
    double idle_frac;
    double bytes_intra_per_step, bytes_inter_per_step;
    double a2a_s_per_step, balancer_s_per_step;
    double imbalance[SCHEMA_N_PHASES];  /* SCHEMA_PHASES order; NaN when the model lacks it */
    double phase_idle[SCHEMA_N_PHASES]; /* idle_frac_<phase> */
    /* 95% CI half-widths over steps of the per-step series (runrow_add_cis); NaN = absent */
    double tokens_per_s_ci95, mfu_ci95, idle_frac_ci95;
    double imbalance_ci95[SCHEMA_N_PHASES];
    /* feasibility (replay's warnings, ReplaySummary) */
    uint64_t long_examples, needs_recompute;
    /* provenance: the charge and inputs that tell two runs apart (runrow_fill, runrow_set_prov) */
    char balancer_charge[16];            /* "modelled", "fixed" or "measured" */
    double balancer_modelled_s_per_step; /* the modelled planning time, all phases; NaN = not modelled */
    double balancer_measured_s_per_step; /* measured runtime beside the charge; NaN = not measured */
    char recompute[16];                  /* "none", "full", "selective" */
    uint64_t padded;                     /* 1 = padded batches */
    char calibration[128];
    char trace[RUNPROV_PATH], trace_hash[24], orchsim_version[32], command[RUNPROV_CMD];
} RunRow;

/* Where a run came from: the trace (path and content hash), the program and its command line.
 * The rest of the provenance (model, GPUs, setup, recompute, padded, calibration, balancer
 * charge) is in the row itself. */
typedef struct {
    char trace[RUNPROV_PATH];
    char trace_hash[24];      /* FNV-1a 64 of the file's bytes, 16 lowercase hex digits */
    char version[32];
    char command[RUNPROV_CMD]; /* "orchsim compare demo.h5 --gpus 64", arguments shell-quoted */
} RunProv;
/* The command line as typed: "orchsim " then argv[0..argc) (argv[0] = the command name), each
 * argument shell-quoted when it needs it; cut with "..." past cap. Call it before the option
 * parser, which reorders argv. */
void runprov_command(char *buf, size_t cap, int argc, char *const *argv);
/* Hash the trace file (NULL: none) and fill p. Errors name the file. */
OsStatus runprov_init(RunProv *p, const char *trace_path, const char *command, const char *version);
/* FNV-1a 64 of a file's bytes (streamed); errors name the file. */
OsStatus runprov_hash_file(uint64_t *hash, const char *path);
/* Copy p into the row's provenance columns. */
void runrow_set_prov(RunRow *r, const RunProv *p);
/* The run's provenance as the members of a JSON object (no braces): "trace":...,"trace_hash":...,
 * "model", "gpus", "setup", "recompute", "padded", "calibration", "balancer_charge",
 * "orchsim_version", "command" — taken from row r (one of the run's rows). */
void runprov_json_members(FILE *fp, const RunRow *r);
/* s as a JSON string literal (quotes, escapes). */
void runtable_json_str(FILE *fp, const char *s);
/* v as a JSON number (%.9g: seconds and FLOP counts round-trip), or null when not finite. */
void runtable_json_num(FILE *fp, double v);

/* A run's per-step series (the sweep's HDF5 copy). Arrays malloc'd, owned by the struct. */
typedef struct {
    uint64_t n, cap;                    /* steps, allocated */
    double *step_s;                     /* [n] simulated step time, s */
    double *mfu;                        /* [n] fraction */
    double *tokens_per_s;               /* [n] LLM tokens / step time */
    double *idle_frac;                  /* [n] rank-mean idle / step time */
    double *imbalance[SCHEMA_N_PHASES]; /* [n] max/mean per phase; NULL when the model lacks it */
} RunSeries;
void run_series_free(RunSeries *s); /* frees the arrays, zeroes s; NULL-safe */
/* Append one step's values (grows the arrays). phase_col[P]: the SCHEMA_PHASES index of each
 * replay phase (runtable_phase_col). */
OsStatus run_series_push(RunSeries *s, const StepResult *r, const int *phase_col, uint32_t P);
/* The 95% confidence-interval half-widths over steps of a run's per-step series: tokens/s,
 * MFU, idle fraction and each phase's imbalance (stats_mean_ci; NaN for a one-step run). */
OsStatus runrow_add_cis(RunRow *r, const RunSeries *s);
/* SCHEMA_PHASES index of each of the model's phases (encoders by modality, then "llm");
 * OS_ERR_RANGE naming a modality the run-level table has no column for. */
OsStatus runtable_phase_cols(int *phase_col, uint32_t *P, const ModelSpec *m);

/* Zero counts, empty strings, NaN for every number. */
void runrow_init(RunRow *r);

/* Fill r from a finished replay: labels, cluster shape from cfg, summary figures, the 95% CI
 * of the mean from step_s[n] (seconds, one per replayed step), the feasibility counts, and the
 * provenance cfg and sum know (recompute, padded, calibration, balancer_charge "fixed" when
 * cfg->balancer_cost_s >= 0, else "measured" with balancer_measured_s_per_step = the charge;
 * a caller that charged the modelled cost overwrites both). Phases map by the summary's
 * phase names; a phase the schema has no column for is an OS_ERR_RANGE naming it. */
OsStatus runrow_fill(RunRow *r, const ReplaySummary *sum, const ReplayConfig *cfg,
                     const char *policy, const char *model, const char *setup,
                     const double *step_s, size_t n);

/* Header (schema "run") and one row, in schema order. */
void runtable_write_header(FILE *fp);
void runtable_write_row(FILE *fp, const RunRow *r);
/* Read data row `row` of a table that passed schema_check(t, "run"). */
OsStatus runtable_read_row(RunRow *r, const CsvTable *t, size_t row);
/* Read a whole run-level CSV: *rows malloc'd [*n] (caller frees). */
OsStatus runtable_read(RunRow **rows, size_t *n, const char *path);

/* speedup_vs_none for rows[n]: tokens_per_s over the `none` row with the same model, gpus,
 * gpus_per_node, tp, setup and steps; NaN when there is none. */
void runtable_speedups(RunRow *rows, size_t n);

/* The field table that writes, reads (and sweep_h5 stores) a RunRow, in schema order; tests
 * compare its names with the schema. */
typedef enum { RUNFIELD_STR, RUNFIELD_U64, RUNFIELD_F64 } RunFieldKind;
typedef struct {
    const char *name;
    RunFieldKind kind;
    size_t off;  /* offsetof in RunRow */
    size_t size; /* RUNFIELD_STR: buffer size */
} RunField;
size_t runtable_n_fields(void);
const RunField *runtable_field(size_t i); /* NULL past the end */

#endif
