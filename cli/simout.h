/* simout.h — writers shared by `replay` and `compare`: per-step rows (CSV schema "step" of
 * analysis/FORMATS.md, and JSON lines of the same fields) and the human summary table.
 * Does not: decide what to run. */
#ifndef OS_CLI_SIMOUT_H
#define OS_CLI_SIMOUT_H

#include <stdio.h>

#include "sim/replay.h"

/* Column of schema phase k (image, audio, video, llm) in a replay's phases, or -1. */
int simout_phase_index(const ReplaySummary *sum, const char *schema_phase);

/* Step-level CSV: header, then one row per StepResult. P/phase names from sum-like info. */
void simout_step_csv_header(FILE *fp);
void simout_step_csv_row(FILE *fp, const char *policy, const StepResult *r, uint32_t P,
                         const char (*phase_name)[32]);
/* One JSON object per step (the same fields), comma-joined by the caller. */
void simout_step_json(FILE *fp, const char *policy, const StepResult *r, uint32_t P,
                      const char (*phase_name)[32]);
/* Per-rank per-phase loads (schema "loads") and per-unit placements (schema "assignment") of
 * one step, from the detail a StepResult borrows during the replay callback. */
void simout_loads_csv_header(FILE *fp);
void simout_loads_csv_rows(FILE *fp, const char *policy, const StepResult *r, const char (*phase_name)[32],
                           uint32_t dp_per_node);
void simout_assign_csv_header(FILE *fp);
void simout_assign_csv_rows(FILE *fp, const char *policy, const StepResult *r, const char (*phase_name)[32]);
/* Human summary of one replay. */
void simout_summary(FILE *fp, const char *policy, const ReplaySummary *s);

#endif
