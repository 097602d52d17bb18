/* valreport.h — what `orchsim validate` prints and writes: one row per step from the ranks'
 * reports, the human table with every column labelled measured or modelled, the per-rank
 * per-phase lines, the MAPE line, and the --csv rows in analysis/schema.c's validate schema.
 * Implements: reports (exec/validate.h's v[] layout, one per rank) -> ExecValStep: measured
 *   mode: the step time is the max over ranks of each rank's CUDA-event step (+ its gradient
 *   sync); emulated mode: exec_emu_step over the measured per-rank compute and the modelled
 *   collectives (exec/emucomm.h), and no measured column is filled with it (measured_s,
 *   error_frac, mfu_measured stay empty in the CSV; the emulated numbers get their own
 *   columns, appended after the schema's, which schema_check allows).
 * Does not: run, collect or predict (exec/run.h, sim/replay.h), or open files (the caller
 *   passes FILE*s: stdout, and an OsOutFile's stream so a failed run leaves no CSV).
 * Letters: D ranks, P phases (encoders, then the LLM). Seconds. */
#ifndef OS_EXEC_VALREPORT_H
#define OS_EXEC_VALREPORT_H

#include <stdint.h>
#include <stdio.h>

#include "exec/emucomm.h"
#include "exec/validate.h"
#include "exec/worker.h"

typedef struct {
    uint32_t D, P;
    int emulate;
    const char *policy;                       /* borrowed */
    char phase[EXEC_VAL_MAX_PHASES][32];      /* "image", ..., "llm" */
    double peak_flops;                        /* per GPU, for MFU */
} ExecValTable;

typedef struct {
    ExecValRow row;
    double compute_s; /* slowest rank's measured compute (fwd + bwd, all phases) */
    double comm_s;    /* emulated: modelled collectives on the critical path; measured: NAN */
} ExecValStep;

/* Column names of the CSV: the validate schema's six, then the emulated extras. */
#define EXEC_VAL_CSV_BASE 6
#define EXEC_VAL_CSV_EXTRA 5
extern const char *const EXEC_VAL_CSV_COLS[EXEC_VAL_CSV_BASE + EXEC_VAL_CSV_EXTRA];

/* rep: [D], rep[r].rank == r, rep[r].n == EXEC_V_COUNT, rep[r].step == step (checked: an
 * OS_ERR_INTERNAL naming the rank otherwise). emu: the step's modelled collectives
 * (emulate only, else NULL). scratch: [2 * D * P] doubles, reused. */
OsStatus exec_val_step(ExecValStep *out, const ExecValTable *t, uint64_t step, const ExecReport *rep,
                       double predicted_s, double model_flops, const ExecEmuComm *emu, double *scratch);

void exec_val_print_header(FILE *fp, const ExecValTable *t);
/* The step's row, then one line per rank (per-phase measured times), then (emulate) the
 * modelled collectives of each barrier. */
void exec_val_print_step(FILE *fp, const ExecValTable *t, const ExecValStep *s, const ExecReport *rep,
                         const ExecEmuComm *emu);
/* MAPE over the rows that have an error; says "n/a" when none. */
void exec_val_print_summary(FILE *fp, const ExecValTable *t, const ExecValRow *rows, uint64_t n);

void exec_val_csv_header(FILE *fp, const ExecValTable *t);
void exec_val_csv_row(FILE *fp, const ExecValTable *t, const ExecValStep *s);

#endif
